package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/tools/testenv"
)

// The fault API moves leadership off a stopped broker and back, refuses
// brokers that do not exist, and listens on loopback only.
func TestControlMovesLeadersOffAStoppedBroker(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(12, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := serveControl(zap.NewNop(), c, &conns{}, "0.0.0.0:0", []int{1, 2, 3}); err == nil {
		t.Fatal("a fault API on every interface was accepted")
	}
	addr := testenv.FreeAddr(t)
	ports := make([]int, 3)
	for i, a := range c.ListenAddrs() {
		_, p, _ := strings.Cut(a, ":")
		if ports[i], err = strconv.Atoi(p); err != nil {
			t.Fatal(err)
		}
	}
	stop, err := serveControl(zap.NewNop(), c, &conns{}, addr, ports)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	post := func(path string) (int, string) {
		resp, err := http.Post("http://"+addr+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	leaders := func() map[int32]int {
		n := map[int32]int{}
		for p := int32(0); p < 12; p++ {
			n[c.LeaderFor("t", p)]++
		}
		return n
	}
	if st, body := post("/brokers/1/stop"); st != http.StatusOK {
		t.Fatalf("stop broker 1: %d %s", st, body)
	}
	if n := leaders(); n[1] != 0 {
		t.Fatalf("broker 1 stopped but leads %d partitions: %v", n[1], n)
	}
	if st, _ := post("/brokers/1/stop"); st != http.StatusConflict {
		t.Fatalf("stopping a stopped broker: %d", st)
	}
	if st, body := post("/brokers/1/start"); st != http.StatusOK {
		t.Fatalf("start broker 1: %d %s", st, body)
	}
	if st, _ := post("/brokers/7/stop"); st != http.StatusConflict {
		t.Fatalf("a broker that does not exist: %d", st)
	}
	if st, body := post("/leaders/shuffle"); st != http.StatusOK {
		t.Fatalf("shuffle: %d %s", st, body)
	}
	resp, err := http.Get("http://" + addr + "/leaders?topic=t")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("leaders: %v %v", resp, err)
	}
	resp.Body.Close()
}
