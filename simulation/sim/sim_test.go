package sim

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/scoring"
)

// The default strategy's promise on every shipped scenario, over seeds
// 1..seeds (each scenario's own seed replaced), worst case.
const (
	seeds            = 20
	maxErrorTarget   = 0.12
	finalErrorTarget = 0.03
)

func TestShippedScenariosMeetTargets(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.json")
	if err != nil || len(files) < 11 {
		t.Fatalf("found %d scenarios (%v), want at least 11", len(files), err)
	}
	def, err := scoring.Lookup(scoring.Default)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			params := scoring.DefaultParams(s.WindowLength())
			res, err := RunSeeds(s, []scoring.Strategy{def}, params, seeds)
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			t.Logf("%-18s worst max_error %.4f (seed %d), mean %.4f; worst final_error %.4f (seed %d), mean %.4f",
				s.Name, r.WorstMaxError, r.WorstMaxSeed, r.MeanMaxError, r.WorstFinal, r.WorstFinalSeed, r.MeanFinal)
			if s.ReportOnly != "" {
				t.Logf("%s: reported, not a target: %s", s.Name, s.ReportOnly)
			} else if r.WorstMaxError > maxErrorTarget || r.WorstFinal > finalErrorTarget {
				t.Errorf("%s: worst max_error %.4f (seed %d; target %.2f), worst final_error %.4f (seed %d; target %.2f)",
					s.Name, r.WorstMaxError, r.WorstMaxSeed, maxErrorTarget, r.WorstFinal, r.WorstFinalSeed, finalErrorTarget)
			}
			from, within, ok := s.Acceptance()
			if !ok {
				return
			}
			var worst time.Duration
			for seed := int64(1); seed <= seeds; seed++ {
				cp := *s
				cp.Seed = seed
				rep, err := Run(&cp, []scoring.Strategy{def}, params)
				if err != nil {
					t.Fatal(err)
				}
				d, settled := rep.CountsFullyAfter(from)
				if !settled {
					t.Fatalf("seed %d: the surge is still held out at the end", seed)
				}
				worst = max(worst, d)
			}
			t.Logf("%s: the surge stops being held out after %s at worst", s.Name, worst)
			if worst > within {
				t.Errorf("%s: the surge is held out for %s (target %s)", s.Name, worst, within)
			}
		})
	}
}

func TestRunIsDeterministic(t *testing.T) {
	s, err := Load("../scenarios/re-raters.json")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Run(s, scoring.Strategies(), scoring.DefaultParams(s.WindowLength()))
	b, _ := Run(s, scoring.Strategies(), scoring.DefaultParams(s.WindowLength()))
	for i := range a.Results {
		if a.Results[i] != b.Results[i] {
			t.Fatalf("two runs differ: %+v vs %+v", a.Results[i], b.Results[i])
		}
	}
}

func TestScenarioValidation(t *testing.T) {
	bad := []string{
		`{"name":"x","window":"0s","seed":1,"phases":[{"from":"0h","to":"1h","ratings_per_window":1,"scores":[0,0,0,0,0,1],"users":"new","honest":true}]}`,
		`{"name":"x","window":"1m","seed":1,"phases":[{"from":"1h","to":"0h","ratings_per_window":1,"scores":[0,0,0,0,0,1],"users":"new","honest":true}]}`,
		`{"name":"x","window":"1m","seed":1,"phases":[{"from":"0h","to":"1h","ratings_per_window":1,"scores":[0.5,0,0,0,0,1],"users":"new","honest":true}]}`,
		`{"name":"x","window":"1m","seed":1,"phases":[{"from":"0h","to":"1h","ratings_per_window":1,"scores":[0,0,0,0,0,1],"users":"old","honest":true}]}`,
		`{"name":"x","window":"1m","seed":1,"phases":[]}`,
	}
	for _, b := range bad {
		if _, err := parse([]byte(b)); err == nil {
			t.Errorf("accepted %s", b)
		}
	}
}
