package bot

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cropshield/cropshield/store"
)

// gauge returns the value of a gauge metric without labels from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestCacheMetrics (issue 16, item 20): /metrics has the photo cache's hit ratio and the
// analysis cache's size, read from the real store at each scrape.
func TestCacheMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if got := gauge(t, reg, "cropshield_photo_cache_hit_ratio"); got != 0 {
		t.Errorf("hit ratio before any lookup: %v", got)
	}
	for _, r := range []struct{ platform, result string }{{"webchat", "hit"}, {"telegram", "hit"}, {"telegram", "hit"}, {"webchat", "miss"}} {
		m.Cache.WithLabelValues(r.platform, r.result).Inc()
	}
	if got := gauge(t, reg, "cropshield_photo_cache_hit_ratio"); got != 0.75 {
		t.Errorf("hit ratio after 3 hits and 1 miss: %v, want 0.75", got)
	}

	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "cropshield.db"), store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := RegisterCacheSize(reg, st.CacheStats); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		a := store.Analysis{PhotoHash: string(rune('a'+i)) + "0000000000000000000000000000000000000000000000000000000000000000"[1:], ModelVersion: "v1",
			Overlay: make([]byte, 5000), CreatedAt: time.Now()}
		if err := st.PutAnalysis(context.Background(), a, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := gauge(t, reg, "cropshield_cache_analyses"); got != 2 {
		t.Errorf("cache analyses: %v, want 2", got)
	}
	if got := gauge(t, reg, "cropshield_cache_bytes"); got < 10000 {
		t.Errorf("cache bytes: %v, want at least the two overlays' 10000", got)
	}
	if _, err := st.ClearCache(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, reg, "cropshield_cache_analyses"); got != 0 {
		t.Errorf("cache analyses after clearing: %v", got)
	}
}
