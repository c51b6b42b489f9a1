// Package logging builds the zap logger every ratestream process uses.
package logging

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config selects the log format and level.
type Config struct {
	Format string `env:"LOG_FORMAT" default:"json" help:"json or console"`
	Level  string `env:"LOG_LEVEL" default:"info" help:"debug, info, warn or error"`
}

// New returns a logger named after the service. JSON is the default so that
// log shippers can parse it; console is for people reading a terminal.
func New(service string, cfg Config) (*zap.Logger, error) {
	var zc zap.Config
	switch cfg.Format {
	case "json", "":
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "ts"
		zc.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	case "console":
		zc = zap.NewDevelopmentConfig()
	default:
		return nil, fmt.Errorf("LOG_FORMAT %q: want json or console", cfg.Format)
	}
	lvl, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: %w", cfg.Level, err)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	log, err := zc.Build()
	if err != nil {
		return nil, err
	}
	return log.With(zap.String("service", service)), nil
}
