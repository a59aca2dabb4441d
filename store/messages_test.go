package store

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"
)

func assertRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("record %d Time = %v, want %v", i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("record %d = %+v, want %+v", i, g, w)
		}
	}
}

// appendN appends n inbound text messages "m1".."mn" to a chat and returns
// them with their Seqs.
func appendN(t testing.TB, s *Store, platform, chatID string, n int) []Record {
	t.Helper()
	out := make([]Record, 0, n)
	for i := 1; i <= n; i++ {
		r := Record{
			Time: testTime.Add(time.Duration(i) * time.Second), Platform: platform, ChatID: chatID,
			Direction: Inbound, SenderID: "u1", Text: fmt.Sprintf("m%d", i), MessageID: fmt.Sprint(i),
		}
		seq, err := s.AppendMessage(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		r.Seq = seq
		out = append(out, r)
	}
	return out
}

func TestAppendMessageSeqPerChat(t *testing.T) {
	s := newTestStore(t, "")
	a := appendN(t, s, "telegram", "1", 3)
	b := appendN(t, s, "telegram", "2", 2)
	c := appendN(t, s, "whatsapp", "1", 1)
	for _, tt := range []struct {
		name string
		recs []Record
	}{{"telegram/1", a}, {"telegram/2", b}, {"whatsapp/1", c}} {
		for i, r := range tt.recs {
			if r.Seq != uint64(i+1) {
				t.Errorf("%s record %d Seq = %d, want %d", tt.name, i, r.Seq, i+1)
			}
		}
		got, err := s.Messages(t.Context(), tt.recs[0].Platform, tt.recs[0].ChatID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		assertRecords(t, got, tt.recs)
	}
}

func TestAppendMessageIgnoresSeq(t *testing.T) {
	s := newTestStore(t, "")
	seq, err := s.AppendMessage(t.Context(), Record{Seq: 99, Platform: "telegram", ChatID: "1", Direction: Outbound})
	if err != nil {
		t.Fatal(err)
	}
	if seq != 1 {
		t.Errorf("Seq = %d, want 1", seq)
	}
}

func TestMessages(t *testing.T) {
	s := newTestStore(t, "")
	all := appendN(t, s, "telegram", "1", 10)
	tests := []struct {
		name     string
		chatID   string
		afterSeq uint64
		limit    int
		want     []Record
	}{
		{"all", "1", 0, 100, all},
		{"first page", "1", 0, 4, all[:4]},
		{"second page", "1", 4, 4, all[4:8]},
		{"last page", "1", 8, 4, all[8:]},
		{"past the end", "1", 10, 4, []Record{}},
		{"far past the end", "1", math.MaxUint64, 4, []Record{}},
		{"unknown chat", "2", 0, 4, []Record{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Messages(t.Context(), "telegram", tt.chatID, tt.afterSeq, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Errorf("Messages returned nil, want an empty slice")
			}
			assertRecords(t, got, tt.want)
		})
	}
}

func TestRecentMessages(t *testing.T) {
	s := newTestStore(t, "")
	all := appendN(t, s, "telegram", "1", 10)
	appendN(t, s, "telegram", "10", 5) // a neighbouring key must not leak in
	tests := []struct {
		name   string
		chatID string
		limit  int
		want   []Record
	}{
		{"last three", "1", 3, all[7:]},
		{"last one", "1", 1, all[9:]},
		{"exactly all", "1", 10, all},
		{"more than all", "1", 50, all},
		{"unknown chat", "2", 3, []Record{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RecentMessages(t.Context(), "telegram", tt.chatID, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Errorf("RecentMessages returned nil, want an empty slice")
			}
			assertRecords(t, got, tt.want)
		})
	}
}

func TestUpdateMessage(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	recs := appendN(t, s, "telegram", "1", 3)

	updated := recs[1]
	updated.PhotoHash = "h"
	updated.Error = "could not read the photo"
	if err := s.UpdateMessage(ctx, updated); err != nil {
		t.Fatal(err)
	}
	recs[1] = updated
	got, err := s.Messages(ctx, "telegram", "1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	assertRecords(t, got, recs)

	// An update does not move the sequence.
	next := appendN(t, s, "telegram", "1", 1)
	if next[0].Seq != 4 {
		t.Errorf("Seq after update = %d, want 4", next[0].Seq)
	}

	tests := []struct {
		name string
		r    Record
	}{
		{"unknown seq", Record{Seq: 99, Platform: "telegram", ChatID: "1", Direction: Inbound}},
		{"seq zero", Record{Seq: 0, Platform: "telegram", ChatID: "1", Direction: Inbound}},
		{"unknown chat", Record{Seq: 1, Platform: "telegram", ChatID: "2", Direction: Inbound}},
	}
	for _, tt := range tests {
		if err := s.UpdateMessage(ctx, tt.r); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: UpdateMessage error = %v, want ErrNotFound", tt.name, err)
		}
	}
	// A failed update created nothing.
	if got, err := s.Messages(ctx, "telegram", "2", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("Messages of chat 2 = %v, %v; want none", got, err)
	}
}

func TestAppendMessageConcurrent(t *testing.T) {
	s := newTestStore(t, "")
	const workers, each = 8, 10
	seqs := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				seq, err := s.AppendMessage(t.Context(), Record{
					Platform: "telegram", ChatID: "1", Direction: Inbound, Text: fmt.Sprintf("w%d-%d", w, i),
				})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := make(map[uint64]bool)
	for seq := range seqs {
		if seen[seq] {
			t.Errorf("Seq %d assigned twice", seq)
		}
		seen[seq] = true
	}
	got, err := s.Messages(t.Context(), "telegram", "1", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers*each || len(seen) != workers*each {
		t.Errorf("stored %d, assigned %d; want %d", len(got), len(seen), workers*each)
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has Seq %d, want %d", i, r.Seq, i+1)
		}
	}
}
