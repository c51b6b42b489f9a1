package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/contract"
)

// deadLetter is one message of the dead-letter topic.
type deadLetter struct {
	Partition int    `json:"partition"` // in the dead-letter topic
	Offset    int64  `json:"offset"`    // in the dead-letter topic
	Stage     string `json:"stage"`
	SQLState  string `json:"sqlstate,omitempty"`
	Error     string `json:"error"`
	Origin    string `json:"origin"` // topic/partition@offset it was read at
	Key       string `json:"key"`
	Value     string `json:"value"`
	Redriven  string `json:"redriven,omitempty"` // when it was last sent back, RFC 3339; empty: never

	msg kafka.Message
}

func dlqCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "dlq list|redrive",
		Short: "Show dead letters, or send chosen ones back to the rating topic after a fix",
	}
	var output string
	list := &cobra.Command{
		Use:   "list [-o table|json]",
		Short: "Every dead letter with why it could not become state and where it came from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := kafkaSettings()
			if err != nil {
				return err
			}
			dls, err := readDeadLetters(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return printDeadLetters(cmd.OutOrStdout(), output, dls)
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	var all, again bool
	var stage string
	var picks []string
	redrive := &cobra.Command{
		Use:   "redrive (--all [--stage decode|store] | --pick PARTITION@OFFSET ...)",
		Short: "Produce chosen dead letters to the rating topic again (after the fix that lets them become state)",
		Long: `Produce the chosen dead letters' keys and values to the rating topic
again, keyed as before, without the dlq.* headers. Each letter is sent
once: what was sent is recorded on the topic <dead-letter topic>.redriven,
and later runs skip it (--again sends it once more). A run that dies
between producing and recording sends those letters again next time; the
fold then ignores an event it already counted (same event id).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (len(picks) > 0) {
				return fmt.Errorf("say --all or --pick PARTITION@OFFSET")
			}
			cfg, err := kafkaSettings()
			if err != nil {
				return err
			}
			n, skipped, err := redriveDeadLetters(cmd.Context(), cfg, all, again, stage, picks)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "redrove %d dead letters to %s\n", n, cfg.Topic)
			if skipped > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "skipped %d redriven before (--again sends them once more)\n", skipped)
			}
			return nil
		},
	}
	redrive.Flags().BoolVar(&all, "all", false, "every dead letter")
	redrive.Flags().BoolVar(&again, "again", false, "also the letters redriven before")
	redrive.Flags().StringVar(&stage, "stage", "", "with --all: only those parked at this stage (decode or store)")
	redrive.Flags().StringSliceVar(&picks, "pick", nil, "a dead letter by its PARTITION@OFFSET in the dead-letter topic (repeatable)")
	c.AddCommand(list, redrive)
	return c
}

func kafkaSettings() (broker.Config, error) {
	var cfg struct{ Kafka broker.Config }
	if err := config.Load(&cfg, nil, io.Discard); err != nil {
		return broker.Config{}, err
	}
	return cfg.Kafka, cfg.Kafka.Check()
}

func readDeadLetters(ctx context.Context, cfg broker.Config) ([]deadLetter, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	topic := cfg.DLQTopic()
	parts, err := broker.Partitions(ctx, cfg, topic)
	if err != nil {
		return nil, err
	}
	var out []deadLetter
	for _, p := range parts {
		err := broker.ReadPartition(ctx, cfg, topic, p, func(m kafka.Message) error {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			out = append(out, deadLetter{
				Partition: m.Partition, Offset: m.Offset, Stage: h[contract.HeaderDLQStage], SQLState: h[contract.HeaderDLQSQLState],
				Error:  h[contract.HeaderDLQError],
				Origin: fmt.Sprintf("%s/%s@%s", h[contract.HeaderDLQTopic], h[contract.HeaderDLQPartition], h[contract.HeaderDLQOffset]),
				Key:    string(m.Key), Value: string(m.Value), msg: m,
			})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	done, err := redriven(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Redriven = done[out[i].pick()]
	}
	return out, nil
}

// pick is how a letter is named: PARTITION@OFFSET in the dead-letter topic.
func (d deadLetter) pick() string { return fmt.Sprintf("%d@%d", d.Partition, d.Offset) }

// redrivenTopic records the letters sent back, one message each: key
// PARTITION@OFFSET, value the time.
func redrivenTopic(cfg broker.Config) string { return cfg.DLQTopic() + ".redriven" }

// redriven reads when each letter was last sent back.
func redriven(ctx context.Context, cfg broker.Config) (map[string]string, error) {
	topic := redrivenTopic(cfg)
	done := map[string]string{}
	parts, err := broker.Partitions(ctx, cfg, topic)
	if errors.Is(err, kafka.UnknownTopicOrPartition) {
		return done, nil // nothing was redriven yet
	}
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if err := broker.ReadPartition(ctx, cfg, topic, p, func(m kafka.Message) error {
			done[string(m.Key)] = string(m.Value)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return done, nil
}

func printDeadLetters(w io.Writer, format string, dls []deadLetter) error {
	return printRows(w, format, dls, []string{"PICK", "STAGE", "SQLSTATE", "ORIGIN", "REDRIVEN", "ERROR", "VALUE"},
		func(d deadLetter) []string {
			return []string{fmt.Sprintf("%d@%d", d.Partition, d.Offset), clip(d.Stage, 20), clip(d.SQLState, 10),
				clip(d.Origin, 60), clip(d.Redriven, 40), clip(d.Error, 60), clip(d.Value, 80)}
		})
}

// clip writes bytes that anyone could have produced for a terminal: every
// control character (escape sequences, carriage returns, C1 controls),
// invalid UTF-8, quote and backslash escaped as in a Go string literal,
// then cut to n runes.
func clip(s string, n int) string {
	q := strconv.Quote(s)
	q = q[1 : len(q)-1]
	if utf8.RuneCountInString(q) <= n {
		return q
	}
	return string([]rune(q)[:n-1]) + "…"
}

func redriveDeadLetters(ctx context.Context, cfg broker.Config, all, again bool, stage string, picks []string) (sent, skipped int, err error) {
	want := map[string]bool{}
	for _, p := range picks {
		part, off, ok := strings.Cut(p, "@")
		if _, err1 := strconv.Atoi(part); !ok || err1 != nil {
			return 0, 0, fmt.Errorf("--pick %q: want PARTITION@OFFSET", p)
		}
		if _, err2 := strconv.ParseInt(off, 10, 64); err2 != nil {
			return 0, 0, fmt.Errorf("--pick %q: want PARTITION@OFFSET", p)
		}
		want[p] = true
	}
	dls, err := readDeadLetters(ctx, cfg)
	if err != nil {
		return 0, 0, err
	}
	var msgs, marks []kafka.Message
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, d := range dls {
		key := d.pick()
		if (all && (stage == "" || d.Stage == stage)) || want[key] {
			delete(want, key)
			if d.Redriven != "" && !again {
				skipped++
				continue
			}
			var headers []kafka.Header
			for _, h := range d.msg.Headers {
				if !strings.HasPrefix(h.Key, "dlq.") {
					headers = append(headers, h)
				}
			}
			msgs = append(msgs, kafka.Message{Key: d.msg.Key, Value: d.msg.Value, Headers: headers})
			marks = append(marks, kafka.Message{Key: []byte(key), Value: []byte(now)})
		}
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for p := range want {
			missing = append(missing, p)
		}
		slices.Sort(missing)
		return 0, 0, fmt.Errorf("--pick %s: no such dead letter", strings.Join(missing, ", "))
	}
	if len(msgs) == 0 {
		return 0, skipped, nil
	}
	if err := broker.EnsureTopic(ctx, cfg, redrivenTopic(cfg), 1); err != nil {
		return 0, skipped, err
	}
	tuning := broker.WriterTuning{BatchSize: 500, BatchBytes: 1 << 20, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second}
	for _, out := range []struct {
		topic string
		msgs  []kafka.Message
	}{{cfg.Topic, msgs}, {redrivenTopic(cfg), marks}} {
		w, err := broker.NewWriter(cfg, out.topic, tuning)
		if err != nil {
			return 0, skipped, err
		}
		err = w.WriteMessages(ctx, out.msgs...)
		w.Close()
		if err != nil && out.topic != cfg.Topic {
			return len(msgs), skipped, fmt.Errorf("redrove %d dead letters but could not record it on %s (the next run sends them again): %w", len(msgs), out.topic, err)
		}
		if err != nil {
			return 0, skipped, fmt.Errorf("produce to %s: %w", out.topic, err)
		}
	}
	return len(msgs), skipped, nil
}
