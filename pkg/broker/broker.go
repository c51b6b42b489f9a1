// Package broker is the one place where ratestream builds its Kafka clients
// (segmentio/kafka-go): the writer ingest produces with, the partition
// readers the windower consumes with, topic creation and the readiness ping.
package broker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
)

// Config names the cluster and the rating topic.
type Config struct {
	Brokers    []string `env:"KAFKA_BROKERS" default:"127.0.0.1:9092" help:"comma-separated bootstrap brokers"`
	Topic      string   `env:"KAFKA_TOPIC" default:"ratings.v1" help:"rating topic"`
	ScoreTopic string   `env:"KAFKA_SCORE_TOPIC" default:"post-scores.v1" help:"the compacted topic of every post's latest score (the scorer publishes it)"`
	DLQ        string   `env:"KAFKA_DLQ_TOPIC" help:"dead-letter topic (default: the rating topic + .dlq)"`
	Partitions int      `env:"KAFKA_PARTITIONS" default:"12" help:"partitions of the rating topic when it has to be created"`
	Replicas   int      `env:"KAFKA_REPLICATION" default:"1" help:"replication factor when a topic has to be created"`
	MinISR     int      `env:"KAFKA_MIN_INSYNC_REPLICAS" default:"1" help:"min.insync.replicas of created topics (with acks=all, how many copies a write needs)"`
	Retention  int64    `env:"KAFKA_RETENTION_MS" default:"-1" help:"retention.ms of created topics; -1 keeps every event, because replaying the topic is a feature"`
	Security
}

// DLQTopic is where the windower parks events it cannot decode.
func (c Config) DLQTopic() string {
	if c.DLQ != "" {
		return c.DLQ
	}
	return c.Topic + ".dlq"
}

// EnsureTopic creates topic with the given partition count unless it
// exists. It is safe to call from every instance at start-up. The score
// topic is compacted (a table: the latest record per post); every other
// keeps its events.
func EnsureTopic(ctx context.Context, cfg Config, topic string, partitions int) error {
	policy := "delete"
	if topic == cfg.ScoreTopic {
		policy = "compact"
	}
	// Zero is not a retention a rating topic can have (it would delete
	// events at once): an unset value keeps everything, as the default.
	retention := cfg.Retention
	if retention == 0 {
		retention = -1
	}
	c, err := cfg.client(10 * time.Second)
	if err != nil {
		return err
	}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: cfg.Replicas,
		ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(retention, 10)},
			{ConfigName: "cleanup.policy", ConfigValue: policy},
			{ConfigName: "min.insync.replicas", ConfigValue: strconv.Itoa(max(cfg.MinISR, 1))},
		}}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// ReplayWarnings reads an existing topic's configs and says, one sentence
// each, what would cut a replay from the beginning: a retention in time
// or bytes (a real Kafka's default keeps seven days), or compaction
// (which keeps one event per post). Nothing: the topic keeps every event.
func ReplayWarnings(ctx context.Context, cfg Config, topic string) ([]string, error) {
	c, err := cfg.client(10 * time.Second)
	if err != nil {
		return nil, err
	}
	resp, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		ConfigNames: []string{"retention.ms", "retention.bytes", "cleanup.policy"},
	}}})
	if err != nil {
		return nil, fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	var out []string
	for _, r := range resp.Resources {
		if r.Error != nil {
			return nil, fmt.Errorf("describe configs of %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			switch e.ConfigName {
			case "retention.ms":
				if ms, err := strconv.ParseInt(e.ConfigValue, 10, 64); err == nil && ms >= 0 {
					out = append(out, fmt.Sprintf("topic %s has retention.ms=%d (%s): events older than that are deleted and a replay from the beginning will miss them; set it to -1",
						topic, ms, time.Duration(ms)*time.Millisecond))
				}
			case "retention.bytes":
				if b, err := strconv.ParseInt(e.ConfigValue, 10, 64); err == nil && b >= 0 {
					out = append(out, fmt.Sprintf("topic %s has retention.bytes=%d: the oldest events are deleted past that size and a replay from the beginning will miss them; set it to -1", topic, b))
				}
			case "cleanup.policy":
				if strings.Contains(e.ConfigValue, "compact") {
					out = append(out, fmt.Sprintf("topic %s has cleanup.policy=%s: compaction keeps one event per post and a replay will miss the others; set it to delete", topic, e.ConfigValue))
				}
			}
		}
	}
	return out, nil
}

// Partitions lists the partition ids of topic, ascending.
func Partitions(ctx context.Context, cfg Config, topic string) ([]int, error) {
	conn, err := dialAny(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ps, err := conn.ReadPartitions(topic)
	if err != nil {
		return nil, fmt.Errorf("read partitions of %s: %w", topic, err)
	}
	ids := make([]int, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	// Ascending, as partitioners index them: murmur2 % n picks ids[i].
	slices.Sort(ids)
	return ids, nil
}

// Ping checks that a broker answers a metadata request for topic.
func Ping(ctx context.Context, cfg Config) error {
	conn, err := dialAny(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.ReadPartitions(cfg.Topic); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return nil
}

func dialAny(ctx context.Context, cfg Config) (*kafka.Conn, error) {
	d, err := cfg.Dialer(3 * time.Second)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, b := range cfg.Brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no broker reachable: %w", errors.Join(errs...))
}

// WriterTuning sets the batching of a writer.
type WriterTuning struct {
	BatchSize    int           `env:"KAFKA_BATCH_SIZE" default:"500" help:"messages per produce request and partition"`
	BatchBytes   int64         `env:"KAFKA_BATCH_BYTES" default:"1048576" help:"bytes per produce request and partition"`
	BatchTimeout time.Duration `env:"KAFKA_BATCH_TIMEOUT" default:"10ms" help:"how long a partial batch waits for company: fewer, fuller produce requests cost the broker and ingest less per rating (simulation/README.md measures it)"`
	WriteTimeout time.Duration `env:"KAFKA_WRITE_TIMEOUT" default:"2s" help:"broker write/read deadline"`
}

// PartitionOf is the partition of a post in a topic of n partitions:
// murmur2 of its key (the post id in decimal), where NewWriter's balancer,
// the Java client's default partitioner and librdkafka's murmur2_random
// put it.
func PartitionOf(post int64, n int) int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: strconv.AppendInt(nil, post, 10)}, ids...)
}

// NewWriter returns a writer for topic that partitions by key with murmur2
// (the Java client's partitioner, so every producer agrees where a post
// lives) and waits for all in-sync replicas.
func NewWriter(cfg Config, topic string, t WriterTuning) (*kafka.Writer, error) {
	tr, err := cfg.transport()
	if err != nil {
		return nil, err
	}
	return &kafka.Writer{
		Addr:            kafka.TCP(cfg.Brokers...),
		Topic:           topic,
		Balancer:        &kafka.Murmur2Balancer{},
		RequiredAcks:    kafka.RequireAll,
		BatchSize:       t.BatchSize,
		BatchBytes:      t.BatchBytes,
		BatchTimeout:    t.BatchTimeout,
		WriteTimeout:    t.WriteTimeout,
		ReadTimeout:     t.WriteTimeout,
		MaxAttempts:     3,
		WriteBackoffMin: 20 * time.Millisecond,
		WriteBackoffMax: 200 * time.Millisecond,
		Transport:       tr,
	}, nil
}

// Fetch is how long a partition reader lets the broker hold a fetch to
// gather at least MinBytes: fewer, larger fetches cost the broker and the
// reader less per event, and delay an event by at most MaxWait.
type Fetch struct {
	MinBytes int
	MaxWait  time.Duration
	// Skipped, when set, hears the reader's own reports of an offset
	// outside the log: it skips to the first offset, or waits past the
	// end, and says so only there.
	Skipped func(report string)
}

// NewPartitionReader returns a reader of one partition positioned at
// offset. Readers without a consumer group can seek, which is what lets the
// windower resume from the offsets it stored in PostgreSQL.
func NewPartitionReader(cfg Config, topic string, partition int, offset int64, f Fetch) (*kafka.Reader, error) {
	d, err := cfg.Dialer(10 * time.Second)
	if err != nil {
		return nil, err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Dialer:         d,
		Brokers:        cfg.Brokers,
		Topic:          topic,
		Partition:      partition,
		MinBytes:       max(f.MinBytes, 1),
		MaxBytes:       1 << 20,
		MaxWait:        f.MaxWait,
		QueueCapacity:  1000,
		ReadBackoffMin: 50 * time.Millisecond,
		ReadBackoffMax: time.Second,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			// kafka-go's two reports of an offset outside the log (it then
			// skips to the first offset, or waits past the end).
			if f.Skipped != nil && (strings.Contains(format, "before the first offset") || strings.Contains(format, "passed the last offset")) {
				f.Skipped(fmt.Sprintf(format, args...))
			}
		}),
	})
	if err := r.SetOffset(offset); err != nil {
		r.Close()
		return nil, fmt.Errorf("seek partition %d to %d: %w", partition, offset, err)
	}
	return r, nil
}

// Fingerprint identifies a message by its key and value: what a
// partition's stored position remembers of the message it follows.
func Fingerprint(m kafka.Message) []byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(m.Key)))
	h.Write(n[:])
	h.Write(m.Key)
	h.Write(m.Value)
	return h.Sum(nil)[:16]
}

// ReadAt reads the one message at offset of a partition.
func ReadAt(ctx context.Context, cfg Config, topic string, partition int, offset int64) (kafka.Message, error) {
	r, err := NewPartitionReader(cfg, topic, partition, offset, Fetch{MaxWait: 50 * time.Millisecond})
	if err != nil {
		return kafka.Message{}, err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("read %s/%d@%d: %w", topic, partition, offset, err)
	}
	return m, nil
}

// ReadPartition reads one partition from its first offset to the last one
// present when it is called, handing each message to fn; it stops at fn's
// first error. Tests and benchmarks use it to read a whole topic.
func ReadPartition(ctx context.Context, cfg Config, topic string, partition int, fn func(kafka.Message) error) error {
	d, err := cfg.Dialer(10 * time.Second)
	if err != nil {
		return err
	}
	conn, err := d.DialLeader(ctx, "tcp", cfg.Brokers[0], topic, partition)
	if err != nil {
		return fmt.Errorf("dial leader of %s/%d: %w", topic, partition, err)
	}
	first, last, err := conn.ReadOffsets()
	conn.Close()
	if err != nil {
		return fmt.Errorf("read offsets of %s/%d: %w", topic, partition, err)
	}
	if last <= first {
		return nil
	}
	r, err := NewPartitionReader(cfg, topic, partition, first, Fetch{MaxWait: 20 * time.Millisecond})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Offset >= last-1 {
			return nil
		}
	}
}

// DeadLetter is m as it goes to the dead-letter topic, with the reason.
func DeadLetter(m kafka.Message, stage, sqlState string, cause error) kafka.Message {
	h := make([]kafka.Header, 0, len(m.Headers)+6)
	h = append(h, m.Headers...)
	h = append(h,
		kafka.Header{Key: contract.HeaderDLQError, Value: []byte(cause.Error())},
		kafka.Header{Key: contract.HeaderDLQStage, Value: []byte(stage)},
		kafka.Header{Key: contract.HeaderDLQTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: contract.HeaderDLQPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: contract.HeaderDLQOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	if sqlState != "" {
		h = append(h, kafka.Header{Key: contract.HeaderDLQSQLState, Value: []byte(sqlState)})
	}
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: h}
}

// Bounds is where a partition's log starts and ends (the offset the next
// message will get).
type Bounds struct{ First, End int64 }

// LogBounds asks the broker for the first and end offsets of every
// partition of topic.
func LogBounds(ctx context.Context, cfg Config, topic string) (map[int]Bounds, error) {
	parts, err := Partitions(ctx, cfg, topic)
	if err != nil {
		return nil, err
	}
	c, err := cfg.client(5 * time.Second)
	if err != nil {
		return nil, err
	}
	// One request per bound: a partition may appear only once in a
	// ListOffsets request (Kafka refuses duplicates, and kafka-go merges
	// two answers for one partition unreliably).
	ask := func(of func(int) kafka.OffsetRequest) (map[int]kafka.PartitionOffsets, error) {
		reqs := make([]kafka.OffsetRequest, 0, len(parts))
		for _, p := range parts {
			reqs = append(reqs, of(p))
		}
		resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		if err != nil {
			return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		out := make(map[int]kafka.PartitionOffsets, len(parts))
		for _, po := range resp.Topics[topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
			}
			out[po.Partition] = po
		}
		return out, nil
	}
	first, err := ask(kafka.FirstOffsetOf)
	if err != nil {
		return nil, err
	}
	last, err := ask(kafka.LastOffsetOf)
	if err != nil {
		return nil, err
	}
	out := make(map[int]Bounds, len(parts))
	for _, p := range parts {
		f, okF := first[p]
		l, okL := last[p]
		if !okF || !okL {
			return nil, fmt.Errorf("list offsets of %s/%d: no answer", topic, p)
		}
		out[p] = Bounds{First: f.FirstOffset, End: l.LastOffset}
	}
	return out, nil
}

// Owners maps each assigned partition of topic to the group member that
// owns it, as the group coordinator sees it, and says the group's state.
func Owners(ctx context.Context, cfg Config, group, topic string) (map[int]Member, string, error) {
	c, err := cfg.client(5 * time.Second)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return nil, "", fmt.Errorf("describe group %s: %w", group, err)
	}
	if len(resp.Groups) != 1 {
		return nil, "", fmt.Errorf("describe group %s: %d groups in the answer", group, len(resp.Groups))
	}
	g := resp.Groups[0]
	if g.Error != nil {
		return nil, "", fmt.Errorf("describe group %s: %w", group, g.Error)
	}
	out := map[int]Member{}
	for _, m := range g.Members {
		for _, t := range m.MemberAssignments.Topics {
			if t.Topic != topic {
				continue
			}
			for _, p := range t.Partitions {
				out[p] = Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
			}
		}
	}
	return out, g.GroupState, nil
}

// Member is one member of a consumer group.
type Member struct{ ID, ClientID, Host string }

// EnsureTopics creates the topics that do not exist, retrying until it
// succeeds or ctx ends (then it returns ctx's error). A broker that is
// down or refuses the credentials is logged every ten seconds while the
// service stays up and its readiness check reports the cause.
func EnsureTopics(ctx context.Context, cfg Config, log *zap.Logger, topics ...string) error {
	var last time.Time
	for wait := time.Second; ; wait = min(2*wait, 10*time.Second) {
		err := func() error {
			ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			for _, t := range topics {
				if err := EnsureTopic(ectx, cfg, t, cfg.Partitions); err != nil {
					return err
				}
			}
			if cfg.Retention > 0 {
				return nil // a retention was asked for
			}
			for _, t := range topics {
				if t == cfg.ScoreTopic {
					continue // compacted on purpose: a table, not a history
				}
				warnings, err := ReplayWarnings(ectx, cfg, t)
				if err != nil {
					log.Warn("cannot check the topic's retention", zap.String("topic", t), zap.Error(err))
				}
				for _, w := range warnings {
					log.Warn(w)
				}
			}
			return nil
		}()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			log.Error("cannot reach or set up the Kafka topics; retrying", zap.Strings("topics", topics), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// GroupOffsets reads the offsets a consumer group has committed for the
// partitions of topic (-1 where it has none).
func GroupOffsets(ctx context.Context, cfg Config, group, topic string, partitions []int) (map[int]int64, error) {
	c, err := cfg.client(5 * time.Second)
	if err != nil {
		return nil, err
	}
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: partitions}})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	out := make(map[int]int64, len(partitions))
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// OffsetAt is the first offset of partition whose message time is at or
// after t (the log end when there is none).
func OffsetAt(ctx context.Context, cfg Config, topic string, partition int, t time.Time) (int64, error) {
	c, err := cfg.client(5 * time.Second)
	if err != nil {
		return 0, err
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.TimeOffsetOf(partition, t), kafka.LastOffsetOf(partition)}}})
	if err != nil {
		return 0, fmt.Errorf("offset of %s/%d at %s: %w", topic, partition, t, err)
	}
	pos := resp.Topics[topic]
	if len(pos) == 0 {
		return 0, fmt.Errorf("offset of %s/%d at %s: no answer", topic, partition, t)
	}
	if pos[0].Error != nil {
		return 0, pos[0].Error
	}
	for off := range pos[0].Offsets {
		if off >= 0 {
			return off, nil
		}
	}
	return pos[0].LastOffset, nil
}
