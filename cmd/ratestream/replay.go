package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/migrate"
	"github.com/ratestream/ratestream/pkg/tally"
)

func replayCmd() *cobra.Command {
	var url, until, offsetsFile, key string
	var force bool
	c := &cobra.Command{
		Use:   "replay --database URL [--until TIME | --offsets FILE] [--key NAME]",
		Short: "Rebuild the derived state (ratings, windows, totals, scores) from the topic into another database",
		Long: `Rebuild the whole derived state from the rating topic into another
database: the migrations are applied, then the windower and the scorer
(the same programs as the live ones, found next to this command) consume
the topic under their own key until every partition reaches its end
offset: the log end now, the first offsets at --until TIME, or those in
--offsets FILE ({"PARTITION": OFFSET, ...}). Ctrl-C and a rerun resume.
The same topic prefix gives the same rows whatever the batch sizes and
restarts; WINDOW, GRACE and the SCORING_* settings must be the live ones.
Dead letters of the replay go to <topic>.dlq.<key>.

The database must be the replay's own: one that holds another
consumer's positions (the live windower's, or another replay's) or
ratings with no positions at all is refused, because two writers of the
same tables lose counts. --force writes into it anyway.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return errors.New("--database is required")
			}
			if until != "" && offsetsFile != "" {
				return errors.New("say --until or --offsets, not both")
			}
			cfg, err := kafkaSettings()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return replay(ctx, cmd.ErrOrStderr(), cfg, url, key, until, offsetsFile, force)
		},
	}
	f := c.Flags()
	f.StringVar(&url, "database", "", "the database to rebuild into (URL): the replay's own, never DATABASE_URL's")
	f.StringVar(&until, "until", "", "stop at the first event of each partition at or after this RFC 3339 time")
	f.StringVar(&offsetsFile, "offsets", "", "stop at these offsets: a JSON file {\"PARTITION\": OFFSET, ...}")
	f.StringVar(&key, "key", "ratestream-replay", "the consumer key of the replay's stored offsets (and its Kafka group)")
	f.BoolVar(&force, "force", false, "write into a database that holds another consumer's state")
	return c
}

func replay(ctx context.Context, progress io.Writer, cfg broker.Config, url, key, until, offsetsFile string, force bool) error {
	if _, err := migrate.Up(url); err != nil {
		return err
	}
	targets, firsts, err := replayTargets(ctx, cfg, until, offsetsFile)
	if err != nil {
		return err
	}
	pool, err := database.Open(ctx, database.Config{URL: url, MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	if !force {
		if err := ownDatabase(ctx, pool, key); err != nil {
			return err
		}
	}

	env := []string{"DATABASE_URL=" + url, "WINDOWER_GROUP=" + key, "KAFKA_DLQ_TOPIC=" + cfg.Topic + ".dlq." + key,
		"LOG_LEVEL=" + cmp.Or(os.Getenv("LOG_LEVEL"), "warn")}
	var until2 []string
	for _, p := range slices.Sorted(maps.Keys(targets)) {
		until2 = append(until2, fmt.Sprintf("%d:%d", p, targets[p]))
	}
	windower, err := spawnSibling("windower", append(env, "WINDOWER_ADDR=127.0.0.1:0", "WINDOWER_UNTIL="+strings.Join(until2, ","))...)
	if err != nil {
		return err
	}
	defer func() { _ = windower.Stop(15 * time.Second) }()
	// The replay's scores are not news: they stay off the live score topic.
	scorer, err := spawnSibling("scorer", append(env, "SCORER_ADDR=127.0.0.1:0", "SCORER_PUBLISH=false")...)
	if err != nil {
		return err
	}
	defer func() { _ = scorer.Stop(15 * time.Second) }()

	total := int64(0)
	for p, t := range targets {
		total += max(0, t-firsts[p])
	}
	began := time.Now()
	bar := newProgress(progress, "events", total)
	defer bar.finish()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			bar.finish()
			fmt.Fprintln(progress, "stopped; run the same command again to resume")
			return ctx.Err()
		case <-tick.C:
		}
		done, left, parts, err := replayProgress(ctx, pool, cfg.Topic, key, targets, firsts)
		if err != nil {
			return err
		}
		bar.update(total-left, parts)
		if done {
			bar.finish()
			fmt.Fprintf(progress, "replayed %d events into the database in %s\n", total, time.Since(began).Round(time.Millisecond))
			return nil
		}
		for _, c := range []*launch.Process{windower, scorer} {
			if done, err := c.Exited(); done {
				return fmt.Errorf("%s exited: %v", c.Name, err)
			}
		}
	}
}

// ownDatabase refuses a database that holds the state of another writer:
// another consumer key's positions, or ratings without any positions.
// The replay's own key (a rerun that resumes) is fine.
func ownDatabase(ctx context.Context, pool *pgxpool.Pool, key string) error {
	keys, err := tally.Consumers(ctx, pool)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Consumer != key {
			return fmt.Errorf("the database holds the state of consumer %q (topic %s): a replay writing into it would lose counts of both; replay into a database of its own, or say --force", k.Consumer, k.Topic)
		}
	}
	if len(keys) == 0 {
		some, err := tally.HasRatings(ctx, pool)
		if err != nil {
			return err
		}
		if some {
			return errors.New("the database holds ratings but no consumer's positions: replay into an empty database, or say --force")
		}
	}
	return nil
}

// replayTargets are the offsets each partition is replayed to, and where
// each partition's log starts.
func replayTargets(ctx context.Context, cfg broker.Config, until, offsetsFile string) (map[int]int64, map[int]int64, error) {
	bounds, err := broker.LogBounds(ctx, cfg, cfg.Topic)
	if err != nil {
		return nil, nil, err
	}
	targets, firsts := map[int]int64{}, map[int]int64{}
	for p, b := range bounds {
		targets[p], firsts[p] = b.End, b.First
	}
	switch {
	case offsetsFile != "":
		b, err := os.ReadFile(offsetsFile)
		if err != nil {
			return nil, nil, err
		}
		var m map[string]int64
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, nil, fmt.Errorf("--offsets %s: %w", offsetsFile, err)
		}
		for k, v := range m {
			p, err := strconv.Atoi(k)
			if _, ok := bounds[p]; err != nil || !ok || v < 0 {
				return nil, nil, fmt.Errorf("--offsets %s: %q is not a partition of %s with an offset", offsetsFile, k, cfg.Topic)
			}
			targets[p] = min(v, bounds[p].End)
		}
	case until != "":
		t, err := time.Parse(time.RFC3339Nano, until)
		if err != nil {
			return nil, nil, fmt.Errorf("--until %q: want an RFC 3339 time", until)
		}
		for p := range bounds {
			if targets[p], err = broker.OffsetAt(ctx, cfg, cfg.Topic, p, t); err != nil {
				return nil, nil, err
			}
		}
	}
	return targets, firsts, nil
}

// replayProgress says whether every partition reached its target and the
// scorer has nothing left to score, how many events are left, and where
// each partition stands.
func replayProgress(ctx context.Context, pool *pgxpool.Pool, topic, key string, targets, firsts map[int]int64) (bool, int64, []partPos, error) {
	k := tally.Key{Consumer: key, Topic: topic}
	stored, err := tally.Offsets(ctx, pool, k)
	if err != nil {
		return false, 0, nil, err
	}
	left := int64(0)
	parts := make([]partPos, 0, len(targets))
	for _, p := range slices.Sorted(maps.Keys(targets)) {
		at, ok := stored[p]
		if !ok {
			at = firsts[p]
		}
		left += max(0, targets[p]-at)
		parts = append(parts, partPos{Partition: p, At: at, Target: targets[p]})
	}
	if left > 0 {
		return false, left, parts, nil
	}
	// Nothing marked, and no score that may still change behind its
	// partition's final watermark (the scorer revisits those within
	// SCORER_REVISIT): the scores are then those a replay of the same
	// events always gives.
	b, err := tally.ReadBacklog(ctx, pool, k)
	if err != nil {
		return false, 0, nil, err
	}
	return b.Queued == 0 && b.Due == 0, 0, parts, nil
}

// spawnSibling starts a project program found next to this command (make
// build puts them together) or on PATH; its output is this command's
// stderr.
func spawnSibling(name string, env ...string) (*launch.Process, error) {
	p, err := launch.Start(launch.Spec{Path: name, Env: env, Output: os.Stderr})
	if err != nil {
		return nil, fmt.Errorf("%w (it is looked for next to ratestream, then on PATH)", err)
	}
	return p, nil
}
