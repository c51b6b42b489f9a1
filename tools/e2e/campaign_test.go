package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ratestream/ratestream/tools/testenv"
)

// k6/campaign.js, run by its Go twin (bin/loadgen campaign) against a live
// stack with the script's threshold: honest traffic on 20 posts, then new
// accounts giving post 1 ten times its honest volume of zeros; its score
// must stay within 0.1 of its value when the campaign started, while the
// plain mean of its raters moves by more than 0.5 (the campaign was real).
func TestLoadgenCampaignHoldsItsThreshold(t *testing.T) {
	if testing.Short() {
		t.Skip("45 s of load")
	}
	s := startStack(t)
	for i := 1; i <= 20; i++ {
		if st, _ := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"post %d"}`, i)); st != 201 {
			t.Fatalf("create: %d", st)
		}
	}
	waitPostsKnown(t, s, 20)
	out := t.TempDir()
	if dir := os.Getenv("RATESTREAM_CAMPAIGN_OUT"); dir != "" { // keep the report
		out = dir
	}
	cmd := exec.Command(filepath.Join(testenv.Binaries(t), "loadgen"), "campaign",
		"-ingest", s.ingest, "-query", s.query, "-posts", "20", "-rate", "100", "-target-share", "0.3",
		"-warmup", "20s", "-campaign", "10s", "-after", "10s", "-max-drift", "0.1", "-min-campaign", "0.5", "-out", out)
	log, err := cmd.CombinedOutput()
	t.Logf("loadgen campaign:\n%s", log)
	if err != nil {
		t.Fatalf("loadgen campaign failed its thresholds: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Passed     bool    `json:"passed"`
		ScoreDrift float64 `json:"max_score_drift"`
		MeanDrift  float64 `json:"max_mean_drift"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Passed || rep.ScoreDrift >= 0.1 || rep.MeanDrift < 0.5 {
		t.Fatalf("summary: %+v", rep)
	}
}
