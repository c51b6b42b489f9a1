// Package rating defines the rating event carried by ratings.v1: its fields,
// its JSON form (documented by rating-event.v1.schema.json) and the rules a
// valid event obeys.
package rating

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Version is the schema version of events produced today.
const Version = 1

// MaxScore is the highest score; scores are whole numbers from 0.
const MaxScore = 5

// MaxUserIDBytes bounds a user id.
const MaxUserIDBytes = 128

// Schema is the JSON Schema of an event's value.
//
//go:embed rating-event.v1.schema.json
var Schema []byte

// Event is one rating. The Kafka key is PostID in decimal.
type Event struct {
	V       int       `json:"v"`
	EventID uuid.UUID `json:"event_id"`
	PostID  int64     `json:"post_id"`
	UserID  string    `json:"user_id"`
	Score   int       `json:"score"`
	RatedAt time.Time `json:"rated_at"`
}

// FieldError names the field an event or request got wrong.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// New stamps a rating accepted now with a fresh UUIDv7.
func New(postID int64, userID string, score int, now time.Time) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("new event id: %w", err)
	}
	return Event{V: Version, EventID: id, PostID: postID, UserID: userID, Score: score, RatedAt: now.UTC()}, nil
}

// ValidateUserID checks a user id as the schema does.
func ValidateUserID(id string) error {
	switch {
	case id == "":
		return &FieldError{"user_id", "must not be empty"}
	case len(id) > MaxUserIDBytes:
		return &FieldError{"user_id", fmt.Sprintf("must be at most %d bytes", MaxUserIDBytes)}
	case strings.TrimSpace(id) == "":
		return &FieldError{"user_id", "must not be blank"}
	case !utf8.ValidString(id):
		return &FieldError{"user_id", "must be valid UTF-8"}
	}
	return nil
}

// ValidateScore checks a score is a whole number from 0 to MaxScore.
func ValidateScore(s int) error {
	if s < 0 || s > MaxScore {
		return &FieldError{"score", fmt.Sprintf("must be an integer from 0 to %d", MaxScore)}
	}
	return nil
}

// Validate checks every rule of the schema.
func (e Event) Validate() error {
	if e.V != Version {
		return &FieldError{"v", fmt.Sprintf("unsupported version %d", e.V)}
	}
	if e.EventID.Version() != 7 || e.EventID.Variant() != uuid.RFC4122 {
		return &FieldError{"event_id", "must be a UUIDv7"}
	}
	if e.PostID < 1 {
		return &FieldError{"post_id", "must be a positive integer"}
	}
	if err := ValidateUserID(e.UserID); err != nil {
		return err
	}
	if err := ValidateScore(e.Score); err != nil {
		return err
	}
	if e.RatedAt.IsZero() || e.RatedAt.Location() != time.UTC {
		return &FieldError{"rated_at", "must be an RFC 3339 UTC time"}
	}
	return nil
}

// Key is the Kafka message key of the event: the post id in decimal.
func (e Event) Key() []byte { return strconv.AppendInt(nil, e.PostID, 10) }

// Marshal encodes the event as its schema describes.
func (e Event) Marshal() ([]byte, error) {
	type wire struct {
		V       int    `json:"v"`
		EventID string `json:"event_id"`
		PostID  int64  `json:"post_id"`
		UserID  string `json:"user_id"`
		Score   int    `json:"score"`
		RatedAt string `json:"rated_at"`
	}
	return json.Marshal(wire{e.V, e.EventID.String(), e.PostID, e.UserID, e.Score, e.RatedAt.UTC().Format(time.RFC3339Nano)})
}

// ErrMalformed marks a value that is not an event at all.
var ErrMalformed = errors.New("malformed rating event")

// Unmarshal decodes and validates an event value. Unknown fields, missing
// fields and wrong types are errors: a consumer must never guess.
func Unmarshal(b []byte) (Event, error) {
	var w struct {
		V       *int    `json:"v"`
		EventID *string `json:"event_id"`
		PostID  *int64  `json:"post_id"`
		UserID  *string `json:"user_id"`
		Score   *int    `json:"score"`
		RatedAt *string `json:"rated_at"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	if w.V == nil || w.EventID == nil || w.PostID == nil || w.UserID == nil || w.Score == nil || w.RatedAt == nil {
		return Event{}, fmt.Errorf("%w: missing field", ErrMalformed)
	}
	id, err := uuid.Parse(*w.EventID)
	if err != nil || id.String() != *w.EventID {
		return Event{}, fmt.Errorf("%w: event_id: not a canonical UUID", ErrMalformed)
	}
	at, err := time.Parse(time.RFC3339Nano, *w.RatedAt)
	if err != nil || !strings.HasSuffix(*w.RatedAt, "Z") {
		return Event{}, fmt.Errorf("%w: rated_at: not an RFC 3339 UTC time", ErrMalformed)
	}
	e := Event{V: *w.V, EventID: id, PostID: *w.PostID, UserID: *w.UserID, Score: *w.Score, RatedAt: at.UTC()}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}

// Newer reports whether a supersedes b as a user's latest rating of a
// post: later rated_at wins, and event_id breaks ties, so every consumer and
// every replay picks the same winner.
func Newer(aAt time.Time, aID uuid.UUID, bAt time.Time, bID uuid.UUID) bool {
	if !aAt.Equal(bAt) {
		return aAt.After(bAt)
	}
	return bytes.Compare(aID[:], bID[:]) > 0
}
