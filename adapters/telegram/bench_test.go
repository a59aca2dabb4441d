package telegram_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cropshield/cropshield/internal/testenv"
	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// withComment returns the JPEG with a comment segment after SOI: the same pixels, other bytes,
// so that every photo is new to the cache and goes through the model.
func withComment(jpg []byte, n int) []byte {
	c := fmt.Sprintf("cropshield-bench-%08d", n)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xff, 0xfe, 0, byte(len(c)+2))
	out = append(out, c...)
	return append(out, jpg[2:]...)
}

// BenchmarkPhotos is a load test of the whole path through the fake Bot API server: N group
// chats each send M new photos (800x600, /diagnose) at once; every photo is downloaded,
// analysed by the real model and answered with sendPhoto. It reports photos per second and the
// 50th and 99th percentile from the moment getUpdates hands the update out to the moment the
// fake server receives the sendPhoto quoting it.
func BenchmarkPhotos(b *testing.B) {
	for _, load := range []struct{ chats, photos int }{{1, 8}, {8, 4}, {32, 2}} {
		b.Run(fmt.Sprintf("chats=%d/photos=%d", load.chats, load.photos), func(b *testing.B) {
			e := newEnv(b, nil)
			base := testenv.LeafJPEG(b, 800, 600, 7)
			e.start()
			var latencies []time.Duration
			n, total := 0, time.Duration(0)
			for b.Loop() {
				var msgs []tgbotapi.Message
				for c := range load.chats {
					chat := groupChat(-1009000000 - int64(c))
					for range load.photos {
						n++
						data := withComment(base, n)
						uid := fmt.Sprintf("AQADbench%d", n)
						sizes := []tgbotapi.PhotoSize{{FileID: e.api.addFile(uid, data), FileUniqueID: uid, Width: 800, Height: 600, FileSize: len(data)}}
						msgs = append(msgs, e.photo(chat, farmer(int64(c+1)), "/diagnose", sizes))
					}
				}
				start := time.Now()
				e.api.push(msgs...)
				want := map[string]bool{}
				for _, m := range msgs {
					want[fmt.Sprintf("%d/%d", m.Chat.ID, m.MessageID)] = true
				}
				got := map[string]time.Time{}
				e.api.waitFor(b, "every photo answered", func() bool {
					for _, s := range e.api.sends {
						k := fmt.Sprintf("%d/%d", s.Chat, s.ReplyTo)
						if s.Method == "sendPhoto" && want[k] {
							got[k] = s.At
						}
					}
					return len(got) == len(want)
				})
				total += time.Since(start)
				e.api.mu.Lock()
				for k, at := range got {
					latencies = append(latencies, at.Sub(e.api.deliveredAt[k]))
				}
				e.api.mu.Unlock()
			}
			b.StopTimer()
			e.stop()
			slices.Sort(latencies)
			pct := func(p float64) float64 {
				return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
			}
			b.ReportMetric(float64(len(latencies))/total.Seconds(), "photos/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
