package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

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
	var all bool
	var stage string
	var picks []string
	redrive := &cobra.Command{
		Use:   "redrive (--all [--stage decode|store] | --pick PARTITION@OFFSET ...)",
		Short: "Produce chosen dead letters to the rating topic again (after the fix that lets them become state)",
		Long: `Produce the chosen dead letters' keys and values to the rating topic
again, keyed as before, without the dlq.* headers. At-least-once: a
redriven event that was already counted is ignored by the fold (same
event id), so running it twice is harmless.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (len(picks) > 0) {
				return fmt.Errorf("say --all or --pick PARTITION@OFFSET")
			}
			cfg, err := kafkaSettings()
			if err != nil {
				return err
			}
			n, err := redriveDeadLetters(cmd.Context(), cfg, all, stage, picks)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "redrove %d dead letters to %s\n", n, cfg.Topic)
			return nil
		},
	}
	redrive.Flags().BoolVar(&all, "all", false, "every dead letter")
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
	return out, nil
}

func printDeadLetters(w io.Writer, format string, dls []deadLetter) error {
	switch format {
	case "json":
		if dls == nil {
			dls = []deadLetter{}
		}
		return printJSON(w, dls)
	case "table":
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PICK\tSTAGE\tSQLSTATE\tORIGIN\tERROR\tVALUE")
		for _, d := range dls {
			fmt.Fprintf(tw, "%d@%d\t%s\t%s\t%s\t%s\t%s\n", d.Partition, d.Offset, d.Stage, d.SQLState, d.Origin, clip(d.Error, 60), clip(d.Value, 80))
		}
		return tw.Flush()
	}
	return fmt.Errorf("-o %q: want table or json", format)
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func redriveDeadLetters(ctx context.Context, cfg broker.Config, all bool, stage string, picks []string) (int, error) {
	want := map[string]bool{}
	for _, p := range picks {
		part, off, ok := strings.Cut(p, "@")
		if _, err1 := strconv.Atoi(part); !ok || err1 != nil {
			return 0, fmt.Errorf("--pick %q: want PARTITION@OFFSET", p)
		}
		if _, err2 := strconv.ParseInt(off, 10, 64); err2 != nil {
			return 0, fmt.Errorf("--pick %q: want PARTITION@OFFSET", p)
		}
		want[p] = true
	}
	dls, err := readDeadLetters(ctx, cfg)
	if err != nil {
		return 0, err
	}
	var msgs []kafka.Message
	for _, d := range dls {
		key := fmt.Sprintf("%d@%d", d.Partition, d.Offset)
		if (all && (stage == "" || d.Stage == stage)) || want[key] {
			var headers []kafka.Header
			for _, h := range d.msg.Headers {
				if !strings.HasPrefix(h.Key, "dlq.") {
					headers = append(headers, h)
				}
			}
			msgs = append(msgs, kafka.Message{Key: d.msg.Key, Value: d.msg.Value, Headers: headers})
			delete(want, key)
		}
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for p := range want {
			missing = append(missing, p)
		}
		slices.Sort(missing)
		return 0, fmt.Errorf("--pick %s: no such dead letter", strings.Join(missing, ", "))
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	w, err := broker.NewWriter(cfg, cfg.Topic, broker.WriterTuning{BatchSize: 500, BatchBytes: 1 << 20, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second})
	if err != nil {
		return 0, err
	}
	defer w.Close()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return 0, fmt.Errorf("produce to %s: %w", cfg.Topic, err)
	}
	return len(msgs), nil
}
