package bot

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/store"
)

// Metrics are the handler's Prometheus collectors.
type Metrics struct {
	Messages   *prometheus.CounterVec   // inbound messages by platform and kind
	Replies    *prometheus.CounterVec   // replies sent by platform and kind
	Cache      *CacheLookups            // photo cache lookups by platform and result (hit, miss)
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
		Cache: &CacheLookups{CounterVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cropshield_photo_cache_total", Help: "Photo analysis cache lookups by platform and result (hit, miss).",
		}, []string{"platform", "result"})},
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
		reg.MustRegister(m.Messages, m.Replies, m.Cache, m.Errors, m.Inferences, m.Latency,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "cropshield_photo_cache_hit_ratio",
				Help: "Share of photo cache lookups since start that were hits (0 before the first lookup).",
			}, m.Cache.HitRatio))
	}
	return m
}

// CacheLookups counts the photo cache's lookups by platform and result ("hit", "miss") and
// keeps the totals for the hit ratio.
type CacheLookups struct {
	*prometheus.CounterVec
	hits, lookups atomic.Int64
}

// WithLabelValues returns the counter of a platform and result; counting on it also counts
// toward the hit ratio.
func (c *CacheLookups) WithLabelValues(platform, result string) prometheus.Counter {
	return lookupCounter{Counter: c.CounterVec.WithLabelValues(platform, result), c: c, hit: result == "hit"}
}

// HitRatio is the share of lookups that were hits, 0 before the first.
func (c *CacheLookups) HitRatio() float64 {
	n := c.lookups.Load()
	if n == 0 {
		return 0
	}
	return float64(c.hits.Load()) / float64(n)
}

type lookupCounter struct {
	prometheus.Counter
	c   *CacheLookups
	hit bool
}

func (l lookupCounter) Inc() { l.Add(1) }

func (l lookupCounter) Add(v float64) {
	l.Counter.Add(v)
	l.c.lookups.Add(int64(v))
	if l.hit {
		l.c.hits.Add(int64(v))
	}
}

// cacheSize exports the analysis cache's size, read from the store at each scrape.
type cacheSize struct {
	stats           func(ctx context.Context) (store.CacheStats, error)
	analyses, bytes *prometheus.Desc
	timeout         time.Duration
}

// RegisterCacheSize adds the analysis cache's size to reg: cropshield_cache_analyses and
// cropshield_cache_bytes, read with stats (store.Store.CacheStats) at each scrape.
func RegisterCacheSize(reg prometheus.Registerer, stats func(ctx context.Context) (store.CacheStats, error)) error {
	return reg.Register(&cacheSize{stats: stats, timeout: 5 * time.Second,
		analyses: prometheus.NewDesc("cropshield_cache_analyses", "Photo analyses in the cache (one per photo; cropshield cache clear empties it).", nil, nil),
		bytes:    prometheus.NewDesc("cropshield_cache_bytes", "Bytes of the database the cached analyses and heat-map overlays use.", nil, nil)})
}

func (c *cacheSize) Describe(ch chan<- *prometheus.Desc) { ch <- c.analyses; ch <- c.bytes }

func (c *cacheSize) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cs, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.analyses, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.analyses, prometheus.GaugeValue, float64(cs.Analyses))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(cs.Bytes))
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
