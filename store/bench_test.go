package store

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkGetAnalysis measures a cache hit: the analysis record plus a
// ~100 KB overlay copied out of the transaction.
func BenchmarkGetAnalysis(b *testing.B) {
	s := newTestStore(b, "")
	hash := strings.Repeat("0f", 32)
	a := Analysis{
		PhotoHash:    hash,
		ModelVersion: "v1",
		Top:          []Candidate{{"Tomato___Late_blight", 0.91}, {"Tomato___Early_blight", 0.06}, {"Tomato___healthy", 0.01}},
		Overlay:      bytes.Repeat([]byte{0xab}, 100<<10),
		InferenceMS:  41,
		CreatedAt:    testTime,
	}
	if err := s.PutAnalysis(b.Context(), a, nil, ""); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(a.Overlay)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetAnalysis(b.Context(), hash, "v1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendMessage measures one durable (fsynced) append to a chat log.
func BenchmarkAppendMessage(b *testing.B) {
	s := newTestStore(b, "")
	r := Record{
		Time: testTime, Platform: "telegram", ChatID: "-1001234567890", Direction: Inbound,
		SenderID: "42", SenderName: "Amina", MessageID: "1234", Text: "my tomato leaves have brown spots",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AppendMessage(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBeginReply measures the handler's first write of a message (one write transaction,
// one fsync): the message, its chat and sender, and its turn's first reply attempt; each
// iteration is a new message of one of 100 chats.
func BenchmarkBeginReply(b *testing.B) {
	s := newTestStore(b, "")
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		chatID := strconv.Itoa(i % 100)
		r := Record{
			Time: testTime.Add(time.Duration(i) * time.Second), Platform: "telegram", ChatID: chatID,
			Direction: Inbound, SenderID: chatID, SenderName: "Amina", MessageID: strconv.Itoa(i),
			Text: "my tomato leaves have brown spots",
		}
		chat := &Chat{Platform: "telegram", ID: chatID, Kind: "private"}
		user := &User{Platform: "telegram", ID: chatID, Name: "Amina"}
		if _, err := s.BeginReply(b.Context(), r, chat, user, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBeginReplyParallel is BeginReply from many goroutines at once (replicas' workers): on
// both engines the write transactions run one after another, so this is the store's ceiling of
// message writes per second.
func BenchmarkBeginReplyParallel(b *testing.B) {
	s := newTestStore(b, "")
	var n atomic.Int64
	b.SetParallelism(4) // 4 × GOMAXPROCS writers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			chatID := strconv.FormatInt(i%100, 10)
			r := Record{
				Time: testTime.Add(time.Duration(i) * time.Second), Platform: "telegram", ChatID: chatID,
				Direction: Inbound, SenderID: chatID, SenderName: "Amina", MessageID: strconv.FormatInt(i, 10),
				Text: "my tomato leaves have brown spots",
			}
			chat := &Chat{Platform: "telegram", ID: chatID, Kind: "private"}
			user := &User{Platform: "telegram", ID: chatID, Name: "Amina"}
			if _, err := s.BeginReply(context.Background(), r, chat, user, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
