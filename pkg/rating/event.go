// Package rating defines the rating event carried by ratings.v1: its fields,
// its JSON form (documented by rating-event.schema.json, every version) and
// the rules a valid event obeys.
//
// Versions only add. A reader accepts every version up to its own and
// refuses the others (they go to the dead-letter topic, never guessed
// at). A new version is produced only for an event an older reader would
// misread: ingest still writes every rating as version 1, so readers
// built before retractions keep reading every rating, and a retraction,
// which they cannot understand, is version 2. An erasure, which concerns a
// user on every post, is version 3 and has no post.
//
// user_id is the user's pseudonym, not the id a client sent: ingest maps
// each user id to a random pseudonym (package pseudonym), and erasing the
// user deletes the mapping, so that nothing on the topic ties an event to
// the person any more.
package rating

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/ratestream/ratestream/pkg/jsoncheck"
)

// Version is the schema version of ratings produced today; Version2 is
// the first with retractions (and an explicit op).
const (
	Version  = 1
	Version2 = 2
	Version3 = 3
)

// MaxScore is the highest score; scores are whole numbers from 0.
const MaxScore = 5

// MaxUserIDBytes bounds a user id.
const MaxUserIDBytes = 128

// Schema is the JSON Schema of an event's value, every version.
//
//go:embed rating-event.schema.json
var Schema []byte

// Event is one rating, or the retraction of the user's rating of the post,
// or the erasure of the user. The Kafka key is PostID in decimal; an
// erasure has no post (PostID 0, no key) and is written to every
// partition.
type Event struct {
	V       int       `json:"v"`
	EventID uuid.UUID `json:"event_id"`
	PostID  int64     `json:"post_id"`
	UserID  string    `json:"user_id"`
	Score   int       `json:"score"` // 0 in a retraction
	RatedAt time.Time `json:"rated_at"`
	// Retract says the user takes back their rating of the post (version
	// 2, op "retract"); RatedAt is when.
	Retract bool `json:"-"`
	// Erase says every rating of the user goes, on every post, with no
	// trace (version 3, op "erase"); RatedAt is when it was requested.
	Erase bool `json:"-"`
}

// MarshalJSON is the event as the topic carries it (AppendJSON).
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// UnmarshalJSON reads an event as Unmarshal does, every rule checked.
func (e *Event) UnmarshalJSON(b []byte) error {
	x, err := Unmarshal(b)
	if err != nil {
		return err
	}
	*e = x
	return nil
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

// NewRetraction stamps a retraction accepted now with a fresh UUIDv7.
func NewRetraction(postID int64, userID string, now time.Time) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("new event id: %w", err)
	}
	return Event{V: Version2, EventID: id, PostID: postID, UserID: userID, RatedAt: now.UTC(), Retract: true}, nil
}

// NewErasure stamps the erasure of user (a pseudonym) requested now.
func NewErasure(user string, now time.Time) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("new event id: %w", err)
	}
	return Event{V: Version3, EventID: id, UserID: user, RatedAt: now.UTC(), Erase: true}, nil
}

// ValidateUserID checks a user id that a client sends (the ingest body,
// the query service's X-User-ID). It is stricter than the event schema:
// every character is printable (no C0 or C1 controls, no NUL, no CR or LF,
// no format characters such as zero-width spaces, no unassigned code
// points), there is no leading or trailing space, and the id is in Unicode
// normal form C. An id that is not NFC is refused, not normalised: two
// byte strings that look the same must not silently become one user, and
// the stored id is always exactly the bytes the client sent.
func ValidateUserID(id string) error {
	if err := schemaUserID(id); err != nil {
		return err
	}
	for i, r := range id {
		if !unicode.IsPrint(r) {
			return &FieldError{"user_id", fmt.Sprintf("must contain only printable characters (U+%04X at byte %d)", r, i)}
		}
	}
	if strings.TrimSpace(id) != id {
		return &FieldError{"user_id", "must not start or end with a space"}
	}
	if !norm.NFC.IsNormalString(id) {
		return &FieldError{"user_id", "must be in Unicode normal form C (NFC)"}
	}
	return nil
}

// schemaUserID is the event schema's rule for user_id. Events already on
// the topic (from an older ingest or another producer) are judged by it,
// not by the client rule above, so that tightening what clients may send
// never changes what a replay of old events produces.
func schemaUserID(id string) error {
	switch {
	case id == "":
		return &FieldError{"user_id", "must not be empty"}
	case len(id) > MaxUserIDBytes:
		return &FieldError{"user_id", fmt.Sprintf("must be at most %d bytes", MaxUserIDBytes)}
	case !utf8.ValidString(id):
		return &FieldError{"user_id", "must be valid UTF-8"}
	case strings.TrimSpace(id) == "":
		return &FieldError{"user_id", "must not be blank"}
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

// Validate checks every rule of the event schema (the client rules of
// ValidateUserID are checked at the door, not here).
func (e Event) Validate() error {
	switch {
	case e.V < Version || e.V > Version3:
		return &FieldError{"v", fmt.Sprintf("unsupported version %d", e.V)}
	case e.Retract && e.V < Version2:
		return &FieldError{"v", "a retraction is version 2 or later"}
	case e.Erase && e.V < Version3:
		return &FieldError{"v", "an erasure is version 3 or later"}
	case e.Retract && e.Erase:
		return &FieldError{"op", "one op per event"}
	case (e.Retract || e.Erase) && e.Score != 0:
		return &FieldError{"score", "a " + e.Op() + " has no score"}
	case e.Erase && e.PostID != 0:
		return &FieldError{"post_id", "an erasure concerns every post and names none"}
	}
	if e.EventID.Version() != 7 || e.EventID.Variant() != uuid.RFC4122 {
		return &FieldError{"event_id", "must be a UUIDv7"}
	}
	if e.PostID < 1 && !e.Erase {
		return &FieldError{"post_id", "must be a positive integer"}
	}
	if err := schemaUserID(e.UserID); err != nil {
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

// Key is the Kafka message key of the event: the post id in decimal; an
// erasure has none.
func (e Event) Key() []byte {
	if e.Erase {
		return nil
	}
	return strconv.AppendInt(nil, e.PostID, 10)
}

// Marshal encodes the event as its schema describes.
func (e Event) Marshal() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 160)), nil
}

// AppendJSON appends the event's JSON object to b: the fields in the
// schema's order, strings escaped as encoding/json escapes them. It is
// written out by hand because ingest encodes one per request. Version 2
// carries op ("rate" or "retract"); a retraction has no score.
func (e Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	if e.V >= Version2 {
		b = append(b, `,"op":"`...)
		b = append(b, e.Op()...)
		b = append(b, '"')
	}
	b = append(b, `,"event_id":"`...)
	b = append(b, e.EventID.String()...)
	b = append(b, '"')
	if !e.Erase {
		b = append(b, `,"post_id":`...)
		b = strconv.AppendInt(b, e.PostID, 10)
	}
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, e.UserID)
	if !e.Retract && !e.Erase {
		b = append(b, `,"score":`...)
		b = strconv.AppendInt(b, int64(e.Score), 10)
	}
	b = append(b, `,"rated_at":"`...)
	b = e.RatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// Op is what the event does: "rate", "retract" or "erase".
func (e Event) Op() string {
	switch {
	case e.Retract:
		return OpRetract
	case e.Erase:
		return OpErase
	}
	return OpRate
}

// The ops of version 2, and version 3's erase.
const (
	OpRate    = "rate"
	OpRetract = "retract"
	OpErase   = "erase"
)

// appendJSONString appends s as a JSON string the way encoding/json
// writes it: quotes, backslashes and control characters escaped, <, >
// and & as \u escapes (safe inside HTML), U+2028 and U+2029 escaped,
// and invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ErrMalformed marks a value that is not an event at all.
var ErrMalformed = errors.New("malformed rating event")

// Unmarshal decodes and validates an event value. Unknown fields, missing
// fields, wrong types, invalid UTF-8, unpaired surrogate escapes and
// duplicate keys are errors: a consumer must never guess.
func Unmarshal(b []byte) (Event, error) {
	if err := jsoncheck.Strict(b); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var w struct {
		V       *int    `json:"v"`
		Op      *string `json:"op"`
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
	if w.V == nil || w.EventID == nil || w.UserID == nil || w.RatedAt == nil {
		return Event{}, fmt.Errorf("%w: missing field", ErrMalformed)
	}
	retract, erase := false, false
	switch {
	case *w.V < Version2 && w.Op != nil:
		return Event{}, fmt.Errorf("%w: op: not in version %d", ErrMalformed, *w.V)
	case *w.V >= Version2 && w.Op == nil:
		return Event{}, fmt.Errorf("%w: missing field op", ErrMalformed)
	case w.Op != nil && *w.Op == OpRetract:
		if w.Score != nil {
			return Event{}, fmt.Errorf("%w: score: a retraction has none", ErrMalformed)
		}
		retract = true
	case w.Op != nil && *w.Op == OpErase && *w.V >= Version3:
		if w.Score != nil || w.PostID != nil {
			return Event{}, fmt.Errorf("%w: an erasure has no score and no post_id", ErrMalformed)
		}
		erase = true
	case w.Op != nil && *w.Op != OpRate:
		return Event{}, fmt.Errorf("%w: op %q: want rate or retract (or erase from version 3)", ErrMalformed, *w.Op)
	}
	if !erase && w.PostID == nil {
		return Event{}, fmt.Errorf("%w: missing field post_id", ErrMalformed)
	}
	if !retract && !erase && w.Score == nil {
		return Event{}, fmt.Errorf("%w: missing field score", ErrMalformed)
	}
	score := 0
	if w.Score != nil {
		score = *w.Score
	}
	id, err := uuid.Parse(*w.EventID)
	if err != nil || id.String() != *w.EventID {
		return Event{}, fmt.Errorf("%w: event_id: not a canonical UUID", ErrMalformed)
	}
	at, err := time.Parse(time.RFC3339Nano, *w.RatedAt)
	if err != nil || !strings.HasSuffix(*w.RatedAt, "Z") {
		return Event{}, fmt.Errorf("%w: rated_at: not an RFC 3339 UTC time", ErrMalformed)
	}
	var post int64
	if w.PostID != nil {
		post = *w.PostID
	}
	e := Event{V: *w.V, EventID: id, PostID: post, UserID: *w.UserID, Score: score, RatedAt: at.UTC(), Retract: retract, Erase: erase}
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
