package dashboard

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cropshield/cropshield/store"
)

// Cache is the analysis cache as the dashboard shows and clears it; *store.Store implements it.
type Cache interface {
	CacheStats(ctx context.Context) (store.CacheStats, error)
	ClearCache(ctx context.Context) (store.CacheStats, error)
	HasPhoto(ctx context.Context, photoHash string) (bool, error)
}

// clearCache empties the analysis cache (analyses and overlays only: photos, conversations,
// corrections and statistics stay), an admin's action with its audit entry. It needs the
// confirmation box.
func (s *Server) clearCache(w http.ResponseWriter, r *http.Request, sess *session) {
	if r.PostFormValue("confirm") != "yes" {
		http.Redirect(w, r, "/stats#cache", http.StatusSeeOther)
		return
	}
	removed, err := s.st.ClearCache(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	detail := fmt.Sprintf("%d analyses, %d overlays, %s", removed.Analyses, removed.Overlays, FormatBytes(removed.Bytes))
	if err := s.st.LogStaffAudit(r.Context(), store.StaffAudit{Time: s.opts.Now(), By: sess.name, Action: store.AuditClearCache, Detail: detail}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("dashboard: analysis cache cleared", "staff", sess.name, "analyses", removed.Analyses, "overlays", removed.Overlays, "bytes", removed.Bytes)
	http.Redirect(w, r, "/stats?done=cache_cleared#cache", http.StatusSeeOther)
}

// FormatBytes writes a size in B, KiB, MiB or GiB with one decimal (the dashboard and the CLI).
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}

// cacheView is the statistics page's cache section.
type cacheView struct {
	store.CacheStats
	Size     string
	CanClear bool
}
