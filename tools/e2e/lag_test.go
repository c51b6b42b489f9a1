package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratestream/ratestream/tools/testenv"
)

// `ratestream lag` shows every partition caught up, and the windower's
// consumer group shows Kafka's tools the same offsets it stored.
func TestLagCommandAndGroupOffsetsAgree(t *testing.T) {
	s := startStack(t)
	for i := range 3 {
		if st, _ := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"lag %d"}`, i)); st != 201 {
			t.Fatalf("create: %d", st)
		}
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		for post := 1; post <= 3; post++ {
			for u := range 20 {
				if st, _ := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), fmt.Sprintf(`{"user_id":"u%d","score":3}`, u)); st != 202 {
					return fmt.Errorf("rating: %d", st)
				}
			}
		}
		return nil
	})
	testenv.Eventually(t, 60*time.Second, func() error {
		cmd := exec.Command(filepath.Join(testenv.Binaries(t), "ratestream"), "lag", "-o", "json")
		cmd.Env = append(os.Environ(), s.env...)
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("ratestream lag: %v", err)
		}
		var rows []struct {
			Partition int   `json:"partition"`
			LogEnd    int64 `json:"log_end"`
			Stored    int64 `json:"stored"`
			Lag       int64 `json:"lag"`
			Group     int64 `json:"group_committed"`
		}
		if err := json.Unmarshal(out, &rows); err != nil {
			return err
		}
		total := int64(0)
		for _, r := range rows {
			total += r.LogEnd
			if r.Lag != 0 || r.Stored != r.LogEnd || (r.LogEnd > 0 && r.Group != r.Stored) {
				return fmt.Errorf("partition %+v not caught up or not copied to the group", r)
			}
		}
		if total < 60 {
			return fmt.Errorf("%d events in the topic, want at least 60", total)
		}
		return nil
	})
}
