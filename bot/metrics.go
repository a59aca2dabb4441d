package bot

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cropshield/cropshield/inference"
)

// Metrics are the handler's Prometheus collectors.
type Metrics struct {
	Messages   *prometheus.CounterVec   // inbound messages by platform and kind
	Replies    *prometheus.CounterVec   // replies sent by platform and kind
	Cache      *prometheus.CounterVec   // photo cache lookups by platform and result (hit, miss)
	Errors     *prometheus.CounterVec   // errors by platform and reason
	Inferences prometheus.Counter       // model runs
	Latency    *prometheus.HistogramVec // seconds per analysis stage (decode ... encode, total)
}

// NewMetrics creates the collectors and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cropshield_messages_total", Help: "Inbound messages by platform and kind (photo, command, text).",
		}, []string{"platform", "kind"}),
		Replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cropshield_replies_total", Help: "Replies sent by platform and kind.",
		}, []string{"platform", "kind"}),
		Cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cropshield_photo_cache_total", Help: "Photo analysis cache lookups by platform and result (hit, miss).",
		}, []string{"platform", "result"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cropshield_errors_total", Help: "Errors by platform and reason.",
		}, []string{"platform", "reason"}),
		Inferences: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cropshield_inferences_total", Help: "Photos analysed by the model (cache misses that reached inference).",
		}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cropshield_analysis_seconds",
			Help:    "Seconds per analysis stage: decode, preprocess, inference, render, encode, and total.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.Messages, m.Replies, m.Cache, m.Errors, m.Inferences, m.Latency)
	}
	return m
}

func (m *Metrics) observe(t inference.Timings, total time.Duration) {
	m.Inferences.Inc()
	for stage, d := range map[string]time.Duration{
		"decode": t.Decode, "preprocess": t.Preprocess, "inference": t.Inference,
		"render": t.Render, "encode": t.Encode, "total": total,
	} {
		m.Latency.WithLabelValues(stage).Observe(d.Seconds())
	}
}
