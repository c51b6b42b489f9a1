package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/simulation/loadgen"
)

// serveEnv, when set in benchall's environment, makes it a bare HTTP
// server on that address instead (the floor's server process).
const serveEnv = "BENCHALL_BARE_HTTP"

// floorBench measures what the pipeline's three unavoidable steps cost on
// this machine when each does nothing else, at the same rate as e2e: an
// HTTP server that reads a rating and answers with a 200-byte body
// (net/http alone, no routing, validation or broker), the broker taking
// and handing out the events in batches (kafka-go writer and partition
// readers against the dev broker), and PostgreSQL storing each rating once
// in a table keyed like ratings (COPY). Their sum is a floor for CPU per
// rating; with the load generator's own cost it bounds what any pipeline
// could sustain on these two cores.
func floorBench(ctx context.Context, e *env, o opts) ([]figure, error) {
	rate := 10000.0
	if len(o.rates) == 1 {
		rate = o.rates[0]
	}
	d := min(o.step, 20*time.Second)
	n := int(rate * d.Seconds())

	// HTTP.
	addr := freeAddr()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	srv, err := e.spawn(filepath.Base(exe), serveEnv+"="+addr)
	if err != nil {
		return nil, err
	}
	if err := launch.WaitTCP(ctx, addr, 10*time.Second); err != nil {
		return nil, err
	}
	tg := loadgen.Target{Ingest: "http://" + addr, Posts: 1000, Users: 1_000_000}
	loadgen.RunRate(ctx, loadgen.RatePlan{Name: "warm-up", Rate: 1000, Duration: 2 * time.Second, MaxVUs: 400, Request: tg.RateRequest()})
	c0, self0 := procCPU(srv.pid), procCPU(os.Getpid())
	r := loadgen.RunRate(ctx, loadgen.RatePlan{Name: "bare HTTP", Rate: rate, Duration: d, MaxVUs: 400, Request: tg.RateRequest()})
	c1, self1 := procCPU(srv.pid), procCPU(os.Getpid())
	httpUS := (c1 - c0) / float64(r.Requests) * 1e6
	loadUS := (self1 - self0) / float64(r.Requests) * 1e6
	fmt.Println(r)
	most := loadgen.RunRate(ctx, loadgen.RatePlan{Name: "bare HTTP, as fast as it goes", Rate: 60000, Duration: 10 * time.Second, MaxVUs: 400, Request: tg.RateRequest()})
	fmt.Println(most)

	// Broker.
	brokerAddr, bp, err := e.diskBroker(12)
	if err != nil {
		return nil, err
	}
	kcfg := broker.Config{Brokers: []string{brokerAddr}, Topic: "floor", Partitions: 12, Replicas: 1, Retention: -1}
	if err := broker.EnsureTopic(ctx, kcfg, kcfg.Topic, 12); err != nil {
		return nil, err
	}
	brokerUS, clientUS, err := floorKafka(ctx, kcfg, bp, rate, n)
	if err != nil {
		return nil, err
	}

	// PostgreSQL.
	_, pool, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE floor_ratings (LIKE ratings INCLUDING ALL)`); err != nil {
		return nil, err
	}
	pg0 := cpuSeconds(nil)["postgres"]
	began := time.Now()
	for off := 0; off < n; off += 5000 {
		rows := make([][]any, 0, 5000)
		for i := off; i < min(off+5000, n); i++ {
			at := began.Add(time.Duration(i) * time.Microsecond)
			rows = append(rows, []any{int64(1 + i%1000), "device-id-" + strconv.Itoa(i), int16(1 + i%5), at, [16]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}, at.Truncate(time.Minute), false})
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"floor_ratings"}, []string{"post_id", "user_id", "score", "rated_at", "event_id", "window_start", "rerate"}, pgx.CopyFromRows(rows)); err != nil {
			return nil, err
		}
	}
	pgUS := (cpuSeconds(nil)["postgres"] - pg0) / float64(n) * 1e6

	floor := httpUS + brokerUS + clientUS + pgUS
	fmt.Printf("floor at %.0f/s: bare HTTP server %.1f µs/request (load generator %.1f), broker %.1f + its clients %.1f µs/event, PostgreSQL COPY %.1f µs/row: %.1f µs per rating\n",
		rate, httpUS, loadUS, brokerUS, clientUS, pgUS, floor)
	fmt.Printf("bare HTTP as fast as it goes: %.0f requests/s; two cores over (floor + load generator) = %.0f ratings/s\n",
		most.PerSecond, 2e6/(floor+loadUS))
	return []figure{
		plain("floor", "bare HTTP server", httpUS, "µs/request"),
		plain("floor", "load generator", loadUS, "µs/request"),
		plain("floor", "broker in batches", brokerUS, "µs/event"),
		plain("floor", "producer and consumer", clientUS, "µs/event"),
		plain("floor", "PostgreSQL COPY into a ratings-shaped table", pgUS, "µs/row"),
		plain("floor", "sum: CPU per rating no pipeline can go below", floor, "µs"),
		plain("floor", "bare HTTP, as fast as it goes", most.PerSecond, "requests/s"),
		plain("floor", "bound: two cores / (floor + load generator)", 2e6/(floor+loadUS), "ratings/s"),
	}, nil
}

// floorKafka produces n events at rate in batches (one writer, as many
// callers as partitions) and reads them back with one partition reader
// each; it returns the broker's and this process's CPU per event.
func floorKafka(ctx context.Context, cfg broker.Config, bp *proc, rate float64, n int) (brokerUS, clientUS float64, err error) {
	w, err := broker.NewWriter(cfg, cfg.Topic, broker.WriterTuning{BatchSize: 500, BatchBytes: 1 << 20, BatchTimeout: 10 * time.Millisecond, WriteTimeout: 5 * time.Second})
	if err != nil {
		return 0, 0, err
	}
	defer w.Close()
	value, _ := func() ([]byte, error) {
		ev, err := rating.New(1, "device-id-123456", 4, time.Now())
		return ev.AppendJSON(nil), err
	}()
	procs := map[string]*proc{"broker": bp}
	b0, self0 := cpuSeconds(procs)["broker"], procCPU(os.Getpid())
	var read sync.WaitGroup
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var mu sync.Mutex
	total := 0
	done := make(chan struct{})
	for p := range 12 {
		r, err := broker.NewPartitionReader(cfg, cfg.Topic, p, kafka.FirstOffset, broker.Fetch{MinBytes: 16384, MaxWait: 150 * time.Millisecond})
		if err != nil {
			return 0, 0, err
		}
		read.Add(1)
		go func() {
			defer read.Done()
			defer r.Close()
			for {
				if _, err := r.FetchMessage(rctx); err != nil {
					return
				}
				mu.Lock()
				total++
				if total == n {
					close(done)
				}
				mu.Unlock()
			}
		}()
	}
	// One call per 10 ms tick per partition's worth of events.
	per := max(int(rate/100/12), 1)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var write sync.WaitGroup
	sent := 0
	for sent < n {
		<-tick.C
		for range 12 {
			k := min(per, n-sent)
			if k == 0 {
				break
			}
			msgs := make([]kafka.Message, k)
			for i := range msgs {
				msgs[i] = kafka.Message{Key: strconv.AppendInt(nil, int64(sent+i), 10), Value: value}
			}
			sent += k
			write.Add(1)
			go func() {
				defer write.Done()
				if werr := w.WriteMessages(ctx, msgs...); werr != nil {
					mu.Lock()
					err = werr
					mu.Unlock()
				}
			}()
		}
	}
	write.Wait()
	if err != nil {
		return 0, 0, err
	}
	select {
	case <-done:
	case <-rctx.Done():
		return 0, 0, fmt.Errorf("read back %d of %d events", total, n)
	}
	cancel()
	read.Wait()
	b1, self1 := cpuSeconds(procs)["broker"], procCPU(os.Getpid())
	return (b1 - b0) / float64(n) * 1e6, (self1 - self0) / float64(n) * 1e6, nil
}

// serveBare answers every request like ingest's accepted rating, doing
// nothing else: the HTTP part of the floor.
func serveBare(addr string) {
	body := []byte(`{"post":1,"v":1,"event_id":"01a21778-729b-73d9-a6f8-a3d1281e5e45","post_id":1,"user_id":"device-id-123456","score":4,"rated_at":"2026-03-04T05:06:07.123456789Z"}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 4096))
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	})
	fail((&http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}).ListenAndServe())
}
