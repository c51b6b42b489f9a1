// Package buildinfo says which build of ratestream is running: the
// version stamped at link time (the image's build argument VERSION) and
// the source revision the Go toolchain recorded.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is set at link time:
//
//	go build -ldflags "-X github.com/ratestream/ratestream/pkg/buildinfo.Version=1.2.3"
var Version = "dev"

// Revision is the VCS revision the binary was built from, when known.
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// Collector exports ratestream_build_info{version, revision, goversion} 1.
func Collector() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ratestream_build_info", Help: "The running build: always 1, with the version, revision and Go version as labels.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(Version, Revision(), runtime.Version()).Set(1)
	return g
}
