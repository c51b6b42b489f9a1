package main

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rejected       *prometheus.CounterVec
	produced       prometheus.Counter
	produceErrors  prometheus.Counter
	produceLatency prometheus.Histogram
	batchSize      prometheus.Gauge
	batchSizeMax   prometheus.Gauge
	inFlight       prometheus.Gauge
	erasures       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_rejected_total", Help: "Ratings refused, by reason.",
		}, []string{"reason"}),
		produced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_produced_total", Help: "Ratings acknowledged by the broker.",
		}),
		produceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_produce_errors_total", Help: "Ratings the broker did not acknowledge in time.",
		}),
		produceLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ingest_produce_duration_seconds",
			Help:    "Time from handing a rating to the writer to the broker's acknowledgement.",
			Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2},
		}),
		batchSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingest_batch_size_avg", Help: "Mean messages per produce batch over the last interval.",
		}),
		batchSizeMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingest_batch_size_max", Help: "Largest produce batch over the last interval.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingest_in_flight", Help: "Ratings waiting for the broker.",
		}),
		erasures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_erasures_total", Help: "Users erased through DELETE /v1/me.",
		}),
	}
	reg.MustRegister(m.rejected, m.produced, m.produceErrors, m.produceLatency, m.batchSize, m.batchSizeMax, m.inFlight, m.erasures)
	return m
}
