package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/simulation/loadgen"
)

// ingestBench drives the seed's random_rating request at ingest and at a
// bare gin handler that only decodes the body, then checks that the topic
// holds exactly as many events as ingest answered 2xx.
func ingestBench(ctx context.Context, e *env, o opts) ([]figure, error) {
	url, _, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	if cmd, err := e.spawn("mkposts", "DATABASE_URL="+url); err != nil || cmd.wait() != nil {
		return nil, fmt.Errorf("seed posts: %v", err)
	}
	brokerAddr, brokerProc, err := e.startBroker(12, "DEVBROKER_MEMORY_ONLY=true")
	if err != nil {
		return nil, err
	}
	addr := freeAddr()
	ingestProc, err := e.spawn("ingest", "INGEST_ADDR="+addr, "DATABASE_URL="+url, "KAFKA_BROKERS="+brokerAddr)
	if err != nil {
		return nil, err
	}
	if err := launch.WaitReady(ctx, "http://"+addr, 30*time.Second); err != nil {
		return nil, err
	}
	t := loadgen.Target{Ingest: "http://" + addr, Posts: 1000, Users: 1_000_000}
	warm := loadgen.Run(ctx, loadgen.Plan{Name: "warm-up", VUs: o.vus, Duration: 2 * time.Second, Request: t.RateRequest()})
	fmt.Println(warm)
	procs := map[string]*proc{"ingest": ingestProc, "broker": brokerProc, "load generator": {pid: os.Getpid()}}
	cpu0 := cpuSeconds(procs)
	real := loadgen.Run(ctx, loadgen.Plan{Name: "ingest /api/rate", VUs: o.vus, Duration: o.duration, Request: t.RateRequest()})
	cpu := cpuPerRequest(cpu0, cpuSeconds(procs), float64(max(real.Requests, 1)))
	fmt.Println(real)
	fmt.Printf("CPU µs per request: ingest %.1f, PostgreSQL %.1f, broker %.1f, load generator %.1f\n",
		cpu["ingest"], cpu["postgres"], cpu["broker"], cpu["load generator"])

	bare, stop, err := bareGin(func(c *gin.Context) {
		var body struct {
			Post   int64  `json:"post"`
			UserID string `json:"user_id"`
			Score  int    `json:"score"`
		}
		if err := json.NewDecoder(c.Request.Body).Decode(&body); err != nil {
			c.Status(http.StatusBadRequest)
			return
		}
		c.JSON(http.StatusAccepted, body)
	}, "POST", "/api/rate")
	if err != nil {
		return nil, err
	}
	defer stop()
	bt := loadgen.Target{Ingest: bare, Posts: 1000, Users: 1_000_000}
	loadgen.Run(ctx, loadgen.Plan{Name: "warm-up", VUs: o.vus, Duration: 2 * time.Second, Request: bt.RateRequest()})
	ceiling := loadgen.Run(ctx, loadgen.Plan{Name: "bare gin", VUs: o.vus, Duration: o.duration, Request: bt.RateRequest()})
	fmt.Println(ceiling)

	accepted := warm.Statuses["201"] + real.Statuses["201"]
	events, distinct, err := countEvents(ctx, broker.Config{Brokers: []string{brokerAddr}, Topic: "ratings.v1"})
	if err != nil {
		return nil, err
	}
	fmt.Printf("2xx answers %d; ratings.v1 holds %d events, %d distinct event ids\n", accepted, events, distinct)
	ratio := real.PerSecond / ceiling.PerSecond
	figs := httpFigures("ingest", "ingest", real)
	figs = append(figs, httpFigures("ingest", "bare gin", ceiling)...)
	// The machine's speed varies from one run to the next by as much as
	// the load generator's own cost per request does (the same code each
	// time), so the services' CPU is also given in units of it: a figure
	// that compares runs, and commits, across that variation.
	service := cpu["ingest"] + cpu["postgres"] + cpu["broker"]
	figs = append(figs,
		plain("ingest", "CPU per request: ingest", cpu["ingest"], "µs"),
		plain("ingest", "CPU per request: PostgreSQL", cpu["postgres"], "µs"),
		plain("ingest", "CPU per request: broker", cpu["broker"], "µs"),
		plain("ingest", "CPU per request: load generator", cpu["load generator"], "µs"),
		plain("ingest", "service CPU per request / load generator's", service/cpu["load generator"], ""),
	)
	figs = append(figs,
		target("ingest", "throughput ratio ingest/bare", ratio, "", ">= 0.5", ratio >= 0.5),
		target("ingest", "ingest p99", real.P99ms, "ms", "<= 50", real.P99ms <= 50),
		target("ingest", "ingest errors", float64(real.Errors), "", "0", real.Errors == 0),
		// A produce retry after a lost acknowledgement writes an event twice
		// (kafka-go has no idempotent producer); the windower ignores the
		// second copy, so what must match the 2xx answers is distinct ids.
		target("ingest", "distinct events in topic - 2xx answers", float64(distinct-int64(accepted)), "", "0", distinct == int64(accepted)),
		plain("ingest", "duplicate deliveries in topic", float64(events-distinct), ""),
	)
	return figs, nil
}

// cpuPerRequest turns two readings of cpuSeconds into µs per request.
func cpuPerRequest(before, after map[string]float64, requests float64) map[string]float64 {
	out := make(map[string]float64, len(after))
	for name, v := range after {
		out[name] = (v - before[name]) / requests * 1e6
	}
	return out
}

// bareGin serves one handler on a loopback port: the ceiling a gin
// service can reach on this machine.
func bareGin(h gin.HandlerFunc, method, path string) (string, func(), error) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Handle(method, path, h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: e}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// countEvents reads the whole topic and counts its events and their
// distinct event ids.
func countEvents(ctx context.Context, cfg broker.Config) (total, distinct int64, err error) {
	parts, err := broker.Partitions(ctx, cfg, cfg.Topic)
	if err != nil {
		return 0, 0, err
	}
	seen := map[uuid.UUID]struct{}{}
	for _, p := range parts {
		err := broker.ReadPartition(ctx, cfg, cfg.Topic, p, func(m kafka.Message) error {
			e, err := rating.Unmarshal(m.Value)
			if err != nil {
				return err
			}
			total++
			seen[e.EventID] = struct{}{}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	return total, int64(len(seen)), nil
}
