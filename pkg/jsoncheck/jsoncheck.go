// Package jsoncheck refuses JSON that two parsers could read differently.
// encoding/json (and most decoders) replace invalid UTF-8 and unpaired
// surrogate escapes with U+FFFD and keep the last of duplicate object keys;
// a proxy or WAF in front of us may do otherwise. A document that passes
// Strict means the same thing to every conforming reader.
package jsoncheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Sentinel errors, so that callers can say which rule was broken.
var (
	ErrInvalidUTF8  = errors.New("not valid UTF-8")
	ErrSurrogate    = errors.New("unpaired UTF-16 surrogate escape")
	ErrDuplicateKey = errors.New("duplicate object key")
	ErrSyntax       = errors.New("not valid JSON")
)

// Error is a broken rule and, when it is inside an object, the key it
// concerns (the repeated key, or the key whose value is broken).
type Error struct {
	Err error
	Key string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%v (key %q)", e.Err, e.Key)
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// Strict checks that b is in valid UTF-8, has no unpaired surrogate
// escapes and no object that names a key twice (after unescaping, so "a"
// and "\u0061" are the same key). It does not check the rest of the
// syntax: the decoder that runs next does, and Strict only needs to stay
// safe on broken input (it then reports ErrSyntax or nothing). It
// allocates only for escaped keys: the windower runs it on every event.
func Strict(b []byte) error {
	return scan(b, !utf8.Valid(b))
}

// frame is an open object or array; an object's keys so far are
// keys[start:] of the scan, and also in set once there are more than
// fewKeys of them.
type frame struct {
	object    bool
	expectKey bool
	start     int
	lastKey   []byte
	set       map[string]struct{}
}

// fewKeys is how many keys an object may have before its keys are looked
// up in a map instead of compared one by one: the check stays linear in
// the document, and an event's few keys cost no allocation.
const fewKeys = 8

// scan walks the document once. Keys are compared as raw bytes,
// unescaped first when they hold an escape. With badUTF8 it looks for the
// string literal that holds the invalid bytes, to name its key.
func scan(b []byte, badUTF8 bool) error {
	var frames [8]frame
	var seen [16][]byte
	stack, keys := frames[:0], seen[:0]
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, frame{object: true, expectKey: true, start: len(keys)})
		case '[':
			stack = append(stack, frame{start: len(keys)})
		case '}', ']':
			if len(stack) == 0 {
				return ErrSyntax
			}
			keys = keys[:stack[len(stack)-1].start]
			stack = stack[:len(stack)-1]
		case ',':
			if top := len(stack) - 1; top >= 0 && stack[top].object {
				stack[top].expectKey = true
			}
		case '"':
			top := len(stack) - 1
			isKey := top >= 0 && stack[top].object && stack[top].expectKey
			end, escaped, err := str(b, i)
			if err == nil && badUTF8 && !utf8.Valid(b[i:end]) {
				err = ErrInvalidUTF8
			}
			if err != nil {
				e := &Error{Err: err}
				switch {
				case isKey:
					e.Key = string(b[i+1 : max(end, i+1)])
				case top >= 0 && stack[top].object:
					e.Key = string(stack[top].lastKey)
				}
				return e
			}
			if isKey {
				k := b[i+1 : end]
				if escaped {
					var s string
					if err := json.Unmarshal(b[i:end+1], &s); err != nil {
						return &Error{Err: ErrSyntax, Key: string(b[i+1 : end])}
					}
					k = []byte(s)
				}
				f := &stack[top]
				switch {
				case f.set != nil:
					if _, dup := f.set[string(k)]; dup {
						return &Error{Err: ErrDuplicateKey, Key: string(k)}
					}
					f.set[string(k)] = struct{}{}
				default:
					for _, prev := range keys[f.start:] {
						if bytes.Equal(prev, k) {
							return &Error{Err: ErrDuplicateKey, Key: string(k)}
						}
					}
					keys = append(keys, k)
					if len(keys)-f.start > fewKeys {
						f.set = make(map[string]struct{}, 2*fewKeys)
						for _, prev := range keys[f.start:] {
							f.set[string(prev)] = struct{}{}
						}
						keys = keys[:f.start]
					}
				}
				stack[top].expectKey, stack[top].lastKey = false, k
			}
			i = end
		default:
			if b[i] >= utf8.RuneSelf {
				return &Error{Err: ErrInvalidUTF8} // outside a string: broken anyway
			}
		}
	}
	return nil
}

// str finds the closing quote of the string literal opening at b[at],
// checking its \u escapes for unpaired surrogates.
func str(b []byte, at int) (end int, escaped bool, err error) {
	for i := at + 1; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i, escaped, nil
		case '\\':
			escaped = true
			if i+1 < len(b) && b[i+1] != 'u' {
				i++
				continue
			}
			r := hex4(b, i+2)
			if r < 0 {
				return 0, false, ErrSyntax
			}
			i += 5
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return 0, false, fmt.Errorf("%w \\u%04X", ErrSurrogate, r)
			case r >= 0xD800 && r <= 0xDBFF:
				if !bytes.HasPrefix(b[i+1:], []byte(`\u`)) {
					return 0, false, fmt.Errorf("%w \\u%04X", ErrSurrogate, r)
				}
				if lo := hex4(b, i+3); lo < 0xDC00 || lo > 0xDFFF {
					return 0, false, fmt.Errorf("%w \\u%04X", ErrSurrogate, r)
				}
				i += 6
			}
		}
	}
	return 0, false, ErrSyntax // unterminated
}

// hex4 reads four hex digits at b[at:], or returns -1.
func hex4(b []byte, at int) rune {
	if at+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}
