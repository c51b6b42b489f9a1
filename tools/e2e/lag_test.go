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

// `ratestream lag` shows every partition caught up, the windower's
// consumer group shows Kafka's tools the same offsets it stored, and the
// scorer's backlog is counted on the partitions of the posts waiting.
func TestLagCommandAndGroupOffsetsAgree(t *testing.T) {
	s := startStack(t)
	for i := range 3 {
		if st, _ := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"lag %d"}`, i)); st != 201 {
			t.Fatalf("create: %d", st)
		}
	}
	// The scorer is stopped (not killed) while the ratings arrive: their
	// posts wait in its queue.
	resume := s.pause(t, "scorer")
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
	lag := func() ([]lagJSON, error) { return ratestreamLag(t, s) }
	testenv.Eventually(t, 60*time.Second, func() error {
		rows, err := lag()
		if err != nil {
			return err
		}
		total := int64(0)
		waiting := map[int]int64{}
		for post := int64(1); post <= 3; post++ {
			waiting[ingestPartition(post, len(rows))]++
		}
		for _, r := range rows {
			total += r.LogEnd
			if r.Lag != 0 || r.Stored != r.LogEnd || (r.LogEnd > 0 && r.Group != r.Stored) {
				return fmt.Errorf("partition %+v not caught up or not copied to the group", r)
			}
			if r.Queued != waiting[r.Partition] || (r.Queued > 0) != (r.Wait > 0) {
				return fmt.Errorf("partition %d: scorer queue %d (oldest %.1fs), want %d", r.Partition, r.Queued, r.Wait, waiting[r.Partition])
			}
		}
		if total < 60 {
			return fmt.Errorf("%d events in the topic, want at least 60", total)
		}
		return nil
	})
	resume()
	testenv.Eventually(t, 20*time.Second, func() error {
		rows, err := lag()
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Queued != 0 {
				return fmt.Errorf("partition %d: %d posts still queued for the scorer", r.Partition, r.Queued)
			}
		}
		return nil
	})
}

// lagJSON is one row of `ratestream lag -o json`.
type lagJSON struct {
	Partition int     `json:"partition"`
	LogEnd    int64   `json:"log_end"`
	Stored    int64   `json:"stored"`
	Lag       int64   `json:"lag"`
	Group     int64   `json:"group_committed"`
	Queued    int64   `json:"scorer_queued"`
	Wait      float64 `json:"scorer_oldest_wait_seconds"`
}

// ratestreamLag runs `ratestream lag -o json` against the stack.
func ratestreamLag(t *testing.T, s *stack) ([]lagJSON, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.Binaries(t), "ratestream"), "lag", "-o", "json")
	cmd.Env = append(os.Environ(), s.env...)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ratestream lag: %v", err)
	}
	var rows []lagJSON
	return rows, json.Unmarshal(out, &rows)
}
