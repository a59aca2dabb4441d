package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkListConversations lists the first page (50) of 10,000 conversations of 4 messages
// each. It reports the summaries read per page: one page, never the 40,000 messages.
func BenchmarkListConversations(b *testing.B) {
	s := newTestStore(b, "")
	loadConversations(b, s, 10_000)
	for _, bc := range []struct {
		name string
		f    ConversationFilter
	}{
		{"first-page", ConversationFilter{}},
		{"platform", ConversationFilter{Platform: "whatsapp"}},
		{"needs-attention", ConversationFilter{NeedsAttention: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var scanned int
			b.ReportAllocs()
			for b.Loop() {
				p, err := s.ListConversations(b.Context(), ListOptions{Filter: bc.f, Limit: 50})
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Items) != 50 {
					b.Fatalf("%d items", len(p.Items))
				}
				scanned = p.Scanned
			}
			b.ReportMetric(float64(scanned), "summaries/op")
		})
	}
}

// loadConversations writes n conversations (inbound photo, bot answer, inbound text, command
// answer) in a few large transactions.
func loadConversations(b *testing.B, s *Store, n int) {
	b.Helper()
	platforms := []string{"telegram", "whatsapp", "webchat"}
	kinds := []string{kindDiagnosis, kindUnsure, kindDiagnosis, kindNotLeaf}
	var batch []Record
	for i := range n {
		p, chat := platforms[i%3], fmt.Sprintf("chat-%05d", i)
		at := testTime.Add(time.Duration(i) * time.Minute)
		batch = append(batch,
			Record{Time: at, Platform: p, ChatID: chat, Direction: Inbound, SenderName: "Farmer", PhotoHash: hashOf(i % 500), Lang: "en"},
			Record{Time: at.Add(time.Second), Platform: p, ChatID: chat, Direction: Outbound, Kind: kinds[i%4], PhotoHash: hashOf(i % 500), Text: "Most likely diseases: ..."},
			Record{Time: at.Add(2 * time.Second), Platform: p, ChatID: chat, Direction: Inbound, Text: "thank you"},
			Record{Time: at.Add(3 * time.Second), Platform: p, ChatID: chat, Direction: Outbound, Kind: "command", Text: "Send /help"},
		)
		if len(batch) >= 4000 {
			if _, err := s.AppendMessages(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := s.AppendMessages(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
}
