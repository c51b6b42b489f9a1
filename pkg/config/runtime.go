package config

import (
	"os"
	"runtime/debug"
)

// TuneGC sets the garbage collector's target to percent unless GOGC is
// set. The services are allocation-heavy request handlers on machines
// with memory to spare and few cores: a less eager collector buys CPU
// (ingest: about 25% more ratings per second at 400).
func TuneGC(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}
