package bot_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/internal/testenv"
)

// withComment returns the JPEG with a comment segment after SOI: the same pixels, a new hash,
// so every benchmark iteration is a cache miss that decodes the same photo.
func withComment(jpg []byte, n int) []byte {
	c := fmt.Sprintf("cropshield-bench-%08d", n)
	seg := []byte{0xff, 0xfe, 0, byte(len(c) + 2)}
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, c...)
	return append(out, jpg[2:]...)
}

// BenchmarkHandler measures the whole handler with the real store (fsync on every write) and the
// real model: a new photo (download, hash, decode, inference, overlay, store, reply, logs), the
// same photo again (hash and cache), and a known platform content id (no download at all).
func BenchmarkHandler(b *testing.B) {
	for _, sz := range []struct{ w, h int }{{1280, 960}, {4000, 3000}} {
		leaf := testenv.LeafJPEG(b, sz.w, sz.h, 9)
		name := fmt.Sprintf("%dx%d", sz.w, sz.h)
		b.Run(name+"/new-photo", func(b *testing.B) {
			f := newFixture(b, bot.Config{Threshold: 0.01, Burst: 1 << 30}, nil)
			photos := make([][]byte, b.N)
			for i := range photos {
				photos[i] = withComment(leaf, i)
			}
			b.ResetTimer()
			for i := range b.N {
				f.benchSend(b, bytesPhoto(photos[i]))
			}
			b.StopTimer()
			if got := f.inferences(); got != float64(b.N) {
				b.Fatalf("inferences %v, want %d", got, b.N)
			}
		})
		b.Run(name+"/same-photo", func(b *testing.B) {
			f := newFixture(b, bot.Config{Threshold: 0.01, Burst: 1 << 30}, nil)
			f.benchSend(b, bytesPhoto(leaf))
			for b.Loop() {
				f.benchSend(b, bytesPhoto(leaf))
			}
			if got := f.inferences(); got != 1 {
				b.Fatalf("inferences %v, want 1", got)
			}
		})
	}
	b.Run("known-content-id", func(b *testing.B) {
		f := newFixture(b, bot.Config{Threshold: 0.01, Burst: 1 << 30}, nil)
		leaf := testenv.LeafJPEG(b, 1280, 960, 10)
		p := &bot.Photo{ContentID: "AgADbench", Fetch: func(context.Context) ([]byte, error) { return leaf, nil }}
		f.benchSend(b, p)
		p.Fetch = func(context.Context) ([]byte, error) { b.Fatal("downloaded a known photo"); return nil, nil }
		for b.Loop() {
			f.benchSend(b, p)
		}
	})
}

func (f *fixture) benchSend(b *testing.B, p *bot.Photo) {
	m := bot.Message{ID: fmt.Sprint("b", f.seq.Add(1)), Chat: private("bench"), Sender: bot.Sender{ID: "u"}, Photo: p}
	if err := f.handler.Handle(context.Background(), m, f.out); err != nil {
		b.Fatal(err)
	}
	if r := f.out.take(); len(r) != 1 || r[0].Kind != bot.KindDiagnosis {
		b.Fatalf("replies %v", r)
	}
}
