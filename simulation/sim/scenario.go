// Package sim replays synthetic rating streams through every scoring
// strategy, offline: the events go through the same one-user-one-vote fold
// as the windower (pkg/fold) and the scores come from pkg/scoring.
package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"time"
)

// Scenario is one synthetic stream (see DESIGN.md, "Simulation
// scenarios").
type Scenario struct {
	Name   string `json:"name"`
	Window string `json:"window"`
	// Note says what the scenario stands for.
	Note   string  `json:"note,omitempty"`
	Seed   int64   `json:"seed"`
	Phases []Phase `json:"phases"`
	// Stretch, when set, says why the scenario is held to the stretch
	// target rather than the main one (a campaign that lasts hours).
	Stretch string `json:"stretch,omitempty"`
	// AcceptWithin, when set, is how soon after AcceptFrom a genuine
	// surge's windows must stop being held out.
	AcceptFrom   string `json:"accept_from,omitempty"`
	AcceptWithin string `json:"accept_within,omitempty"`

	window                 time.Duration
	acceptFrom, acceptWith time.Duration
}

// Phase is a period with a constant rate and score distribution.
type Phase struct {
	From             string     `json:"from"`
	To               string     `json:"to"`
	RatingsPerWindow float64    `json:"ratings_per_window"`
	Scores           []float64  `json:"scores"`
	Users            UserSource `json:"users"`
	Honest           bool       `json:"honest"`

	from, to time.Duration
}

// UserSource is "new", "existing" or {"pool": N}. A pool may be named,
// so that two phases draw from the same accounts while other pools stay
// apart (unnamed pools all share the name "pool"), and drawn "once": each
// account in turn, in an order shuffled once per pool, so that every
// account rates once before any rates again (aged accounts that all
// re-rate in a burst).
type UserSource struct {
	Kind string // new, existing, pool
	Pool int
	Name string
	Once bool
}

// UnmarshalJSON accepts the three forms.
func (u *UserSource) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != "new" && s != "existing" {
			return fmt.Errorf("users: want \"new\", \"existing\" or {\"pool\": N}, got %q", s)
		}
		u.Kind = s
		return nil
	}
	var p struct {
		Pool int    `json:"pool"`
		Name string `json:"name"`
		Once bool   `json:"once"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Pool < 1 {
		return errors.New(`users: want "new", "existing" or {"pool": N, "name": "…", "once": true|false} with N >= 1`)
	}
	u.Kind, u.Pool, u.Name, u.Once = "pool", p.Pool, p.Name, p.Once
	return nil
}

// MarshalJSON writes the form UnmarshalJSON reads.
func (u UserSource) MarshalJSON() ([]byte, error) {
	if u.Kind == "pool" {
		return json.Marshal(struct {
			Pool int    `json:"pool"`
			Name string `json:"name,omitempty"`
			Once bool   `json:"once,omitempty"`
		}{u.Pool, u.Name, u.Once})
	}
	return json.Marshal(u.Kind)
}

// Load reads and checks a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func parse(b []byte) (*Scenario, error) {
	var s Scenario
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Scenario) check() error {
	var err error
	if s.window, err = time.ParseDuration(s.Window); err != nil || s.window <= 0 {
		return fmt.Errorf("window %q: want a positive duration", s.Window)
	}
	if len(s.Phases) == 0 {
		return errors.New("no phases")
	}
	if (s.AcceptFrom == "") != (s.AcceptWithin == "") {
		return errors.New("accept_from and accept_within go together")
	}
	if s.AcceptFrom != "" {
		if s.acceptFrom, err = time.ParseDuration(s.AcceptFrom); err != nil {
			return fmt.Errorf("accept_from %q: %w", s.AcceptFrom, err)
		}
		if s.acceptWith, err = time.ParseDuration(s.AcceptWithin); err != nil || s.acceptWith <= 0 {
			return fmt.Errorf("accept_within %q: want a positive duration", s.AcceptWithin)
		}
	}
	for i := range s.Phases {
		p := &s.Phases[i]
		if p.from, err = time.ParseDuration(p.From); err != nil {
			return fmt.Errorf("phase %d: from %q: %w", i, p.From, err)
		}
		if p.to, err = time.ParseDuration(p.To); err != nil {
			return fmt.Errorf("phase %d: to %q: %w", i, p.To, err)
		}
		if p.to <= p.from {
			return fmt.Errorf("phase %d: to must be after from", i)
		}
		if p.RatingsPerWindow < 0 || math.IsNaN(p.RatingsPerWindow) {
			return fmt.Errorf("phase %d: ratings_per_window must not be negative", i)
		}
		if len(p.Scores) != 6 {
			return fmt.Errorf("phase %d: scores needs 6 probabilities (scores 0..5)", i)
		}
		sum := 0.0
		for _, x := range p.Scores {
			if x < 0 {
				return fmt.Errorf("phase %d: negative probability", i)
			}
			sum += x
		}
		if math.Abs(sum-1) > 1e-6 {
			return fmt.Errorf("phase %d: score probabilities sum to %g, want 1", i, sum)
		}
		if p.Users.Kind == "" {
			return fmt.Errorf("phase %d: users is required", i)
		}
	}
	return nil
}

// Acceptance is when a genuine surge starts and how soon it must count
// (ok false: the scenario asks nothing of the kind).
func (s *Scenario) Acceptance() (from, within time.Duration, ok bool) {
	return s.acceptFrom, s.acceptWith, s.AcceptFrom != ""
}

// WindowLength is the scenario's window.
func (s *Scenario) WindowLength() time.Duration { return s.window }

// End is when the last phase ends.
func (s *Scenario) End() time.Duration {
	var end time.Duration
	for _, p := range s.Phases {
		end = max(end, p.to)
	}
	return end
}
