package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratestream/ratestream/tools/testenv"
)

// The local stack on a cluster of three brokers (make run BROKERS=3):
// topics replicated three times with min.insync.replicas 2. Under load,
// broker 0 (the first address every service was given) closes its
// listener and its partitions get other leaders; it comes back; broker 1
// goes away the same way; then every partition's leader moves at once.
// Ingest answers only 2xx or 503 throughout, every service carries on
// after each fault (none dies and is restarted), and at the end every post's user_count equals
// the distinct users who got a 2xx (zero lost, zero double), and the
// score topic equals post_scores.
func TestABrokerFailsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("long: moves leaders under load")
	}
	first := consecutivePorts(t, 3)
	control := testenv.FreeAddr(t)
	brokers := make([]string, 3)
	for i := range brokers {
		brokers[i] = fmt.Sprintf("127.0.0.1:%d", first+i)
	}
	s := startStack(t, "BROKERS=3", "DEVBROKER_ADDR="+brokers[0], "KAFKA_BROKERS="+strings.Join(brokers, ","),
		"DEVBROKER_CONTROL_ADDR="+control)

	// Created as asked: replicated, and acknowledged by two copies.
	for _, topic := range []string{"ratings.v1", "post-scores.v1"} {
		testenv.Eventually(t, 30*time.Second, func() error {
			if got := testenv.TopicConfig(t, brokers, topic, "min.insync.replicas"); got != "2" {
				return fmt.Errorf("%s: min.insync.replicas %q", topic, got)
			}
			return nil
		})
	}

	l := startLoad(t, s, 48)
	services := []string{"ingest", "windower", "scorer", "query"}
	pids := map[string]int{}
	for _, name := range services {
		pids[name] = s.pid(name)
	}
	fault := func(what, path string) {
		t.Helper()
		before := l.settle()
		at := time.Now()
		resp, err := http.Post("http://"+control+path, "text/plain", nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", what, resp, err)
		}
		resp.Body.Close()
		l.recovered(what, at, before)
	}
	fault("broker 0 stopped (the bootstrap address)", "/brokers/0/stop")
	fault("broker 0 back", "/brokers/0/start")
	fault("broker 1 stopped", "/brokers/1/stop")
	fault("broker 1 back", "/brokers/1/start")
	fault("every partition's leader moved", "/leaders/shuffle")

	status := l.finish()
	for _, name := range services {
		if pid := s.pid(name); pid != pids[name] {
			t.Errorf("%s was restarted (pid %d, then %d): it must carry on through a broker's failure", name, pids[name], pid)
		}
	}
	for code, n := range status {
		if code/100 != 2 && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers %d (or no answer at all: 0): only 2xx and 503 may come while a broker goes away", n, code)
		}
	}
}

// consecutivePorts finds n free loopback ports in a row and returns the
// first.
func consecutivePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		first := testenv.FreePort(t)
		var held []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", first+i))
			if err != nil {
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if len(held) == n {
			return first
		}
	}
	t.Fatalf("no %d free ports in a row", n)
	return 0
}
