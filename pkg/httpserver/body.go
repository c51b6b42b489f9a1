package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/ratestream/ratestream/pkg/jsoncheck"
)

// Status codes of body problems: the JSON itself is broken (400), or it
// is a well-formed object whose fields are wrong (422).
const (
	StatusMalformed = http.StatusBadRequest
	StatusInvalid   = http.StatusUnprocessableEntity
)

// Object reads a JSON object body of at most maxBytes with content type
// application/json and returns its members. It refuses unknown members.
func Object(c *gin.Context, maxBytes int64, allowed ...string) (Fields, *Problem) {
	ct := c.GetHeader("Content-Type")
	if ct != "application/json" { // the common case, without parsing
		mt, _, err := mime.ParseMediaType(ct)
		if ct == "" || err != nil || mt != "application/json" {
			return nil, Bad(http.StatusUnsupportedMediaType, "", fmt.Sprintf("content type must be application/json, got %q", ct))
		}
	}
	if c.Request.ContentLength > maxBytes {
		return nil, Bad(http.StatusRequestEntityTooLarge, "", fmt.Sprintf("body must be at most %d bytes", maxBytes))
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, Bad(http.StatusRequestEntityTooLarge, "", fmt.Sprintf("body must be at most %d bytes", maxBytes))
		}
		return nil, Bad(StatusMalformed, "", "could not read body: "+err.Error())
	}
	trimmed := bytes.TrimSpace(raw)
	// Checked on the bytes, before any decoder can replace what it does
	// not like with U+FFFD or keep one of two values for a key.
	if err := jsoncheck.Strict(trimmed); err != nil {
		return nil, strictError(err)
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if !json.Valid(trimmed) {
			return nil, Bad(StatusMalformed, "", "body is not valid JSON")
		}
		return nil, Bad(StatusMalformed, "", "body must be a JSON object")
	}
	fields, ok := flatObject(trimmed)
	if !ok {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&fields); err != nil {
			return nil, Bad(StatusMalformed, "", "body is not valid JSON: "+err.Error())
		}
		if dec.More() {
			return nil, Bad(StatusMalformed, "", "body has data after the JSON object")
		}
	}
	var unknown []string
	for k := range fields {
		if !contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, Bad(StatusInvalid, unknown[0], fmt.Sprintf("unknown field %q (allowed: %s)", unknown[0], strings.Join(allowed, ", ")))
	}
	return Fields(fields), nil
}

// strictError explains a body that jsoncheck refused, naming the key.
func strictError(err error) *Problem {
	var je *jsoncheck.Error
	key := ""
	if errors.As(err, &je) && utf8.ValidString(je.Key) {
		key = je.Key
	}
	switch {
	case errors.Is(err, jsoncheck.ErrInvalidUTF8):
		return Bad(StatusMalformed, key, "body is not valid UTF-8"+inKey(key))
	case errors.Is(err, jsoncheck.ErrSurrogate):
		return Bad(StatusMalformed, key, "body has an unpaired UTF-16 surrogate escape"+inKey(key))
	case errors.Is(err, jsoncheck.ErrDuplicateKey):
		return Bad(StatusMalformed, key, fmt.Sprintf("field %q appears more than once", key))
	}
	return Bad(StatusMalformed, key, "body is not valid JSON")
}

func inKey(key string) string {
	if key == "" {
		return ""
	}
	return fmt.Sprintf(" (in %q)", key)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Fields are the members of a JSON object body.
type Fields map[string]json.RawMessage

// Int reads a required integer member within [lo, hi]. Strings, floats,
// booleans and null are refused, as is "5.0".
func (f Fields) Int(name string, lo, hi int64) (int64, *Problem) {
	raw, ok := f[name]
	if !ok {
		return 0, Bad(StatusInvalid, name, "is required")
	}
	s := string(bytes.TrimSpace(raw))
	if s == "null" {
		return 0, Bad(StatusInvalid, name, "must not be null")
	}
	if len(s) == 0 || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, Bad(StatusInvalid, name, fmt.Sprintf("must be an integer, got %s", s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, Bad(StatusInvalid, name, fmt.Sprintf("must be an integer from %d to %d, got %s", lo, hi, s))
	}
	if n < lo || n > hi {
		return 0, Bad(StatusInvalid, name, fmt.Sprintf("must be an integer from %d to %d, got %d", lo, hi, n))
	}
	return n, nil
}

// String reads a required string member.
func (f Fields) String(name string) (string, *Problem) {
	raw, ok := f[name]
	if !ok {
		return "", Bad(StatusInvalid, name, "is required")
	}
	if end, ok := plainString(raw, 0); ok && end == len(raw) {
		return string(raw[1 : end-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", Bad(StatusInvalid, name, fmt.Sprintf("must be a string, got %s", bytes.TrimSpace(raw)))
	}
	return s, nil
}
