package main

import "testing"

func TestParseWrk(t *testing.T) {
	out := `Running 20s test @ http://127.0.0.1:8080
  2 threads and 200 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.34ms    5.67ms 100.00ms   75.00%
    Req/Sec     5.00k   500.00     6.00k    70.00%
  Latency Distribution
     50%  880.00us
     75%   15.00ms
     90%   20.00ms
     99%    1.20s
  200000 requests in 20.00s, 50.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 7
  Non-2xx or 3xx responses: 90
Requests/sec:  10000.00
Transfer/sec:      2.50MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 200000 || r.Seconds != 20 || r.Errors != 100 || r.PerSecond != 9995 {
		t.Fatalf("requests %d seconds %v errors %d rate %v", r.Requests, r.Seconds, r.Errors, r.PerSecond)
	}
	if r.P50ms != 0.88 || r.P90ms != 20 || r.P99ms != 1200 {
		t.Fatalf("p50 %v p90 %v p99 %v", r.P50ms, r.P90ms, r.P99ms)
	}
	if _, err := parseWrk("wrk: connection refused"); err == nil {
		t.Fatal("an output without a request count must be an error")
	}
}
