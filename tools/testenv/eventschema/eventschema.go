// Package eventschema compiles the rating event's JSON Schema for tests that
// check what reaches the topic.
package eventschema

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ratestream/ratestream/pkg/rating"
)

// Schema is the rating event's JSON Schema (every version), compiled with
// its formats asserted.
type Schema struct{ s *jsonschema.Schema }

// Check says how value, a message's value, fails the schema; nil when it
// is an event.
func (s Schema) Check(value []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(value))
	if err != nil {
		return err
	}
	return s.s.Validate(inst)
}

// Compile compiles the schema.
func Compile(t testing.TB) Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(rating.Schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("rating-event.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	c.AssertFormat()
	schema, err := c.Compile("rating-event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return Schema{schema}
}
