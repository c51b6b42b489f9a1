package main

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// scoringSettings are the scoring settings the scorer of the group runs
// with, as it stored them: what explains a score and ranks the lists is
// what made the scores. Until the scorer has stored any (or when they
// cannot be read), the query service's own settings stand in.
type scoringSettings struct {
	pool  *pgxpool.Pool
	log   *zap.Logger
	group string
	every time.Duration // how often they are read again

	mu       sync.Mutex
	read     time.Time
	stored   bool
	strategy scoring.Strategy
	params   scoring.Params
}

func newScoringSettings(pool *pgxpool.Pool, log *zap.Logger, group string, own scoring.Strategy, ownParams scoring.Params) *scoringSettings {
	return &scoringSettings{pool: pool, log: log, group: group, every: 10 * time.Second, strategy: own, params: ownParams}
}

// get returns the strategy and parameters to explain scores with.
func (s *scoringSettings) get(ctx context.Context) (scoring.Strategy, scoring.Params) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Read again every so often, and at every use until the scorer has
	// stored its settings (a scorer starting after this service).
	if s.pool == nil || (s.stored && time.Since(s.read) < s.every) {
		return s.strategy, s.params
	}
	s.read = time.Now()
	cfg, ok, err := tally.ReadScoringSettings(ctx, s.pool, s.group)
	if err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			s.log.Warn("could not read the scorer's settings; explaining with the last known", zap.Error(err))
		}
		return s.strategy, s.params
	}
	strategy, params, err := cfg.StrategyAndParams()
	if err != nil {
		s.log.Warn("the scorer's stored settings are not valid here; explaining with the last known", zap.Error(err))
		return s.strategy, s.params
	}
	if !s.stored || strategy.Name() != s.strategy.Name() || params != s.params {
		s.log.Info("explaining scores with the scorer's settings", zap.String("strategy", strategy.Name()), zap.Duration("window", params.Window))
	}
	s.stored, s.strategy, s.params = true, strategy, params
	return strategy, params
}
