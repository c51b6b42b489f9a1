package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/tools/testenv"
)

func runCLI(t *testing.T, cmd *cobra.Command, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("ratestream %v: %v", args, err)
	}
	return out.String()
}

// Dead letters are listed with why and where from, and the chosen ones go
// back to the rating topic as they were, without the dlq headers.
func TestDeadLettersListAndRedrive(t *testing.T) {
	b := testenv.NewBroker(t, 3)
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Config.Brokers, ","))
	w, err := broker.NewWriter(b.Config, b.Config.DLQTopic(), broker.WriterTuning{BatchSize: 10, BatchBytes: 1 << 20, BatchTimeout: time.Millisecond, WriteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	origin := func(key, value string, offset int64) kafka.Message {
		return kafka.Message{Topic: "ratings.v1", Partition: 2, Offset: offset, Key: []byte(key), Value: []byte(value),
			Headers: []kafka.Header{{Key: "trace", Value: []byte("t-" + key)}}}
	}
	err = w.WriteMessages(context.Background(),
		broker.DeadLetter(origin("7", "not json", 11), contract.DLQStageDecode, "", errors.New("malformed rating event")),
		broker.DeadLetter(origin("8", `{"user_id":"a\u0000b"}`, 12), contract.DLQStageStore, "22021", errors.New("invalid byte sequence")),
	)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}

	var listed []deadLetter
	if err := json.Unmarshal([]byte(runCLI(t, dlqCmd(), "list", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 {
		t.Fatalf("%d dead letters listed, want 2", len(listed))
	}
	var store deadLetter
	for _, d := range listed {
		if d.Stage == contract.DLQStageStore {
			store = d
		}
	}
	if store.SQLState != "22021" || store.Origin != "ratings.v1/2@12" || store.Key != "8" {
		t.Fatalf("store dead letter %+v", store)
	}
	if out := runCLI(t, dlqCmd(), "list"); !strings.Contains(out, "22021") || !strings.Contains(out, "ratings.v1/2@12") {
		t.Fatalf("table lacks the dead letter:\n%s", out)
	}

	pick := fmt.Sprintf("%d@%d", store.Partition, store.Offset)
	if out := runCLI(t, dlqCmd(), "redrive", "--pick", pick); !strings.Contains(out, "redrove 1") {
		t.Fatalf("redrive: %s", out)
	}
	runCLI(t, dlqCmd(), "redrive", "--all", "--stage", contract.DLQStageDecode)
	back := b.Messages(t, b.Config.Topic)
	if len(back) != 2 {
		t.Fatalf("%d messages back on the rating topic, want 2", len(back))
	}
	for _, m := range back {
		for _, h := range m.Headers {
			if strings.HasPrefix(h.Key, "dlq.") {
				t.Errorf("redriven message keeps %s", h.Key)
			}
		}
		if len(m.Headers) != 1 || string(m.Headers[0].Value) != "t-"+string(m.Key) {
			t.Errorf("redriven message lost its own headers: %v", m.Headers)
		}
	}
	// Each letter goes back once: a second run sends nothing, says why,
	// and the list shows when each was sent; --again sends once more.
	if out := runCLI(t, dlqCmd(), "redrive", "--all"); !strings.Contains(out, "redrove 0") || !strings.Contains(out, "skipped 2") {
		t.Fatalf("second redrive --all: %s", out)
	}
	if out := runCLI(t, dlqCmd(), "redrive", "--pick", pick); !strings.Contains(out, "redrove 0") || !strings.Contains(out, "skipped 1") {
		t.Fatalf("second redrive --pick: %s", out)
	}
	if back := b.Messages(t, b.Config.Topic); len(back) != 2 {
		t.Fatalf("%d messages on the rating topic after redriving twice, want 2", len(back))
	}
	listed = nil
	if err := json.Unmarshal([]byte(runCLI(t, dlqCmd(), "list", "-o", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	for _, d := range listed {
		if _, err := time.Parse(time.RFC3339Nano, d.Redriven); err != nil {
			t.Errorf("letter %s: redriven %q", d.pick(), d.Redriven)
		}
	}
	if out := runCLI(t, dlqCmd(), "redrive", "--pick", pick, "--again"); !strings.Contains(out, "redrove 1") {
		t.Fatalf("redrive --again: %s", out)
	}
	if back := b.Messages(t, b.Config.Topic); len(back) != 3 {
		t.Fatalf("%d messages on the rating topic after --again, want 3", len(back))
	}
	cmd := dlqCmd()
	cmd.SetArgs([]string{"redrive", "--pick", "9@99"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "no such dead letter") {
		t.Fatalf("redrive of a missing pick: %v", err)
	}
}

// A dead letter holds bytes anyone could have produced: the table shows
// them escaped, so that no escape sequence, carriage return or C1 control
// reaches the operator's terminal.
func TestDeadLetterTableEscapesControls(t *testing.T) {
	t.Parallel()
	hostile := "\x1b]0;owned\x07\x1b[2J\rfake OK\u009b31m\xff\x00end"
	var b strings.Builder
	err := printDeadLetters(&b, "table", []deadLetter{{Partition: 0, Offset: 1, Stage: "decode\x1b[1m", Error: "bad\r\nerror " + hostile,
		Origin: "ratings.v1/0@5\x1b", Key: "k", Value: hostile}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for i, r := range out {
		if r == '\n' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == utf8.RuneError {
			t.Fatalf("raw %U at byte %d of the table:\n%q", r, i, out)
		}
	}
	if strings.Count(out, "\n") != 2 {
		t.Errorf("want a header and one row:\n%s", out)
	}
	if !strings.Contains(out, `\x1b]0;owned\a\x1b[2J\rfake OK\u009b31m\xff\x00end`) {
		t.Errorf("the value is not shown escaped:\n%s", out)
	}
}
