// Package service is the one main of every ratestream process: settings
// from the environment (--help lists them), the container healthcheck, the
// logger, a context cancelled on SIGINT or SIGTERM, and exit codes.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/buildinfo"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/logging"
)

// Spec describes a process to Main.
type Spec[C any] struct {
	Name string
	// Log picks the logging settings out of the configuration.
	Log func(*C) logging.Config
	// Addr picks the HTTP address `<name> healthcheck` probes; nil when
	// the process serves no HTTP.
	Addr func(*C) string
	// Run is the process itself; it returns when ctx is cancelled.
	Run func(ctx context.Context, log *zap.Logger, cfg C) error
}

// Main runs the process and exits: 2 for a configuration error, 1 when
// Run fails, 0 after a clean stop.
func Main[C any](s Spec[C]) {
	var cfg C
	if err := config.Load(&cfg, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, config.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		os.Exit(2)
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" && s.Addr != nil {
		os.Exit(httpserver.Probe(s.Addr(&cfg)))
	}
	log, err := logging.New(s.Name, s.Log(&cfg))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		os.Exit(2)
	}
	config.TuneGC(400)
	memLimit := config.TuneMemory()
	buildinfo.Service = s.Name
	log.Info("starting", zap.Any("config", config.Describe(cfg)), zap.String("version", buildinfo.Version), zap.Int64("go_memory_limit", memLimit))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = s.Run(ctx, log, cfg)
	stop()
	if err != nil {
		log.Error(s.Name+" failed", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
}
