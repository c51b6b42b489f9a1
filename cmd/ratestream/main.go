// Command ratestream is the product's command for people: data teams and
// operators. It runs on the same code as the services and takes the same
// settings (environment variables), plus flags.
//
//	ratestream token --sub u-1 --scope posts:write   # a token for AUTH_MODE=jwt on the local stack
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		if errors.Is(err, errDiffer) {
			os.Exit(1) // the report said what differs
		}
		fmt.Fprintln(os.Stderr, "ratestream:", err)
		os.Exit(2)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "ratestream",
		Short:         "Work with a ratestream deployment: tokens, lag, dead letters, the topic, replay, verify, backtest, export",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(tokenCmd(), lagCmd(), resetOffsetsCmd(), dlqCmd(), tailCmd(), verifyCmd(), replayCmd(), exportCmd(), backtestCmd(), eraseCmd())
	bindEnv(root)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return applyEnv(cmd) }
	return root
}

// envAnnotation is the flag annotation naming a flag's environment
// variable.
const envAnnotation = "ratestream-env"

// sharedSetting says a flag is a setting the services take too, under
// their name for it (DATABASE_URL, KAFKA_TOPIC, AUTH_ISSUER, ...).
func sharedSetting(f *pflag.FlagSet, flag, env string) {
	if err := f.SetAnnotation(flag, envAnnotation, []string{env}); err != nil {
		panic(err) // a flag name misspelt here
	}
}

// bindEnv gives every flag of every subcommand an environment variable of
// the same meaning, named at the end of its help: the services' name for a
// shared setting, else RATESTREAM_<COMMAND>_<FLAG> (RATESTREAM_LAG_OUTPUT,
// RATESTREAM_DLQ_REDRIVE_STAGE). A flag on the command line wins over
// its variable, which wins over the default.
func bindEnv(c *cobra.Command) {
	for _, sub := range c.Commands() {
		bindEnv(sub)
	}
	if !c.HasParent() {
		return
	}
	prefix := "RATESTREAM_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" "), " ", "_"))
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		if fl.Name == "help" {
			return
		}
		if _, ok := fl.Annotations[envAnnotation]; !ok {
			sharedSetting(c.Flags(), fl.Name, prefix+"_"+strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_")))
		}
		fl.Usage += " [$" + fl.Annotations[envAnnotation][0] + "]"
	})
}

// applyEnv sets each flag not given on the command line from its
// variable, when that is set.
func applyEnv(c *cobra.Command) error {
	var err error
	c.Flags().VisitAll(func(fl *pflag.Flag) {
		names := fl.Annotations[envAnnotation]
		if err != nil || fl.Changed || len(names) == 0 {
			return
		}
		if v, ok := os.LookupEnv(names[0]); ok {
			if serr := fl.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s (for --%s): %w", names[0], fl.Name, serr)
			}
		}
	})
	return err
}

// printJSON is every subcommand's -o json: indented, one document.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printRows is every listing's -o: json (an array, [] when empty) or
// table, one line of cells per row under the header.
func printRows[R any](w io.Writer, format string, rows []R, header []string, cells func(R) []string) error {
	switch format {
	case "json":
		if rows == nil {
			rows = []R{}
		}
		return printJSON(w, rows)
	case "table":
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(cells(r), "\t"))
		}
		return tw.Flush()
	}
	return fmt.Errorf("-o %q: want table or json", format)
}
