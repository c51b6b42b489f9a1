package sim

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/ratestream/ratestream/pkg/scoring"
)

// The default strategy's promise on every shipped scenario.
const (
	maxErrorTarget   = 0.15
	finalErrorTarget = 0.06
)

func TestShippedScenariosMeetTargets(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.json")
	if err != nil || len(files) < 7 {
		t.Fatalf("found %d scenarios (%v), want at least 7", len(files), err)
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(s, scoring.Strategies(), scoring.DefaultParams(s.WindowLength()))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			t.Logf("%-18s %-12s max %.4f p95 %.4f final %.4f", s.Name, r.Strategy, r.MaxError, r.P95Error, r.FinalError)
			if math.IsNaN(r.MaxError) {
				t.Errorf("%s/%s: no error measured", s.Name, r.Strategy)
			}
			if r.Strategy != scoring.Default {
				continue
			}
			if r.MaxError > maxErrorTarget || r.FinalError > finalErrorTarget {
				t.Errorf("%s: %s max_error %.4f (target %.2f), final_error %.4f (target %.2f)",
					s.Name, r.Strategy, r.MaxError, maxErrorTarget, r.FinalError, finalErrorTarget)
			}
		}
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
