// Package postscore is the record of the score topic (post-scores.v1):
// a post's score as the scorer last wrote it, published on every change
// (see post-score.schema.json). The scorer builds the record in
// PostgreSQL, in the transaction that writes the score (pkg/tally); this
// package reads it.
package postscore

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ratestream/ratestream/pkg/jsoncheck"
)

// Version is the record's schema version.
const Version = 1

// Schema is the JSON Schema of a record's value.
//
//go:embed post-score.schema.json
var Schema []byte

// Record is one post's score.
type Record struct {
	V            int       `json:"v"`
	PostID       int64     `json:"post_id"`
	Version      int64     `json:"version"`
	Score        *float64  `json:"score"`
	UserCount    int64     `json:"user_count"`
	Mean         *float64  `json:"mean"`
	Distribution [6]int64  `json:"distribution"`
	Flags        Flags     `json:"flags"`
	AsOf         time.Time `json:"as_of"`
	Strategy     string    `json:"strategy"`
	// Activity is the post's typical honest votes per window as of the
	// window that starts at ActivityAt (nil: none yet): what trending
	// orders by.
	Activity   float64    `json:"activity"`
	ActivityAt *time.Time `json:"activity_at"`
}

// Flags says what is unusual about the score, as the query service's
// answers do.
type Flags struct {
	UnderCampaign bool       `json:"under_campaign"`
	Since         *time.Time `json:"since"`
}

// ErrMalformed marks a value that is not a score record.
var ErrMalformed = errors.New("malformed score record")

// Unmarshal decodes a record; unknown fields, duplicate keys and other
// versions are errors.
func Unmarshal(b []byte) (Record, error) {
	if err := jsoncheck.Strict(b); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case r.V != Version:
		return Record{}, fmt.Errorf("%w: version %d", ErrMalformed, r.V)
	case r.PostID < 1 || r.Version < 1:
		return Record{}, fmt.Errorf("%w: post_id and version must be positive", ErrMalformed)
	}
	r.AsOf = r.AsOf.UTC()
	return r, nil
}

// Table is what a consumer of the topic builds: the newest record of
// every post. Apply is idempotent and order-proof: a record that comes
// twice, or after a newer one of its post, changes nothing.
type Table map[int64]Record

// Apply keeps r if it is newer than what the table holds for its post,
// and says whether it did.
func (t Table) Apply(r Record) bool {
	if cur, ok := t[r.PostID]; ok && cur.Version >= r.Version {
		return false
	}
	t[r.PostID] = r
	return true
}
