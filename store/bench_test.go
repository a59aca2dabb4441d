package store

import (
	"bytes"
	"strings"
	"testing"
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
