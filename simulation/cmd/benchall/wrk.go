package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/ratestream/ratestream/simulation/loadgen"
)

// runWrk drives ingest with wrk and simulation/wrk/random_rating.lua for
// d, and returns wrk's summary and the CPU seconds wrk spent.
func runWrk(ctx context.Context, base string, d time.Duration) (loadgen.Result, float64, error) {
	script := filepath.Join("simulation", "wrk", "random_rating.lua")
	cmd := exec.CommandContext(ctx, "wrk", "-t2", "-c200", "-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", "-s", script, base)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return loadgen.Result{}, 0, fmt.Errorf("wrk: %v: %s", err, out.String())
	}
	cpu := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	r, err := parseWrk(out.String())
	if err != nil {
		return r, 0, fmt.Errorf("%v in wrk's output:\n%s", err, out.String())
	}
	r.Name = "wrk -t2 -c200"
	fmt.Println(r)
	return r, cpu, nil
}

var (
	wrkTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's --latency report: requests, time, percentiles,
// non-2xx answers and socket errors.
func parseWrk(s string) (loadgen.Result, error) {
	var r loadgen.Result
	m := wrkTotal.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no request count")
	}
	r.Requests, _ = strconv.Atoi(m[1])
	r.Seconds = wrkDuration(m[2], m[3]).Seconds()
	for _, p := range wrkPct.FindAllStringSubmatch(s, -1) {
		ms := float64(wrkDuration(p[2], p[3])) / float64(time.Millisecond)
		switch p[1] {
		case "50":
			r.P50ms = ms
		case "90":
			r.P90ms = ms
		case "99":
			r.P99ms = ms
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		r.Errors, _ = strconv.Atoi(m[1])
	}
	if m := wrkSockErr.FindStringSubmatch(s); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.Atoi(f)
			r.Errors += n
		}
	}
	if r.Seconds > 0 {
		r.PerSecond = float64(r.Requests-r.Errors) / r.Seconds
	}
	if r.Requests > 0 {
		r.ErrorRate = float64(r.Errors) / float64(r.Requests)
	}
	return r, nil
}

func wrkDuration(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return time.Duration(f * float64(time.Microsecond))
	case "ms":
		return time.Duration(f * float64(time.Millisecond))
	case "m":
		return time.Duration(f * float64(time.Minute))
	}
	return time.Duration(f * float64(time.Second))
}
