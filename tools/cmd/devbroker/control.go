package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"
)

// serveControl answers the fault API on addr (loopback only) until the
// returned stop is called. Broker n (from 0) listens on ports[n].
//
//	POST /brokers/N/stop   close broker N's listener and its clients' connections; its partitions get other leaders
//	POST /brokers/N/start  broker N listens again on its port
//	POST /leaders/shuffle  every partition gets a leader at random (a leader election)
//	GET  /leaders?topic=T  partition -> leader node of topic T
//
// A stopped broker refuses new connections and drops those it had, as a
// broker that dies does; the other brokers answer NOT_LEADER_OR_FOLLOWER
// for partitions that moved until a client refreshes its metadata, as a
// real cluster does after a leader election.
func serveControl(log *zap.Logger, c *kfake.Cluster, tracked *conns, addr string, ports []int) (func(), error) {
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		return nil, fmt.Errorf("DEVBROKER_CONTROL_ADDR %q: want 127.0.0.1:PORT", addr)
	}
	mux := http.NewServeMux()
	node := func(r *http.Request) (int32, error) {
		n, err := strconv.Atoi(r.PathValue("node"))
		if err != nil || n < 0 || n >= len(ports) {
			return 0, fmt.Errorf("no broker %q: brokers are 0..%d", r.PathValue("node"), len(ports)-1)
		}
		return int32(n), nil
	}
	answer := func(w http.ResponseWriter, what string, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		log.Warn("fault injected", zap.String("fault", what))
		fmt.Fprintln(w, what)
	}
	mux.HandleFunc("POST /brokers/{node}/stop", func(w http.ResponseWriter, r *http.Request) {
		n, err := node(r)
		if err == nil {
			if err = c.RemoveNode(n); err == nil {
				tracked.drop(fmt.Sprintf("127.0.0.1:%d", ports[n]))
			}
		}
		answer(w, fmt.Sprintf("broker %d stopped", n), err)
	})
	mux.HandleFunc("POST /brokers/{node}/start", func(w http.ResponseWriter, r *http.Request) {
		n, err := node(r)
		if err == nil {
			_, _, err = c.AddNode(n, ports[n])
		}
		answer(w, fmt.Sprintf("broker %d started", n), err)
	})
	mux.HandleFunc("POST /leaders/shuffle", func(w http.ResponseWriter, _ *http.Request) {
		c.ShufflePartitionLeaders()
		answer(w, "leaders shuffled", nil)
	})
	mux.HandleFunc("GET /leaders", func(w http.ResponseWriter, r *http.Request) {
		topic := r.URL.Query().Get("topic")
		leaders := map[string]int32{}
		for p := int32(0); ; p++ {
			l := c.LeaderFor(topic, p)
			if l < 0 {
				break
			}
			leaders[strconv.Itoa(int(p))] = l
		}
		if len(leaders) == 0 {
			http.Error(w, "no topic "+strings.TrimSpace(topic), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(leaders)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("DEVBROKER_CONTROL_ADDR: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("fault API listening", zap.String("addr", addr))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
