package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv"
)

// tail prints one post's events in log order, from the start or from a
// time, and marks what is not an event.
func TestTail(t *testing.T) {
	b := testenv.NewBroker(t, 4)
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Config.Brokers, ","))
	w := b.Writer(t)
	write := func(posts ...int64) {
		var msgs []kafka.Message
		for i, p := range posts {
			e, err := rating.New(p, "u", i%6, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			v, _ := e.Marshal()
			msgs = append(msgs, kafka.Message{Key: e.Key(), Value: v})
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	write(1, 2, 3, 1, 2, 1)
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("1"), Value: []byte("garbage")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	cut := time.Now()
	time.Sleep(50 * time.Millisecond)
	write(1, 3)

	lines := func(args ...string) []tailLine {
		var out []tailLine
		for _, l := range strings.Split(strings.TrimSpace(runCLI(t, tailCmd(), args...)), "\n") {
			if l == "" {
				continue
			}
			var x tailLine
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			out = append(out, x)
		}
		return out
	}
	got := lines("--post", "1", "--from", "start", "--follow=false")
	if len(got) != 4 {
		t.Fatalf("post 1: %d events, want 4: %+v", len(got), got)
	}
	for i, l := range got {
		if l.Event == nil || l.Event.PostID != 1 || (i > 0 && l.Offset <= got[i-1].Offset) || l.Event.EventID == uuid.Nil {
			t.Fatalf("post 1, line %d: %+v", i, l)
		}
	}
	all := lines("--from", "start", "--follow=false")
	bad := 0
	for _, l := range all {
		if l.Event == nil && l.Error != "" && l.Raw == "garbage" {
			bad++
		}
	}
	if len(all) != 9 || bad != 1 {
		t.Fatalf("all: %d lines (%d not events), want 9 (1)", len(all), bad)
	}
	if later := lines("--from", cut.UTC().Format(time.RFC3339Nano), "--follow=false"); len(later) != 2 {
		t.Fatalf("from %s: %d lines, want the 2 written after", cut, len(later))
	}
}

// tail --scores prints the score topic's records, one post's with --post,
// and marks what is not a record.
func TestTailScores(t *testing.T) {
	b := testenv.NewBroker(t, 4)
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Config.Brokers, ","))
	t.Setenv("KAFKA_SCORE_TOPIC", "scores-tail")
	rec := func(post, version int64) kafka.Message {
		v := `{"v":1,"post_id":` + strconv.FormatInt(post, 10) + `,"version":` + strconv.FormatInt(version, 10) +
			`,"score":3.5,"user_count":2,"mean":3.5,"distribution":[0,0,0,1,1,0],"flags":{"under_campaign":false,"since":null},"as_of":"2026-12-07T18:00:00.000000Z","strategy":"mean"}`
		return kafka.Message{Key: []byte(strconv.FormatInt(post, 10)), Value: []byte(v)}
	}
	cfg := b.Config
	cfg.ScoreTopic = "scores-tail"
	if err := broker.EnsureTopic(context.Background(), cfg, cfg.ScoreTopic, 4); err != nil {
		t.Fatal(err)
	}
	b.ProduceTo(t, testenv.Target{Topic: "scores-tail"}, nil, rec(1, 1), rec(2, 1), rec(1, 2), kafka.Message{Key: []byte("1"), Value: []byte(`{"v":2}`)})
	lines := func(args ...string) []tailLine {
		var out []tailLine
		for _, l := range strings.Split(strings.TrimSpace(runCLI(t, tailCmd(), args...)), "\n") {
			var x tailLine
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			out = append(out, x)
		}
		return out
	}
	got := lines("--scores", "--post", "1", "--from", "start", "--follow=false")
	if len(got) != 2 || got[0].Score == nil || got[0].Score.Version != 1 || got[1].Score.Version != 2 || got[1].Score.Distribution[4] != 1 || got[0].Event != nil {
		t.Fatalf("tail --scores --post 1: %+v", got)
	}
	all := lines("--scores", "--from", "start", "--follow=false")
	bad := 0
	for _, l := range all {
		if l.Error != "" && l.Raw == `{"v":2}` {
			bad++
		}
	}
	if len(all) != 4 || bad != 1 {
		t.Fatalf("tail --scores: %+v", all)
	}
}
