package inference

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/cropshield/cropshield/inference/imagecodec"
	"github.com/cropshield/cropshield/internal/synthpng"
)

// testInfo is the contract model's preprocessing.
var testInfo = Info{InputSize: 224, ResizeShorter: 256,
	Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}}

// modelless is a Model with everything but the session: enough for prepare and render.
func modelless(opts Options) *Model {
	opts = opts.withDefaults()
	return &Model{info: testInfo, opts: opts, pipe: newPipeline(opts)}
}

// scene is a smooth photo with a distinct colour in each corner, so that a wrong orientation or
// crop shows.
func scene(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			c := color.RGBA{uint8(230 * (1 - fx) * (1 - fy)), uint8(200 * fx * (1 - fy)), uint8(220 * fy), 255}
			if dx, dy := (fx-0.5)/0.3, (fy-0.5)/0.25; dx*dx+dy*dy < 1 {
				c.G = uint8(120 + 60*math.Sin(fx*25))
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// exifOrient inserts an APP1 Exif segment with orientation o after SOI.
func exifOrient(jpg []byte, o uint16) []byte {
	t := []byte("MM\x00\x2a\x00\x00\x00\x08\x00\x01")
	t = append(t, 0x01, 0x12, 0, 3, 0, 0, 0, 1)
	t = binary.BigEndian.AppendUint16(t, o)
	t = append(t, 0, 0, 0, 0, 0, 0)
	payload := append([]byte("Exif\x00\x00"), t...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xFF, 0xE1)
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(payload)))
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// planeRGB un-normalizes pixel i of a tensor to 0..255.
func planeRGB(info Info, t []float32, i int) [3]float64 {
	n := info.InputSize * info.InputSize
	var out [3]float64
	for c := range 3 {
		out[c] = (float64(t[c*n+i])*float64(info.Std[c]) + float64(info.Mean[c])) * 255
	}
	return out
}

func codecs() []imagecodec.Codec {
	out := []imagecodec.Codec{imagecodec.PureGo()}
	if c, ok := imagecodec.LibJPEGTurbo(); ok {
		out = append(out, c)
	}
	return out
}

// resizeArea area-averages img to w x h with the float resampler: the reference for the base.
func resizeArea(img image.Image, w, h int) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	resampleArea(sourceOf(img), float64(b.Min.X), float64(b.Min.Y), float64(b.Dx()), float64(b.Dy()), w, h, intoNRGBA(out))
	return out
}

// TestOverlaySize: at most 1024 px, and the photo halved one to three times where that lands
// within 64 px below 1024 (then the decoded pixels are the base as they are).
func TestOverlaySize(t *testing.T) {
	for _, tc := range []struct{ w, h, wantW, wantH int }{
		{1280, 960, 1024, 768},  // 640 would be far below: resampled
		{960, 1280, 768, 1024},  // portrait
		{4000, 3000, 1000, 750}, // a quarter
		{4032, 3024, 1008, 756}, // a quarter, rounded up as libjpeg-turbo does
		{2000, 1500, 1000, 750}, // a half
		{2049, 1537, 1024, 768}, // a half would be 1025: too large
		{1990, 1500, 995, 750},  // a half, still >= 960
		{1900, 1425, 1024, 768}, // a half would be 950: resampled
		{7680, 4320, 960, 540},  // an eighth
		{9000, 3000, 1024, 341}, // an eighth is 1125: resampled
		{1024, 768, 1024, 768},  // as it is
		{300, 200, 300, 200},    // small: as it is
	} {
		if w, h := overlaySize(tc.w, tc.h, 1024); w != tc.wantW || h != tc.wantH {
			t.Errorf("overlaySize(%d, %d) = %dx%d, want %dx%d", tc.w, tc.h, w, h, tc.wantW, tc.wantH)
		}
	}
}

// TestPrepareMatchesFullDecode: the one-pass path (decode at reduced size in the stored
// orientation, resample into the tensor and the overlay's base) gives what the full-size upright
// photo gives through Tensor and FitForOverlay, for every EXIF orientation, codec and format.
func TestPrepareMatchesFullDecode(t *testing.T) {
	type input struct {
		name string
		data []byte
	}
	var inputs []input
	for _, sz := range []struct{ w, h int }{{1280, 960}, {2000, 1500}, {300, 200}, {200, 150}} {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, scene(sz.w, sz.h), &jpeg.Options{Quality: 92}); err != nil {
			t.Fatal(err)
		}
		for o := range 9 {
			if sz.w == 2000 && o%3 != 0 { // the large one: enough orientations to cover its path
				continue
			}
			data := buf.Bytes()
			if o > 0 {
				data = exifOrient(data, uint16(o))
			}
			inputs = append(inputs, input{fmt.Sprintf("jpeg_%dx%d_o%d", sz.w, sz.h, o), data})
		}
	}
	for _, sz := range []struct{ w, h int }{{1500, 1100}, {700, 500}} {
		var buf bytes.Buffer
		if err := png.Encode(&buf, scene(sz.w, sz.h)); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, input{fmt.Sprintf("png_%dx%d", sz.w, sz.h), buf.Bytes()})
	}
	for _, c := range codecs() {
		m := modelless(Options{PureGoJPEG: c.Name() == "go"})
		for _, in := range inputs {
			t.Run(c.Name()+"/"+in.name, func(t *testing.T) {
				photo, err := Decode(in.data, Limits{})
				if err != nil {
					t.Fatal(err)
				}
				pb := photo.Image.Bounds()
				bw, bh := overlaySize(pb.Dx(), pb.Dy(), m.opts.OverlayMaxSide)
				wantBase := resizeArea(photo.Image, bw, bh)
				wantTensor, wantBox := testInfo.Tensor(nil, wantBase)
				pr, err := m.prepare(context.Background(), in.data, true)
				if err != nil {
					t.Fatal(err)
				}
				defer m.done(pr)
				pr.wait()
				if pr.base.Rect != wantBase.Rect || pr.box != wantBox {
					t.Fatalf("base %v box %+v, want %v %+v", pr.base.Rect, pr.box, wantBase.Rect, wantBox)
				}
				if w, h := pr.hd.upright(); w != photo.Image.Bounds().Dx() || h != photo.Image.Bounds().Dy() {
					t.Errorf("upright size %dx%d, want %v", w, h, photo.Image.Bounds().Size())
				}
				var sum, worst float64
				n := testInfo.InputSize * testInfo.InputSize
				for i := range n {
					g, w := planeRGB(testInfo, pr.tensor, i), planeRGB(testInfo, wantTensor, i)
					for ch := range 3 {
						d := math.Abs(g[ch] - w[ch])
						sum += d
						worst = max(worst, d)
					}
				}
				if mean := sum / float64(3*n); mean > 2 || worst > 40 {
					t.Errorf("tensor differs from the full-size path by %.2f levels on average, %.0f at worst", mean, worst)
				}
				sum = 0
				for i := range pr.base.Pix {
					if i%4 != 3 {
						sum += math.Abs(float64(pr.base.Pix[i]) - float64(wantBase.Pix[i]))
					}
				}
				if mean := sum / float64(3*len(pr.base.Pix)/4); mean > 2 {
					t.Errorf("overlay base differs from the full-size path by %.2f levels on average", mean)
				}
			})
		}
	}
}

// TestHostilePNGStaysSmall: a 39.9-megapixel PNG is averaged while it is inflated, so preparing
// it allocates a few megabytes, not the 40-200 MB of a full decode. Not parallel: it reads the
// allocation counter.
func TestHostilePNGStaysSmall(t *testing.T) {
	data := synthpng.Huge(6316, 6316, "")
	m := modelless(Options{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	pr, err := m.prepare(context.Background(), data, true)
	if err != nil {
		t.Fatal(err)
	}
	pr.wait() // the base is made beside the model's run: count its allocations too
	runtime.ReadMemStats(&after)
	m.done(pr)
	if got := after.TotalAlloc - before.TotalAlloc; got > 24<<20 {
		t.Errorf("preparing a %d-byte 39.9 MP PNG allocated %d MB, want < 24", len(data), got>>20)
	}
	if pr.base.Rect.Dx() != 1024 {
		t.Errorf("overlay base %v, want 1024 wide", pr.base.Rect)
	}
}

// TestDecodeBudget: a photo waits for its share of the budget and gives up when its context ends;
// one larger than the whole budget still runs (alone); every share is given back.
func TestDecodeBudget(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, scene(1600, 1200), &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	photo := buf.Bytes()
	const budget = 4 << 20 // less than one photo needs
	m := modelless(Options{DecodeBudget: budget})

	t.Run("waits and gives up with its context", func(t *testing.T) {
		if !m.pipe.budget.TryAcquire(1) {
			t.Fatal("budget busy")
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := m.prepare(ctx, photo, true)
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("prepare with the budget taken returned %v, want context.Canceled", err)
		}
		m.pipe.budget.Release(1)
	})
	t.Run("larger than the budget, many at once", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for range 6 {
			wg.Go(func() {
				pr, err := m.prepare(context.Background(), photo, true)
				if err == nil {
					_, _, _, _, err = m.render(pr, Heatmap{W: 2, H: 2, V: []float32{0, 1, 0.5, 0}})
					m.done(pr)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("everything given back", func(t *testing.T) {
		if !m.pipe.budget.TryAcquire(budget) {
			t.Error("budget not whole after the photos finished")
		}
	})
	t.Run("a bad photo gives its share back", func(t *testing.T) {
		m.pipe.budget.Release(budget)
		if _, err := m.prepare(context.Background(), photo[:len(photo)/2], true); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated photo: %v, want ErrCorrupt", err)
		}
		if !m.pipe.budget.TryAcquire(budget) {
			t.Error("budget not whole after a failed decode")
		}
	})
}

// TestDecodedBytesCountsPNGRows: the budget's share of a streamed PNG covers what the decoder
// allocates besides the pixels (its rows grow with the width, not with the reduced size): a
// 16-bit RGBA row is 8 bytes a pixel, twice. Not parallel: it reads the allocation counter.
func TestDecodedBytesCountsPNGRows(t *testing.T) {
	for _, tc := range []struct {
		name                string
		w, h, depth, colour int
	}{
		{"RGBA 16-bit 4000x200", 4000, 200, 16, 6},
		{"RGB 8-bit 6000x300", 6000, 300, 8, 2},
		{"grey 1-bit 5000x250", 5000, 250, 1, 0},
		{"grey+alpha 16-bit 2000x2000", 2000, 2000, 16, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			channels := map[int]int{0: 1, 2: 3, 4: 2, 6: 4}[tc.colour]
			row := make([]byte, (tc.w*channels*tc.depth+7)/8)
			data := synthpng.Write(synthpng.Header{W: tc.w, H: tc.h, Depth: tc.depth, Colour: tc.colour}, nil,
				tc.h, func(int) []byte { return row }, 9)
			hd, err := inspect(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			codec := imagecodec.Default()
			k := imagecodec.PickFactor(tc.w, tc.h, 1024, 256)
			out := 4 * int64((tc.w+k-1)/k) * int64((tc.h+k-1)/k)
			pix := make([]byte, out)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := imagecodec.DecodePNGReduced(data, tc.w, tc.h, k, pix); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			work := int64(after.TotalAlloc - before.TotalAlloc)
			if got := hd.decodedBytes(codec, imagecodec.One, k); got < out+work {
				t.Errorf("decodedBytes %d, want at least the %d pixel bytes and the decoder's %d other bytes", got, out, work)
			}
		})
	}
}

// countingBudget is a decode budget that remembers the most it had out at once.
type countingBudget struct {
	*semaphore.Weighted
	mu         sync.Mutex
	held, peak int64
}

func (b *countingBudget) add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held += n
	b.peak = max(b.peak, b.held)
}

func (b *countingBudget) Acquire(ctx context.Context, n int64) error {
	if err := b.Weighted.Acquire(ctx, n); err != nil {
		return err
	}
	b.add(n)
	return nil
}

func (b *countingBudget) TryAcquire(n int64) bool {
	ok := b.Weighted.TryAcquire(n)
	if ok {
		b.add(n)
	}
	return ok
}

func (b *countingBudget) Release(n int64) {
	b.add(-n)
	b.Weighted.Release(n)
}

// TestGoJPEGDecodeIsCharged: a JPEG that libjpeg-turbo leaves to Go's decoder (it warns about
// extraneous bytes before EOI) is decoded whole, so its share of the budget covers the whole
// YCbCr image, not the reduced decode it was first given; everything is given back.
func TestGoJPEGDecodeIsCharged(t *testing.T) {
	const w, h = 2400, 1800
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, scene(w, h), &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	extraneous := append(bytes.Clone(good[:len(good)-2]), bytes.Repeat([]byte{0x41}, 64)...)
	extraneous = append(extraneous, 0xFF, 0xD9)
	for _, tc := range []struct {
		name     string
		data     []byte
		pureGo   bool
		min, max int64 // the peak charge
	}{
		{"extraneous bytes", extraneous, false, 3 * w * h, 1 << 30},
		{"extraneous bytes, Go codec", extraneous, true, 3 * w * h, 1 << 30},
		{"clean, Go codec", good, true, 3 * w * h, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := modelless(Options{PureGoJPEG: tc.pureGo})
			b := &countingBudget{Weighted: semaphore.NewWeighted(m.pipe.size)}
			m.pipe.budget = b
			pr, err := m.prepare(context.Background(), tc.data, true)
			if err != nil {
				t.Fatal(err)
			}
			m.done(pr)
			if b.peak < tc.min || b.peak > tc.max {
				t.Errorf("peak charge %d bytes, want %d to %d", b.peak, tc.min, tc.max)
			}
			if b.held != 0 {
				t.Errorf("%d bytes still held", b.held)
			}
		})
	}
	if _, ok := imagecodec.LibJPEGTurbo(); ok {
		t.Run("clean, libjpeg-turbo", func(t *testing.T) {
			m := modelless(Options{})
			b := &countingBudget{Weighted: semaphore.NewWeighted(m.pipe.size)}
			m.pipe.budget = b
			pr, err := m.prepare(context.Background(), good, true)
			if err != nil {
				t.Fatal(err)
			}
			m.done(pr)
			if b.peak >= 3*w*h {
				t.Errorf("peak charge %d bytes for a reduced decode, want < %d", b.peak, 3*w*h)
			}
		})
	}
}

// TestGoJPEGBytes: the full-size Go decode's estimate by colour model and progressiveness.
func TestGoJPEGBytes(t *testing.T) {
	const w, h = 800, 600
	const px, blocks = w * h, (w / 8) * (h / 8)
	for _, tc := range []struct {
		name        string
		comps       int
		progressive bool
		want        int64
	}{
		{"grey", 1, false, px},
		{"YCbCr", 3, false, 3 * px},
		{"CMYK", 4, false, 8 * px},
		{"progressive YCbCr", 3, true, 3*px + 256*3*blocks},
		{"progressive CMYK", 4, true, 8*px + 256*4*blocks},
		{"unknown", 0, false, 3 * px},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hd := header{format: "jpeg", w: w, h: h, jpegComponents: tc.comps, jpegProgressive: tc.progressive}
			if got := hd.goJPEGBytes(); got != tc.want {
				t.Errorf("goJPEGBytes %d, want %d", got, tc.want)
			}
			if got := hd.decodedBytes(imagecodec.PureGo(), imagecodec.One, 1); got != tc.want {
				t.Errorf("decodedBytes with the Go codec %d, want %d", got, tc.want)
			}
		})
	}
}

// TestProgressiveJPEGCoefficientsAreCharged: libjpeg-turbo holds a progressive JPEG's whole
// coefficient image (128 bytes per 8x8 block and component) however much it scales, so the
// share of a progressive JPEG counts it; a baseline one's is the scaled pixels alone.
func TestProgressiveJPEGCoefficientsAreCharged(t *testing.T) {
	turbo, ok := imagecodec.LibJPEGTurbo()
	if !ok {
		t.Skip("built without libjpeg-turbo")
	}
	const w, h = 6320, 4000
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)), &jpeg.Options{Quality: 50}); err != nil {
		t.Fatal(err)
	}
	grey := bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, w, h)), &jpeg.Options{Quality: 50}); err != nil {
		t.Fatal(err)
	}
	colour := buf.Bytes()
	sof2 := func(data []byte) []byte { // what the marker walk sees of a progressive JPEG
		out := bytes.Clone(data)
		out[bytes.Index(out, []byte{0xFF, 0xC0})+1] = 0xC2
		return out
	}
	scale := imagecodec.Scale{Num: 1, Denom: 8}
	pixels := int64(4 * scale.Apply(w) * scale.Apply(h))
	const blocks = (w / 8) * (h / 8)
	for _, tc := range []struct {
		name string
		data []byte
		want int64
	}{
		{"baseline", colour, pixels},
		{"progressive colour", sof2(colour), pixels + 128*3*blocks},
		{"progressive grey", sof2(grey), pixels + 128*blocks},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hd, err := inspect(tc.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := hd.decodedBytes(turbo, scale, 1); got != tc.want {
				t.Errorf("decodedBytes %d, want %d", got, tc.want)
			}
		})
	}
}

// TestBasePanicIsReported: a panic while the overlay's base is made beside the model's run does
// not end the process: render returns it as an error, and done gives everything back.
func TestBasePanicIsReported(t *testing.T) {
	for _, tc := range []struct {
		name    string
		finish  func(*image.NRGBA)
		mention string // in render's error; "" for none
	}{
		{"no panic", func(b *image.NRGBA) { b.Pix[0] = 1 }, ""},
		{"a panic", func(*image.NRGBA) { panic("boom") }, "panic: boom"},
		{"an index out of range", func(b *image.NRGBA) { b.Pix[len(b.Pix)] = 1 }, "index out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := modelless(Options{})
			const share = 1000
			if !m.pipe.budget.TryAcquire(share) {
				t.Fatal("budget busy")
			}
			base := image.NewNRGBA(image.Rect(0, 0, 8, 8))
			pr := &prepared{base: base, held: share, baseDone: make(chan struct{})}
			go pr.makeBase(func() { tc.finish(base) })
			_, _, _, _, err := m.render(pr, Heatmap{W: 2, H: 2, V: []float32{0, 1, 0.5, 0}})
			switch {
			case tc.mention == "" && err != nil:
				t.Errorf("render: %v", err)
			case tc.mention != "" && (err == nil || !strings.Contains(err.Error(), tc.mention)):
				t.Errorf("render: %v, want an error mentioning %q", err, tc.mention)
			}
			m.done(pr)
			if !m.pipe.budget.TryAcquire(m.pipe.size) {
				t.Error("budget not whole after done")
			}
		})
	}
}
