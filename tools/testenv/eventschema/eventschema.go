// Package eventschema compiles the JSON Schemas of the topics' records
// (the rating event, the score record) for tests that check what reaches
// a topic.
package eventschema

import (
	"bytes"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ratestream/ratestream/pkg/postscore"
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

// Compile compiles the rating event's schema.
func Compile(t testing.TB) Schema {
	t.Helper()
	return compile(t, "rating-event.schema.json", rating.Schema)
}

// CompileScores compiles the score record's schema (post-scores.v1).
func CompileScores(t testing.TB) Schema {
	t.Helper()
	return compile(t, "post-score.schema.json", postscore.Schema)
}

func compile(t testing.TB, name string, raw []byte) Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	c.AssertFormat()
	schema, err := c.Compile(name)
	if err != nil {
		t.Fatal(err)
	}
	return Schema{schema}
}
