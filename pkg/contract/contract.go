// Package contract names what processes agree on without sharing code:
// the PostgreSQL NOTIFY channels they signal each other on, and the
// headers of a dead letter. A name changes here or nowhere.
package contract

// NOTIFY channels. The payload is given with each.
const (
	// ChannelPosts: a post was created (payload: its id). Sent by the
	// trigger on posts (migrations/000001_init.up.sql); followed by
	// ingest's post-id cache and the query service's titles.
	ChannelPosts = "posts"
	// ChannelRescore: a windower batch marked posts for rescoring
	// (payload: the partition). Followed by the scorer.
	ChannelRescore = "rescore"
)

// Dead-letter headers: a message parked on the dead-letter topic keeps its
// key, value and headers, and gains these.
const (
	HeaderDLQError     = "dlq.error"     // why it could not become state
	HeaderDLQStage     = "dlq.stage"     // DLQStageDecode or DLQStageStore
	HeaderDLQSQLState  = "dlq.sqlstate"  // the PostgreSQL error code, when the store refused it
	HeaderDLQTopic     = "dlq.topic"     // where it was read
	HeaderDLQPartition = "dlq.partition" // its partition there
	HeaderDLQOffset    = "dlq.offset"    // its offset there
)

// Stages at which an event can be refused.
const (
	DLQStageDecode = "decode" // not a valid rating event
	DLQStageStore  = "store"  // a valid event that PostgreSQL refused for its content
)
