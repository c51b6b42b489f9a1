package jsoncheck

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
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
		{"duplicate among many keys", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k3":3}`, ErrDuplicateKey, "k3"},
		{"duplicate among many keys, escaped", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"\u006b0":0}`, ErrDuplicateKey, "k0"},
		{"many keys, a nested object reusing them", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"o":{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9},"k10":10}`, nil, ""},
		{"many keys, a nested object ends, then a duplicate", `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"o":{"x":1},"k9":9}`, ErrDuplicateKey, "k9"},
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

// The check is linear in the document: a megabyte object of short
// distinct keys (pairwise comparison: 10^10 of them) takes milliseconds,
// checked here with a bound generous enough for any machine.
func TestStrictIsLinear(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("{")
	for i := range 150_000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%x":0`, i)
	}
	b.WriteString("}")
	doc := []byte(b.String())
	start := time.Now()
	if err := Strict(doc); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a %d KB object of %d keys took %s", len(doc)>>10, 150_000, took)
	}
}
