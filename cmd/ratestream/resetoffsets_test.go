package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// reset-offsets is a dry run unless --execute, refuses an offset outside
// the log, and moves exactly the partitions named.
func TestResetOffsets(t *testing.T) {
	b := testenv.NewBroker(t, 3)
	db := testenv.NewDatabase(t)
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Config.Brokers, ","))
	t.Setenv("DATABASE_URL", db.URL)
	w := b.Writer(t)
	var msgs []kafka.Message
	for i := range 30 {
		msgs = append(msgs, kafka.Message{Partition: i % 3, Value: []byte("x")})
	}
	w.Balancer = &kafka.RoundRobin{}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	key := tally.Key{Consumer: "ratestream-windower", Topic: b.Config.Topic}
	ctx := context.Background()
	if err := tally.SetOffsets(ctx, db.Pool, key, map[int]int64{0: 500, 1: 4}); err != nil {
		t.Fatal(err)
	}
	stored := func() map[int]int64 {
		t.Helper()
		o, err := tally.Offsets(ctx, db.Pool, key)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	var rows []offsetReset
	if err := json.Unmarshal([]byte(runCLI(t, resetOffsetsCmd(), "--to-earliest", "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Stored != 500 || rows[0].New != 0 || rows[0].LogEnd != 10 || rows[2].Stored != -1 {
		t.Fatalf("dry run rows %+v", rows)
	}
	if o := stored(); o[0] != 500 || o[1] != 4 || len(o) != 2 {
		t.Fatalf("a dry run changed the stored offsets: %v", o)
	}
	if out := runCLI(t, resetOffsetsCmd(), "--to-latest"); !strings.Contains(out, "dry run") {
		t.Errorf("the table does not say it is a dry run:\n%s", out)
	}

	runCLI(t, resetOffsetsCmd(), "--to-earliest", "--partitions", "0", "--execute")
	if o := stored(); o[0] != 0 || o[1] != 4 {
		t.Fatalf("after --to-earliest --partitions 0: %v", o)
	}
	runCLI(t, resetOffsetsCmd(), "--to-offset", "7", "--partitions", "1,2", "--execute")
	if o := stored(); o[0] != 0 || o[1] != 7 || o[2] != 7 {
		t.Fatalf("after --to-offset 7 --partitions 1,2: %v", o)
	}
	runCLI(t, resetOffsetsCmd(), "--to-datetime", time.Now().Add(time.Hour).Format(time.RFC3339), "--execute")
	if o := stored(); o[0] != 10 || o[1] != 10 || o[2] != 10 {
		t.Fatalf("after --to-datetime in the future: %v, want the log ends", o)
	}
	pos, err := tally.ReadPosition(ctx, db.Pool, key, 0, false)
	if err != nil || pos.Last != nil {
		t.Errorf("a reset keeps the fingerprint of a message it no longer follows: %+v %v", pos, err)
	}

	for _, args := range [][]string{
		{},                                     // no target
		{"--to-earliest", "--to-latest"},       // two
		{"--to-offset", "11"},                  // past the end
		{"--to-earliest", "--partitions", "9"}, // no such partition
		{"--to-datetime", "yesterday"},
	} {
		cmd := resetOffsetsCmd()
		cmd.SetArgs(args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err == nil {
			t.Errorf("reset-offsets %v: no error", args)
		}
	}
	if o := stored(); o[0] != 10 || o[1] != 10 || o[2] != 10 {
		t.Fatalf("refused commands changed the offsets: %v", o)
	}
}
