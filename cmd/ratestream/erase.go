package main

import (
	"errors"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/pseudonym"
)

// erased is one row of `ratestream erase`.
type erased struct {
	UserID string `json:"user_id"`
	pseudonym.Report
}

func eraseCmd() *cobra.Command {
	var (
		users  []string
		output string
	)
	c := &cobra.Command{
		Use:   "erase --user ID [--user ID...] [-o table|json]",
		Short: "Forget users: every rating on every post, and what tied their events on the topic to them",
		Long: `Erase users, as DELETE /v1/me erases the caller. For each user it
waits for the user's ratings in flight, deletes the mapping from the
user's id to the pseudonym their events carry on ratings.v1, and writes
an erase event to every partition; it returns once the broker has them.
The windower then takes every rating of the pseudonym back from every
post and deletes it, within seconds, and a replay of the topic does the
same. Afterwards nothing readable ties the user to an event: the topic
holds only the pseudonym, and nothing maps it to anyone (docs/data.md).

in_clear says votes were also stored under the id itself (a user who
rated before pseudonyms, or another producer writing ids in clear): they
are erased as well, but the topic's earlier events that carry the id
stay readable until the topic is rewritten. An erasure interrupted after
the mapping went is finished by the next erase (erase with no --user
only finishes those). Settings: KAFKA_*, DATABASE_URL, as the services.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, u := range users {
				if u == "" {
					return errors.New("--user: an empty user id")
				}
			}
			var cfg struct {
				Kafka  broker.Config
				Writer broker.WriterTuning
				DB     database.Config
			}
			if err := config.Load(&cfg, nil, io.Discard); err != nil {
				return err
			}
			ctx := cmd.Context()
			pool, err := database.Open(ctx, cfg.DB)
			if err != nil {
				return err
			}
			defer pool.Close()
			w, err := pseudonym.NewEraseWriter(cfg.Kafka, cfg.Writer)
			if err != nil {
				return err
			}
			defer w.Close()
			e := &pseudonym.Eraser{Pool: pool, Kafka: cfg.Kafka, Writer: w}
			var rows []erased
			if len(users) == 0 {
				n, parts, err := e.Finish(ctx)
				if err != nil {
					return err
				}
				rows = append(rows, erased{UserID: "(unfinished erasures)", Report: pseudonym.Report{Erasures: n, Partitions: parts}})
			}
			for _, u := range users {
				r, err := e.Erase(ctx, u)
				if err != nil {
					return err
				}
				rows = append(rows, erased{UserID: u, Report: r})
			}
			return printRows(cmd.OutOrStdout(), output, rows, []string{"USER", "MAPPED", "IN_CLEAR", "ERASE_EVENTS", "PARTITIONS"}, func(r erased) []string {
				return []string{r.UserID, strconv.FormatBool(r.Mapped), strconv.FormatBool(r.InClear), strconv.Itoa(r.Erasures), strconv.Itoa(r.Partitions)}
			})
		},
	}
	c.Flags().StringArrayVar(&users, "user", nil, "a user id to erase (repeatable)")
	c.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return c
}
