package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ratestream/ratestream/pkg/launch"
)

// freshnessBench measures how long after ingest's 2xx a rating shows as
// the caller's my_score, through the whole pipeline (broker, windower,
// query), 200 times in a row under no other load.
func freshnessBench(ctx context.Context, e *env, o opts) ([]figure, error) {
	url, _, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	if cmd, err := e.spawnArgs("mkposts", []string{"-n", "10"}, "DATABASE_URL="+url); err != nil || cmd.wait() != nil {
		return nil, fmt.Errorf("seed posts: %v", err)
	}
	brokerAddr, err := e.broker(12)
	if err != nil {
		return nil, err
	}
	common := []string{"DATABASE_URL=" + url, "KAFKA_BROKERS=" + brokerAddr}
	ingest := freeAddr()
	query := freeAddr()
	for name, extra := range map[string]string{
		"ingest": "INGEST_ADDR=" + ingest, "query": "QUERY_ADDR=" + query,
		"windower": "WINDOWER_ADDR=" + freeAddr(),
	} {
		if _, err := e.spawn(name, append([]string{extra}, common...)...); err != nil {
			return nil, err
		}
	}
	for _, base := range []string{"http://" + ingest, "http://" + query} {
		if err := launch.WaitReady(ctx, base, 30*time.Second); err != nil {
			return nil, err
		}
	}
	c := &http.Client{Timeout: 5 * time.Second}
	rate := func(user string, score int) error {
		resp, err := c.Post("http://"+ingest+"/v1/posts/3/ratings", "application/json",
			strings.NewReader(fmt.Sprintf(`{"user_id":%q,"score":%d}`, user, score)))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("rate: %d", resp.StatusCode)
		}
		return nil
	}
	mine := func(user string) (int, bool) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+query+"/v1/posts/3", nil)
		req.Header.Set("X-User-ID", user)
		resp, err := c.Do(req)
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var p struct {
			MyScore *int `json:"my_score"`
		}
		if json.NewDecoder(resp.Body).Decode(&p) != nil || p.MyScore == nil {
			return 0, false
		}
		return *p.MyScore, true
	}
	// The first rating waits for the windower to join its group.
	if err := rate("warm-up", 1); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := mine("warm-up"); ok {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the windower never caught up")
		}
	}
	var lat []time.Duration
	for i := 0; i < 200; i++ {
		user, score := fmt.Sprintf("fresh-%d", i), i%6
		if err := rate(user, score); err != nil {
			return nil, err
		}
		acked := time.Now()
		for {
			if s, ok := mine(user); ok && s == score {
				break
			}
			if time.Since(acked) > 10*time.Second {
				return nil, fmt.Errorf("rating %d not visible after 10s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(acked))
	}
	p50, p99, worst := spread(lat)
	fmt.Printf("my_score visible after the 2xx: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", p50, p99, worst)
	return []figure{
		plain("freshness", "my_score visible after 2xx, p50", p50, "ms"),
		plain("freshness", "my_score visible after 2xx, p99", p99, "ms"),
		target("freshness", "my_score visible after 2xx, max", worst, "ms", "<= 1000", worst <= 1000),
	}, nil
}
