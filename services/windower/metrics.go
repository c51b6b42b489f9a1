package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events       *prometheus.CounterVec
	batchSize    prometheus.Histogram
	txLatency    prometheus.Histogram
	lag          *prometheus.GaugeVec
	stalled      *prometheus.GaugeVec
	late         prometheus.Counter
	dlq          *prometheus.CounterVec
	assigned     prometheus.Gauge
	postsTouch   prometheus.Counter
	outsideLog   *prometheus.GaugeVec
	otherWriters prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "windower_events_total", Help: "Events consumed, by outcome (applied, superseded).",
		}, []string{"outcome"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "windower_batch_size", Help: "Messages per batch transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		txLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "windower_transaction_duration_seconds", Help: "Time to apply one batch in PostgreSQL.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "windower_consumer_lag", Help: "Messages between the stored offset and the end of the partition, for every partition of the topic (owned or not), from the broker's log ends.",
		}, []string{"partition"}),
		stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "windower_partition_stalled_seconds", Help: "How long a partition with messages to consume has not moved its stored offset (0 when it keeps up).",
		}, []string{"partition"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "windower_late_events_total", Help: "Events for windows already closed by the watermark (still counted).",
		}),
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "windower_dead_letters_total", Help: "Events parked in the dead-letter topic, by stage (decode: not a valid event; store: refused by PostgreSQL for its content).",
		}, []string{"stage"}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "windower_assigned_partitions", Help: "Partitions this instance owns.",
		}),
		postsTouch: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "windower_posts_marked_total", Help: "Posts marked for rescoring (once per batch).",
		}),
		outsideLog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "windower_offset_outside_log", Help: "1 while a partition is stopped because its stored offset is outside its log (the topic was created again, or retention removed events not yet applied): ratestream reset-offsets.",
		}, []string{"partition"}),
		otherWriters: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "windower_other_writers", Help: "1 while another consumer key stores positions in the same database (a replay or a second windower group pointed at it): the row cache is off.",
		}),
	}
	reg.MustRegister(m.events, m.batchSize, m.txLatency, m.lag, m.stalled, m.late, m.dlq, m.assigned, m.postsTouch, m.outsideLog, m.otherWriters)
	return m
}

func (m *metrics) observe(r result, msgs int, took time.Duration) {
	m.events.WithLabelValues("applied").Add(float64(r.applied))
	m.events.WithLabelValues("superseded").Add(float64(r.superseded))
	m.late.Add(float64(r.late))
	m.postsTouch.Add(float64(r.posts))
	m.batchSize.Observe(float64(msgs))
	m.txLatency.Observe(took.Seconds())
}
