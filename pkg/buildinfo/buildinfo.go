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

// Service is the running service's name (service.Main sets it), exported
// as the service label of ratestream_build_info so that dashboards and
// alerts can tell the services apart whatever the scrape configuration
// calls them: join on instance.
var Service = "unknown"

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

// Collector exports ratestream_build_info{service, version, revision, goversion} 1.
func Collector() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ratestream_build_info", Help: "The running build: always 1, with the service, version, revision and Go version as labels.",
	}, []string{"service", "version", "revision", "goversion"})
	g.WithLabelValues(Service, Version, Revision(), runtime.Version()).Set(1)
	return g
}
