package jsoncheck_test

import (
	"errors"
	"fmt"

	"github.com/ratestream/ratestream/pkg/jsoncheck"
)

// encoding/json would read this body as a score of 5; a proxy that keeps
// the first of two keys would see 1. Strict refuses it and names the key.
func ExampleStrict() {
	err := jsoncheck.Strict([]byte(`{"user_id":"u-1","score":1,"score":5}`))
	var e *jsoncheck.Error
	fmt.Println(errors.Is(err, jsoncheck.ErrDuplicateKey), errors.As(err, &e) && e.Key == "score")
	fmt.Println(jsoncheck.Strict([]byte(`{"user_id":"u-1","score":5}`)))
	// Output:
	// true true
	// <nil>
}
