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

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "ratestream",
		Short:         "Work with a ratestream deployment: tokens, lag, dead letters, the topic, replay, verify, backtest, export",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(tokenCmd(), lagCmd(), resetOffsetsCmd(), dlqCmd(), tailCmd(), verifyCmd(), replayCmd(), exportCmd(), backtestCmd())
	if err := root.Execute(); err != nil {
		if errors.Is(err, errDiffer) {
			os.Exit(1) // the report said what differs
		}
		fmt.Fprintln(os.Stderr, "ratestream:", err)
		os.Exit(2)
	}
}

// printJSON is every subcommand's -o json: indented, one document.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
