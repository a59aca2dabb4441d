package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cropshield/cropshield/store"
)

// countingStore counts the message-log reads made through it.
type countingStore struct {
	Store
	messageReads atomic.Int64
}

func (c *countingStore) Messages(ctx context.Context, platform, chatID string, afterSeq uint64, limit int) ([]store.Record, error) {
	c.messageReads.Add(1)
	return c.Store.Messages(ctx, platform, chatID, afterSeq, limit)
}

func (c *countingStore) MessagesBefore(ctx context.Context, platform, chatID string, beforeSeq uint64, limit int) ([]store.Record, error) {
	c.messageReads.Add(1)
	return c.Store.MessagesBefore(ctx, platform, chatID, beforeSeq, limit)
}

// BenchmarkConversationsPage renders the conversations page (50 per page) over 10,000
// conversations of 4 messages each: it reads one page of summaries (summaries/op) and no message
// log (message-reads/op), whatever the size of the store.
func BenchmarkConversationsPage(b *testing.B) {
	counting := &countingStore{}
	e := newEnv(b, func(o *Options) { counting.Store = o.Store; o.Store = counting })
	const n = 10_000
	platforms := []string{"telegram", "whatsapp", "webchat"}
	kinds := []string{"diagnosis", "unsure", "diagnosis", "not_leaf"}
	start := e.clock.now()
	var batch []store.Record
	for i := range n {
		p, chat := platforms[i%3], fmt.Sprintf("chat-%05d", i)
		at := start.Add(time.Duration(i) * time.Minute)
		batch = append(batch,
			store.Record{Time: at, Platform: p, ChatID: chat, Direction: store.Inbound, SenderName: fmt.Sprintf("Farmer %d", i), PhotoHash: e.hash, Lang: "en", Text: "my leaves have spots"},
			store.Record{Time: at.Add(time.Second), Platform: p, ChatID: chat, Direction: store.Outbound, Kind: kinds[i%4], PhotoHash: e.hash, Text: "Most likely diseases: ..."},
			store.Record{Time: at.Add(2 * time.Second), Platform: p, ChatID: chat, Direction: store.Inbound, Text: "thank you"},
			store.Record{Time: at.Add(3 * time.Second), Platform: p, ChatID: chat, Direction: store.Outbound, Kind: "command", Text: "Send /help"},
		)
		if len(batch) >= 4000 {
			if _, err := e.st.AppendMessages(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := e.st.AppendMessages(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
	sess := &session{name: "alice", role: RoleAgent, csrf: "token"}
	first, err := e.st.ListConversations(b.Context(), store.ListOptions{Limit: 50})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, query string }{
		{"first-page", ""},
		{"second-page", "cursor=" + first.Next},
		{"whatsapp", "platform=whatsapp"},
		{"needs-attention", "attention=1"},
		{"last-week", "from=2025-06-01&to=2025-06-07"},
		{"search-miss", "q=no-such-farmer"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/conversations?"+bc.query, nil)
			counting.messageReads.Store(0)
			var scanned, items int
			b.ReportAllocs()
			for b.Loop() {
				lv, err := e.srv.listPage(req)
				if err != nil {
					b.Fatal(err)
				}
				w := httptest.NewRecorder()
				e.srv.render(w, req, http.StatusOK, "conversations", view{Session: sess, Page: lv})
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
				scanned, items = lv.Scanned, len(lv.Items)
			}
			b.ReportMetric(float64(scanned), "summaries/op")
			b.ReportMetric(float64(items), "rows/op")
			b.ReportMetric(float64(counting.messageReads.Load())/float64(b.N), "message-reads/op")
		})
	}
}
