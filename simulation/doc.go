// Package simulation holds the traffic and strategy tooling: k6 scripts
// (k6/), the Go load generator and benchmarks (cmd/loadgen, cmd/benchall),
// the strategy simulator (cmd/ratesim, sim/) and its scenarios.
package simulation
