package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"

	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/tools/testenv"
)

// Against a broker that speaks only TLS and SCRAM-SHA-256, as managed
// Kafka services do, ratings are published with the client settings.
func TestPublishesOverTLSWithSCRAM(t *testing.T) {
	b := testenv.NewSecureBroker(t, 12, "ratestream", "correct horse")
	h := startOn(t, b, nil)
	if r := post(t, h.base+"/v1/posts/1/ratings", "application/json", `{"user_id":"u","score":5}`); r.status != 202 {
		t.Fatalf("rating over TLS+SCRAM: %d %v", r.status, r.body)
	}
	if n := len(b.Messages(t, b.Config.Topic)); n != 1 {
		t.Fatalf("%d events on the topic, want 1", n)
	}
}

// A wrong password keeps ingest up but not ready, with the broker's
// refusal in /readyz, and no rating is accepted.
func TestWrongKafkaPasswordIsReportedNotHidden(t *testing.T) {
	b := testenv.NewSecureBroker(t, 12, "ratestream", "correct horse")
	db := testenv.NewDatabase(t)
	cfg := testenv.Defaults(t, func(c *Config) *string { return &c.Addr })
	cfg.DB.URL, cfg.Kafka = db.URL, b.Config
	cfg.Kafka.SASLPasswordFile = filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(cfg.Kafka.SASLPasswordFile, []byte("battery staple"), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Serve(t, "ingest", cfg.Addr, func(ctx context.Context, log *zap.Logger) error { return run(ctx, log, cfg) })
	testenv.WaitUnready(t, "http://"+cfg.Addr+"/readyz", "sasl", 10*time.Second)
}

// A topic ingest creates keeps every event (replay is a feature) and
// asks min.insync.replicas of the cluster, from the settings.
func TestCreatedTopicKeepsEverything(t *testing.T) {
	b := testenv.NewBroker(t, 3)
	var settings Config // the defaults, as the service loads them
	if err := config.Load(&settings, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg := settings.Kafka
	cfg.Brokers, cfg.Topic, cfg.Partitions = b.Config.Brokers, "fresh.v1", 3
	ctx := context.Background()
	if err := broker.EnsureTopics(ctx, cfg, zap.NewNop(), cfg.Topic); err != nil {
		t.Fatal(err)
	}
	// Read back with franz-go's client: a second implementation of the
	// protocol, not the one that wrote them.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, cfg.Topic
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Resources) != 1 {
		t.Fatalf("describe configs: %v", err)
	}
	got := map[string]string{}
	for _, e := range resp.Resources[0].Configs {
		if e.Value != nil {
			got[e.Name] = *e.Value
		}
	}
	if got["retention.ms"] != "-1" || got["cleanup.policy"] != "delete" || got["min.insync.replicas"] != "1" {
		t.Fatalf("topic configs %v", got)
	}
}
