package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/inference/imagecodec"
	"github.com/cropshield/cropshield/internal/synthpng"
	"github.com/cropshield/cropshield/locales"
	"github.com/cropshield/cropshield/store"
)

type benchConfig struct {
	modelConfig
	workers      int
	rounds       int
	photos       int
	hostile      int
	memLimit     byteSize
	decodeBudget byteSize
	asJSON       bool
	cpuProfile   string
}

// benchCmd measures every stage of an analysis and the whole handler on generated phone-like
// photos, the throughput with --workers, and the peak memory under hostile PNGs.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	c := benchConfig{memLimit: defaultMemoryLimit, decodeBudget: inference.DefaultDecodeBudget}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c.register(fs)
	fs.IntVar(&c.workers, "workers", 2, "photos analysed at once in the handler (serve's --workers)")
	fs.IntVar(&c.rounds, "rounds", 40, "photos per kind for the stage and handler figures")
	fs.IntVar(&c.photos, "photos", 200, "distinct 1280x960 photos sent for the throughput figure")
	fs.IntVar(&c.hostile, "hostile", 8, "39.9-megapixel PNGs sent at once for the memory figure (0: skip)")
	fs.Var(&c.memLimit, "memory-limit", "soft limit of the Go heap, as serve's")
	fs.Var(&c.decodeBudget, "decode-budget", "bytes of decoded pixels in flight, as serve's")
	fs.BoolVar(&c.asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cropshield bench [flags]")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 || c.workers < 1 || c.rounds < 1 || c.photos < 1 || c.hostile < 0 {
		return fmt.Errorf("%w: bench takes no arguments; --workers, --rounds and --photos must be positive", errUsage)
	}
	applyMemoryLimit(c.memLimit)
	opts, err := c.options()
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, c.logFormat, c.logLevel)
	if err != nil {
		return err
	}
	opts.Logger, opts.DecodeBudget = log, int64(c.decodeBudget)
	model, err := inference.Load(ctx, c.model, opts)
	if err != nil {
		return fmt.Errorf("load model: %w", err)
	}
	defer func() { err = errors.Join(err, model.Close()) }()
	dir, err := os.MkdirTemp("", "cropshield-bench-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()

	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return errors.Join(fmt.Errorf("cpu profile: %w", err), f.Close())
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	b := &bench{cfg: c, model: model, dir: dir, progress: stderr}
	rep, err := b.run(ctx)
	if err != nil {
		return err
	}
	if c.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.print(stdout)
}

// benchReport is what bench prints; durations are milliseconds.
type benchReport struct {
	Machine    benchMachine    `json:"machine"`
	Stages     []benchStages   `json:"stages"`
	Handler    []benchLatency  `json:"handler"`
	Throughput benchThroughput `json:"throughput"`
	Hostile    *benchHostile   `json:"hostile,omitempty"`
}

type benchMachine struct {
	CPU          string `json:"cpu"`
	Cores        int    `json:"cores"`
	Go           string `json:"go"`
	OnnxRuntime  string `json:"onnxruntime"`
	Model        string `json:"model"`
	Provider     string `json:"provider"`
	JPEG         string `json:"jpeg_codec"`
	MemoryLimit  string `json:"memory_limit"`
	DecodeBudget string `json:"decode_budget"`
}

type percentiles struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

type benchStages struct {
	Photo      string      `json:"photo"`
	Bytes      int         `json:"bytes"`
	N          int         `json:"n"`
	Decode     percentiles `json:"decode"`
	Preprocess percentiles `json:"preprocess"`
	Inference  percentiles `json:"inference"`
	Render     percentiles `json:"render"`
	Encode     percentiles `json:"encode"`
	Analyze    percentiles `json:"analyze"`
}

// benchLatency: percentiles is the time until the reply is handed to the channel (what the user
// waits for), Handled the time until Handle returned (the turn finished: the photo stored).
type benchLatency struct {
	Case string `json:"case"`
	N    int    `json:"n"`
	percentiles
	Handled percentiles `json:"handled"`
}

type benchThroughput struct {
	Workers      int     `json:"workers"`
	Chats        int     `json:"chats"`
	Photos       int     `json:"photos"`
	Seconds      float64 `json:"seconds"`
	PhotosPerSec float64 `json:"photos_per_second"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	// What the RSS was made of at its largest sample (every 20 ms): anonymous memory (Go heap,
	// ONNX Runtime, C buffers), file pages mapped (bbolt's mmap of the database, the binary and
	// libraries), and of the anonymous part the Go heap's spans in use.
	PeakAnonMB   float64 `json:"peak_anon_mb"`
	PeakFileMB   float64 `json:"peak_file_mb"`
	PeakGoHeapMB float64 `json:"peak_go_heap_mb"`
}

type benchHostile struct {
	Photos        int                   `json:"photos"`
	Megapixels    float64               `json:"megapixels"`
	FileBytes     int                   `json:"file_bytes"`
	Seconds       float64               `json:"seconds"`
	Replies       map[bot.ReplyKind]int `json:"replies"`
	PeakRSSMB     float64               `json:"peak_rss_mb"`
	HealthzChecks int                   `json:"healthz_checks"`
	HealthzFailed int                   `json:"healthz_failed"`
	HealthzMaxMS  float64               `json:"healthz_max_ms"`
}

type bench struct {
	cfg      benchConfig
	model    *inference.Model
	dir      string
	progress io.Writer
	seq      atomic.Int64
}

func (b *bench) say(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) (*benchReport, error) {
	info := b.model.Info()
	rep := &benchReport{Machine: benchMachine{CPU: cpuModel(), Cores: runtime.NumCPU(), Go: runtime.Version(),
		OnnxRuntime: info.RuntimeVersion, Model: info.Version, Provider: info.Provider,
		JPEG: imagecodec.Default().Name(), MemoryLimit: b.cfg.memLimit.String(), DecodeBudget: b.cfg.decodeBudget.String()}}
	b.say("generating photos")
	small, err1 := phonePhoto(1280, 960, 1, false)
	large, err2 := phonePhoto(4000, 3000, 2, false)
	smallPNG, err3 := phonePhoto(1280, 960, 3, true)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	kinds := []struct {
		name string
		data []byte
	}{{"1280x960 JPEG", small}, {"4000x3000 JPEG", large}, {"1280x960 PNG", smallPNG}}
	for _, k := range kinds {
		b.say("stages: %s", k.name)
		st, err := b.stages(ctx, k.name, k.data)
		if err != nil {
			return nil, err
		}
		rep.Stages = append(rep.Stages, st)
	}
	h, closeHandler, err := b.handler(ctx, "latency.db")
	if err != nil {
		return nil, err
	}
	for _, k := range kinds[:2] {
		b.say("handler: %s", k.name)
		lat, err := b.handlerLatency(ctx, h, k.name, k.data)
		if err != nil {
			return nil, errors.Join(err, closeHandler())
		}
		rep.Handler = append(rep.Handler, lat...)
	}
	if err := closeHandler(); err != nil {
		return nil, err
	}
	b.say("throughput: %d photos, %d workers", b.cfg.photos, b.cfg.workers)
	if rep.Throughput, err = b.throughput(ctx, small); err != nil {
		return nil, err
	}
	if b.cfg.hostile > 0 {
		b.say("hostile: %d PNGs of 39.9 megapixels at once", b.cfg.hostile)
		if rep.Hostile, err = b.hostileRun(ctx); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// stages runs Analyze rounds times and reads each stage's duration from its result.
func (b *bench) stages(ctx context.Context, name string, data []byte) (benchStages, error) {
	st := benchStages{Photo: name, Bytes: len(data), N: b.cfg.rounds}
	var dec, pre, inf, ren, enc, all []time.Duration
	for i := -2; i < b.cfg.rounds; i++ { // two warm-up runs
		start := time.Now()
		res, err := b.model.Analyze(ctx, data)
		if err != nil {
			return st, fmt.Errorf("%s: %w", name, err)
		}
		if i < 0 {
			continue
		}
		all = append(all, time.Since(start))
		t := res.Timings
		dec, pre, inf, ren, enc = append(dec, t.Decode), append(pre, t.Preprocess), append(inf, t.Inference), append(ren, t.Render), append(enc, t.Encode)
	}
	st.Decode, st.Preprocess, st.Inference, st.Render, st.Encode, st.Analyze = pct(dec), pct(pre), pct(inf), pct(ren), pct(enc), pct(all)
	return st, nil
}

// handler builds a real handler over a fresh bbolt store.
func (b *bench) handler(ctx context.Context, name string) (*bot.Handler, func() error, error) {
	st, err := store.Open(ctx, filepath.Join(b.dir, name), store.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	loc, err := locales.Load()
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("locales: %w", err), st.Close())
	}
	h, err := bot.NewHandler(bot.Config{Workers: b.cfg.workers, Burst: 1 << 30}, slog.New(slog.DiscardHandler), st, b.model, loc, nil)
	if err != nil {
		return nil, nil, errors.Join(err, st.Close())
	}
	return h, st.Close, nil
}

// sink collects the kinds of replies.
type sink struct {
	mu    sync.Mutex
	kinds map[bot.ReplyKind]int
}

func (s *sink) Send(_ context.Context, r bot.Reply) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kinds == nil {
		s.kinds = map[bot.ReplyKind]int{}
	}
	s.kinds[r.Kind]++
	return nil
}

// timed notes when the first reply of a message is handed to the channel.
type timed struct {
	bot.Responder
	at time.Time
}

func (t *timed) Send(ctx context.Context, r bot.Reply) error {
	if t.at.IsZero() {
		t.at = time.Now()
	}
	return t.Responder.Send(ctx, r)
}

// send hands one photo to the handler: the time until its reply went out and until Handle
// returned.
func (b *bench) send(ctx context.Context, h *bot.Handler, chat string, data []byte, out bot.Responder) (reply, handled time.Duration, err error) {
	m := bot.Message{ID: "b" + strconv.FormatInt(b.seq.Add(1), 10), Sender: bot.Sender{ID: "u-" + chat},
		Chat:  bot.ChatRef{Platform: bot.WebChat, ID: chat, Kind: bot.Private},
		Photo: &bot.Photo{Fetch: func(context.Context) ([]byte, error) { return data, nil }}}
	t := &timed{Responder: out}
	start := time.Now()
	err = h.Handle(ctx, m, t)
	handled = time.Since(start)
	reply = handled
	if !t.at.IsZero() {
		reply = t.at.Sub(start)
	}
	return reply, handled, err
}

// handlerLatency: a new photo each time (same pixels, new bytes, so a cache miss that is
// decoded and analysed), then one photo again and again (hash and cache hit).
func (b *bench) handlerLatency(ctx context.Context, h *bot.Handler, name string, data []byte) ([]benchLatency, error) {
	out := &sink{}
	var fresh, freshDone, cached, cachedDone []time.Duration
	for i := range b.cfg.rounds + 1 {
		d, done, err := b.send(ctx, h, "latency", withJPEGComment(data, int(b.seq.Load())), out)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			fresh, freshDone = append(fresh, d), append(freshDone, done)
		}
	}
	for i := range b.cfg.rounds + 1 {
		d, done, err := b.send(ctx, h, "latency", data, out)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			cached, cachedDone = append(cached, d), append(cachedDone, done)
		}
	}
	if n := out.kinds[bot.KindError]; n > 0 {
		return nil, fmt.Errorf("%s: %d error replies", name, n)
	}
	return []benchLatency{
		{Case: name + ", new photo", N: len(fresh), percentiles: pct(fresh), Handled: pct(freshDone)},
		{Case: name + ", same photo again", N: len(cached), percentiles: pct(cached), Handled: pct(cachedDone)},
	}, nil
}

// throughput sends distinct photos from several chats at once.
func (b *bench) throughput(ctx context.Context, photo []byte) (benchThroughput, error) {
	h, closeHandler, err := b.handler(ctx, "throughput.db")
	if err != nil {
		return benchThroughput{}, err
	}
	chats := max(8, 2*b.cfg.workers)
	// Each photo is made as it is sent, as if it had just arrived: holding all of them (100 MB for
	// 200) would be the bench's memory, not the bot's.
	next := make(chan int, b.cfg.photos)
	for i := range b.cfg.photos {
		next <- 1_000_000 + i
	}
	close(next)
	runtime.GC()
	resetPeakRSS()
	stopSampling := sampleRSS()
	out := &sink{}
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for c := range chats {
		wg.Go(func() {
			for n := range next {
				if _, _, err := b.send(ctx, h, fmt.Sprintf("chat-%d", c), withJPEGComment(photo, n), out); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	peak := stopSampling()
	tp := benchThroughput{Workers: b.cfg.workers, Chats: chats, Photos: b.cfg.photos, Seconds: elapsed.Seconds(),
		PhotosPerSec: float64(b.cfg.photos) / elapsed.Seconds(), PeakRSSMB: peakRSSMB(),
		PeakAnonMB: peak.anon, PeakFileMB: peak.file, PeakGoHeapMB: peak.heap}
	if err, ok := failed.Load().(error); ok {
		return tp, errors.Join(err, closeHandler())
	}
	if n := out.kinds[bot.KindError]; n > 0 {
		return tp, errors.Join(fmt.Errorf("throughput: %d error replies", n), closeHandler())
	}
	return tp, closeHandler()
}

// hostileRun sends bench.hostile 39.9-megapixel PNGs (a few hundred kilobytes each) at once,
// while a goroutine asks /healthz of an HTTP server in this process every 50 ms.
func (b *bench) hostileRun(ctx context.Context) (*benchHostile, error) {
	h, closeHandler, err := b.handler(ctx, "hostile.db")
	if err != nil {
		return nil, err
	}
	const side = 6316
	pngs := make([][]byte, b.cfg.hostile)
	for i := range pngs {
		pngs[i] = synthpng.Huge(side, side, fmt.Sprintf("cropshield-bench-%d", i))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(err, closeHandler())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()

	rep := &benchHostile{Photos: len(pngs), Megapixels: side * side / 1e6, FileBytes: len(pngs[0])}
	runtime.GC()
	resetPeakRSS()
	stop := make(chan struct{})
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		client := &http.Client{Timeout: 5 * time.Second}
		url := "http://" + ln.Addr().String() + "/healthz"
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			resp, err := client.Get(url)
			rep.HealthzChecks++
			if err != nil {
				rep.HealthzFailed++
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				rep.HealthzFailed++
			}
			rep.HealthzMaxMS = max(rep.HealthzMaxMS, float64(time.Since(start).Microseconds())/1000)
		}
	}()
	out := &sink{}
	var wg sync.WaitGroup
	errs := make(chan error, len(pngs))
	start := time.Now()
	for i, p := range pngs {
		wg.Go(func() {
			if _, _, err := b.send(ctx, h, fmt.Sprintf("hostile-%d", i), p, out); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	close(stop)
	<-probed
	rep.PeakRSSMB = peakRSSMB()
	rep.Replies = out.kinds
	close(errs)
	for err := range errs {
		return rep, errors.Join(err, closeHandler())
	}
	return rep, closeHandler()
}

// pct returns the 50th and 99th percentiles (nearest rank) in milliseconds.
func pct(ds []time.Duration) percentiles {
	if len(ds) == 0 {
		return percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return float64(s[min(max(i, 0), len(s)-1)].Microseconds()) / 1000
	}
	return percentiles{P50: at(0.50), P99: at(0.99)}
}

func (r *benchReport) print(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "machine: %s, %d cores, %s, ONNX Runtime %s (%s), model %s, JPEG %s, memory limit %s, decode budget %s\n\n",
		m.CPU, m.Cores, m.Go, m.OnnxRuntime, m.Provider, m.Model, m.JPEG, m.MemoryLimit, m.DecodeBudget)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ms p50 / p99\tdecode\tpreprocess\tinference\trender\tencode\tAnalyze\t")
	f := func(p percentiles) string { return fmt.Sprintf("%.1f / %.1f", p.P50, p.P99) }
	for _, s := range r.Stages {
		fmt.Fprintf(tw, "%s (%d KB)\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Photo, s.Bytes>>10, f(s.Decode), f(s.Preprocess), f(s.Inference), f(s.Render), f(s.Encode), f(s.Analyze))
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "whole handler, ms p50 / p99\treply sent\tturn finished\t\t\t\t\t")
	for _, l := range r.Handler {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t\t\n", l.Case, f(l.percentiles), f(l.Handled))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t := r.Throughput
	fmt.Fprintf(w, "\nthroughput: %d distinct 1280x960 photos from %d chats, %d workers: %.1f photos/s, peak RSS %.0f MB (at the largest sample: anonymous %.0f MB, of it Go heap %.0f MB; file-mapped %.0f MB)\n",
		t.Photos, t.Chats, t.Workers, t.PhotosPerSec, t.PeakRSSMB, t.PeakAnonMB, t.PeakGoHeapMB, t.PeakFileMB)
	if hs := r.Hostile; hs != nil {
		kinds := make([]string, 0, len(hs.Replies))
		for k, n := range hs.Replies {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		slices.Sort(kinds)
		fmt.Fprintf(w, "hostile: %d PNGs of %.1f MP (%d KB each) at once: %.1f s, peak RSS %.0f MB, replies: %s; /healthz %d checks, %d failed, slowest %.1f ms\n",
			hs.Photos, hs.Megapixels, hs.FileBytes>>10, hs.Seconds, hs.PeakRSSMB, strings.Join(kinds, ", "), hs.HealthzChecks, hs.HealthzFailed, hs.HealthzMaxMS)
	}
	return nil
}

// phoneLeaf draws a phone-like photo: a textured leaf with lesions on a cluttered, sensor-noisy
// background, so that its JPEG is as large as a camera's.
func phoneLeaf(w, h, seed int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	s := uint32(seed*2654435761 + 1)
	cx, cy := 0.5+0.05*math.Sin(float64(seed)), 0.5
	var wg sync.WaitGroup
	bands := runtime.GOMAXPROCS(0)
	for band := range bands {
		seedBand := s + uint32(band)*7919
		wg.Go(func() {
			rnd := seedBand
			for y := band * h / bands; y < (band+1)*h/bands; y++ {
				for x := range w {
					rnd = rnd*1664525 + 1013904223
					n := float64(int(rnd>>27)) - 16 // sensor noise, ±16
					fx, fy := float64(x)/float64(w), float64(y)/float64(h)
					r := 150 + 50*math.Sin(fx*17+fy*5) + n
					g := 140 + 40*math.Cos(fy*13) + n
					bl := 110 + 30*math.Sin(fx*7) + n
					if dx, dy := (fx-cx)/0.38, (fy-cy)/0.28; dx*dx+dy*dy < 1 {
						vein := math.Abs(math.Sin((fx-cx)*60 + (fy-cy)*20))
						r, g, bl = 45+n, 120+50*vein+n, 40+n
						if math.Sin(fx*90)*math.Cos(fy*70) > 0.85 { // lesions
							r, g, bl = 120+n, 80+n, 35+n
						}
					}
					img.SetRGBA(x, y, color.RGBA{clampByte(r), clampByte(g), clampByte(bl), 255})
				}
			}
		})
	}
	wg.Wait()
	return img
}

func clampByte(v float64) uint8 { return uint8(min(max(v, 0), 255)) }

// phonePhoto encodes phoneLeaf as a JPEG of a camera's quality, or as PNG.
func phonePhoto(w, h, seed int, asPNG bool) ([]byte, error) {
	var buf bytes.Buffer
	img := phoneLeaf(w, h, seed)
	var err error
	if asPNG {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92})
	}
	if err != nil {
		return nil, fmt.Errorf("generate photo: %w", err)
	}
	return buf.Bytes(), nil
}

// withJPEGComment inserts a comment segment after SOI: the same pixels, new bytes and hash.
func withJPEGComment(jpg []byte, n int) []byte {
	c := fmt.Sprintf("cropshield-bench-%010d", n)
	out := make([]byte, 0, len(jpg)+len(c)+4)
	out = append(out, jpg[:2]...)
	out = append(out, 0xFF, 0xFE, 0, byte(len(c)+2))
	out = append(out, c...)
	return append(out, jpg[2:]...)
}

// cpuModel is the processor's name from /proc/cpuinfo ("" where there is none).
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

type rssSample struct{ anon, file, heap float64 }

// sampleRSS reads RssAnon and RssFile (/proc/self/status) and the Go heap's spans in use every
// 20 ms until the returned function is called, which returns the sample with the largest RSS.
func sampleRSS() (stop func() rssSample) {
	done := make(chan struct{})
	result := make(chan rssSample, 1)
	go func() {
		var peak rssSample
		heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if s, ok := readRSS(); ok && s.anon+s.file > peak.anon+peak.file {
				metrics.Read(heap)
				s.heap = float64(heap[0].Value.Uint64()+heap[1].Value.Uint64()) / (1 << 20)
				peak = s
			}
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() rssSample {
		close(done)
		return <-result
	}
}

// readRSS is RssAnon and RssFile from /proc/self/status in megabytes.
func readRSS() (rssSample, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return rssSample{}, false
	}
	var s rssSample
	for line := range strings.Lines(string(data)) {
		for _, f := range []struct {
			key string
			dst *float64
		}{{"RssAnon:", &s.anon}, {"RssFile:", &s.file}} {
			if v, ok := strings.CutPrefix(line, f.key); ok {
				kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				if err != nil {
					return rssSample{}, false
				}
				*f.dst = kb / 1024
			}
		}
	}
	return s, true
}

// resetPeakRSS restarts the kernel's peak-RSS counter (VmHWM) of this process; where it cannot,
// peakRSSMB reports the peak since the start.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMB is VmHWM from /proc/self/status in megabytes (0 where there is none).
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
