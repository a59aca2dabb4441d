package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cropshield/cropshield/internal/browsertest"
	"github.com/cropshield/cropshield/store"
)

// TestClearCacheFromTheStatisticsPage (issue 16, item 20): the statistics page shows the
// analysis cache's size and hit rate; an admin clears it there while the bot runs (analyses and
// overlays only: the photo, the conversation and the statistics stay), with an audit entry; an
// agent cannot.
func TestClearCacheFromTheStatisticsPage(t *testing.T) {
	e := newEnv(t, nil)
	e.addAdmin()
	agent := e.client()
	token := e.login(agent, "alice", agentPass)
	if _, body, _ := e.page(agent, "/stats"); strings.Contains(body, `id="clear-cache"`) || !strings.Contains(body, `id="cache-size"`) {
		t.Error("an agent sees the clear form, or no cache size")
	}
	if resp := e.post(agent, "/cache/clear", url.Values{"csrf": {token}, "confirm": {"yes"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an agent clears the cache: %s, want 403", resp.Status)
	}

	tab := e.browse(t, 1280, 900, "ada", adminPass)
	e.open(t, tab, "/stats")
	if got := evalJS[string](t, tab, "cache size", `document.querySelector("#cache-size")?.textContent ?? ""`); !strings.HasPrefix(got, "1 analyses, 1 heat-maps, ") {
		t.Errorf("cache size %q", got)
	}
	if got := evalJS[string](t, tab, "cache hits", `document.querySelector("#cache-hits")?.textContent ?? ""`); !strings.HasPrefix(got, "0% of the photos answered in these 30 days came from it (0 of 1)") {
		t.Errorf("cache hit rate %q", got)
	}
	browsertest.Steps(t, tab, "confirm", chromedp.Click(chromedp.ID("clear-confirm")))
	browsertest.Load(t, tab, "clear the cache", chromedp.Click(chromedp.ID("clear-cache-send")))
	if got := evalJS[string](t, tab, "cache size", `document.querySelector("#cache-size")?.textContent ?? ""`); !strings.HasPrefix(got, "0 analyses, 0 heat-maps") {
		t.Errorf("cache size after clearing %q", got)
	}
	if flash := evalJS[string](t, tab, "flash", `document.querySelector(".flash")?.textContent ?? ""`); !strings.Contains(flash, "Cache cleared") {
		t.Errorf("flash %q", flash)
	}
	// The conversation and its photo stay; the photo says its analysis went.
	e.open(t, tab, "/conversations/"+e.convID)
	got := evalJS[map[string]any](t, tab, "thread", `({photos: document.querySelectorAll("li.item.farmer img.original").length,
		gone: document.querySelectorAll(".photo-gone").length, noAnalysis: document.querySelectorAll(".no-analysis").length,
		text: document.body.innerText.includes("my tomato is sick")})`)
	if got["photos"].(float64) != 1 || got["gone"].(float64) != 0 || got["noAnalysis"].(float64) != 1 || !got["text"].(bool) {
		t.Errorf("thread after clearing: %v", got)
	}
	if _, _, err := e.st.GetPhoto(t.Context(), e.hash); err != nil {
		t.Errorf("the photo after clearing: %v", err)
	}
	log, err := e.st.StaffAuditLog(t.Context(), 5)
	if err != nil || len(log) != 1 || log[0].Action != store.AuditClearCache || log[0].By != "ada" || !strings.HasPrefix(log[0].Detail, "1 analyses, 1 overlays") {
		t.Errorf("audit %+v %v", log, err)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
