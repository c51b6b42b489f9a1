package scoring

import (
	"fmt"
	"time"
)

// Config carries the scoring settings from the environment. The windower
// and the scorer must agree on them; a replay must use the same ones.
type Config struct {
	Window      time.Duration `env:"WINDOW" default:"1m" help:"event-time window length: whole seconds from 1s to 1h"`
	Strategy    string        `env:"SCORING_STRATEGY" default:"surge-guard" help:"surge-guard, mean or seed-linear"`
	BaselineTau time.Duration `env:"SCORING_BASELINE_TAU" default:"0s" help:"time constant of a post's typical activity; 0s: 35 windows (35m at WINDOW=1m)"`
	VolumeZ     float64       `env:"SCORING_VOLUME_Z" default:"3" help:"standard deviations above the typical activity at which a window's activity is anomalous"`
	OpinionZ    float64       `env:"SCORING_OPINION_Z" default:"4" help:"standard errors from the post's opinion at which a window's opinion is anomalous"`
	Floor       float64       `env:"SCORING_FLOOR" default:"2" help:"votes per window never considered anomalous"`
	NewPost     float64       `env:"SCORING_NEW_POST_VOLUME" default:"10" help:"a new post's assumed typical activity (votes per window), the prior its own windows outweigh within about SCORING_BASELINE_TAU"`
}

// Params validates the settings and turns them into Params.
func (c Config) Params() (Params, error) {
	if c.Window < time.Second || c.Window > time.Hour || c.Window%time.Second != 0 {
		return Params{}, fmt.Errorf("WINDOW %s: want whole seconds from 1s to 1h", c.Window)
	}
	if c.BaselineTau == 0 {
		c.BaselineTau = baselineWindows * c.Window
	}
	if c.BaselineTau < c.Window {
		return Params{}, fmt.Errorf("SCORING_BASELINE_TAU %s must be at least WINDOW %s", c.BaselineTau, c.Window)
	}
	if c.VolumeZ < 1 || c.OpinionZ < 1 || c.Floor < 1 {
		return Params{}, fmt.Errorf("SCORING_VOLUME_Z, SCORING_OPINION_Z and SCORING_FLOOR must be at least 1")
	}
	if c.NewPost < 0 {
		return Params{}, fmt.Errorf("SCORING_NEW_POST_VOLUME must not be negative")
	}
	return Params{Window: c.Window, BaselineTau: c.BaselineTau, VolumeZ: c.VolumeZ, OpinionZ: c.OpinionZ, Floor: c.Floor, NewPost: c.NewPost}, nil
}

// StrategyAndParams validates the settings and returns the strategy they name with
// its parameters: what the scorer scores with, and what explains it.
func (c Config) StrategyAndParams() (Strategy, Params, error) {
	p, err := c.Params()
	if err != nil {
		return nil, Params{}, err
	}
	s, err := Lookup(c.Strategy)
	if err != nil {
		return nil, Params{}, err
	}
	return s, p, nil
}
