package jsoncheck

import (
	"errors"
	"testing"
)

func TestStrict(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want error
		key  string
	}{
		{"object", `{"a":1,"b":[1,{"a":2}],"c":{"d":null}}`, nil, ""},
		{"scalar", `5`, nil, ""},
		{"escaped pair", `{"a":"\ud83d\ude00"}`, nil, ""},
		{"escaped backslash then u", `{"a":"\\ud800"}`, nil, ""},
		{"same key in sibling objects", `[{"a":1},{"a":2}]`, nil, ""},
		{"invalid utf-8", "{\"a\":\"\xff\xfe\"}", ErrInvalidUTF8, "a"},
		{"invalid utf-8 in the second value", "{\"a\":\"x\",\"user_id\":\"a\xfeb\"}", ErrInvalidUTF8, "user_id"},
		{"invalid utf-8 in a key", "{\"\xc3\":1}", ErrInvalidUTF8, "\xc3"},
		{"lone high surrogate", `{"a":"\ud800"}`, ErrSurrogate, "a"},
		{"lone low surrogate", `{"a":"x\udcffy"}`, ErrSurrogate, ""},
		{"high then not low", `{"a":"\ud800\u0041"}`, ErrSurrogate, ""},
		{"surrogate in a key", `{"\udc00":1}`, ErrSurrogate, ""},
		{"duplicate key", `{"score":1,"score":5}`, ErrDuplicateKey, "score"},
		{"duplicate after unescaping", `{"score":1,"\u0073core":5}`, ErrDuplicateKey, "score"},
		{"duplicate nested", `{"a":{"b":1,"b":2}}`, ErrDuplicateKey, ""},
		{"duplicate after nested object", `{"a":{"b":1},"a":2}`, ErrDuplicateKey, ""},
		{"unterminated string", `{"a":"x`, ErrSyntax, ""},
		{"unbalanced", `]`, ErrSyntax, ""},
		{"bad escape", `{"a":"\u12"}`, ErrSyntax, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := Strict([]byte(c.in))
			if c.want == nil && err != nil {
				t.Fatalf("Strict(%q) = %v, want nil", c.in, err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Strict(%q) = %v, want %v", c.in, err, c.want)
			}
			var e *Error
			if c.key != "" && (!errors.As(err, &e) || e.Key != c.key) {
				t.Fatalf("Strict(%q) = %v, want it to name key %q", c.in, err, c.key)
			}
		})
	}
}

func FuzzStrict(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":"\ud800"}`, `{"a":1,"a":2}`, "\xff", `[{"a":[{}]}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Strict(b) // must not panic
	})
}
