package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/tools/testenv"
)

// The services create the rating topic to keep every event; a topic that
// exists with a retention, a size limit or compaction gets a warning at
// start-up, naming the setting, because it would cut a replay.
func TestTopicRetentionWarnings(t *testing.T) {
	b := testenv.NewBroker(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	core, logs := observer.New(zapcore.WarnLevel)
	if err := broker.EnsureTopics(ctx, b.Config, zap.New(core), b.Config.Topic); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Fatalf("a topic created by the services: %v", logs.All())
	}

	// A topic made elsewhere, as a real cluster's defaults would make it.
	client := &kafka.Client{Addr: kafka.TCP(b.Config.Brokers...)}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: "ratings.elsewhere", NumPartitions: 1, ReplicationFactor: 1,
		ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "retention.ms", ConfigValue: "604800000"},
			{ConfigName: "retention.bytes", ConfigValue: "1073741824"},
			{ConfigName: "cleanup.policy", ConfigValue: "compact,delete"},
		},
	}}})
	if err != nil || resp.Errors["ratings.elsewhere"] != nil {
		t.Fatalf("create: %v %v", err, resp)
	}
	cfg := b.Config
	cfg.Topic = "ratings.elsewhere"
	if err := broker.EnsureTopics(ctx, cfg, zap.New(core), cfg.Topic); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Message)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"retention.ms=604800000 (168h0m0s)", "retention.bytes=1073741824", "cleanup.policy=compact,delete"} {
		if !strings.Contains(all, want) {
			t.Errorf("no warning naming %s:\n%s", want, all)
		}
	}
}
