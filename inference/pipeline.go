package inference

import (
	"context"
	"fmt"
	"image"
	"math"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/cropshield/cropshield/inference/imagecodec"
)

// DefaultDecodeBudget is Options.DecodeBudget's default: the bytes of decoded pixels that the
// photos being analysed may hold at once. A 12-megapixel JPEG needs about 9 MB of it (decoded at
// 1/4 scale, plus the overlay), so the budget binds only for photos that cannot be decoded at
// reduced size (an interlaced PNG, a large WebP), which then take their turn.
const DefaultDecodeBudget = 96 << 20

// maxPooledBuffer: larger buffers (from the rare photos decoded whole) go back to the garbage
// collector instead of a pool.
const maxPooledBuffer = 32 << 20

// pipeline is what analyses share besides the session: the budget of decoded pixels in flight
// and the buffers reused across photos.
type pipeline struct {
	codec  imagecodec.Codec
	budget budget
	size   int64
	pixels bytePool // decoded photos, overlay bases and overlays
	floats sync.Pool
}

func newPipeline(opts Options) *pipeline {
	codec := imagecodec.Default()
	if opts.PureGoJPEG {
		codec = imagecodec.PureGo()
	}
	return &pipeline{codec: codec, budget: semaphore.NewWeighted(opts.DecodeBudget), size: opts.DecodeBudget}
}

// budget is the decode budget: a *semaphore.Weighted (an interface so that tests can count the
// shares taken).
type budget interface {
	Acquire(ctx context.Context, n int64) error
	TryAcquire(n int64) bool
	Release(n int64)
}

// bytePool reuses byte buffers of any size: a buffer too small for a request is dropped.
type bytePool struct{ p sync.Pool }

func (bp *bytePool) get(n int) []byte {
	if v, ok := bp.p.Get().(*[]byte); ok && cap(*v) >= n {
		return (*v)[:n]
	}
	return make([]byte, n)
}

func (bp *bytePool) put(b []byte) {
	if cap(b) > 0 && cap(b) <= maxPooledBuffer {
		bp.p.Put(&b)
	}
}

func (p *pipeline) tensor(n int) []float32 {
	if v, ok := p.floats.Get().(*[]float32); ok && cap(*v) >= n {
		return (*v)[:n]
	}
	return make([]float32, n)
}

func (p *pipeline) putTensor(t []float32) { p.floats.Put(&t) }

// prepared is a photo ready for the model: its tensor and, for Analyze, the overlay's base.
type prepared struct {
	hd     header
	tensor []float32
	base   *image.NRGBA // the upright photo at the overlay's size; nil for Classify; see wait
	// baseDone is closed when base is ready and the decoded photo given back (nil: already so).
	baseDone chan struct{}
	box      CropBox   // the model's square in base's pixels
	decoded  time.Time // when decoding ended
	held     int64     // decode budget still held, given back by done
	baseErr  error     // a panic while making base, set before baseDone is closed
}

// fitSize is the size of a w x h image scaled down to at most maxSide on its longer side.
func fitSize(w, h, maxSide int) (int, int) {
	s := math.Min(1, float64(maxSide)/float64(max(w, h)))
	return max(1, int(math.Round(float64(w)*s))), max(1, int(math.Round(float64(h)*s)))
}

// overlaySize is the overlay's size for an upright w x h photo: at most maxSide on its longer
// side. Where halving the photo one to three times (what libjpeg-turbo decodes fastest, see
// imagecodec.Codec.PickScale) lands within a sixteenth below maxSide, the overlay takes that size,
// so that the decoded pixels are its base as they are: a 4000x3000 photo gets a 1000x750 overlay
// instead of 1024x768 resampled from a decode at 1/2; a 1280x960 one still gets 1024x768.
func overlaySize(w, h, maxSide int) (int, int) {
	long := max(w, h)
	for d := 2; d <= 8 && long > maxSide; d *= 2 {
		if l := (long + d - 1) / d; l <= maxSide {
			if l >= maxSide-maxSide/16 {
				return (w + d - 1) / d, (h + d - 1) / d
			}
			break
		}
	}
	return fitSize(w, h, maxSide)
}

// prepare decodes a photo at the smallest size that still covers the model's input and the
// overlay, and resamples it straight into the model's tensor and (withBase) the overlay's base.
// It waits for its share of the decode budget first. Errors about the photo are *PhotoError.
func (m *Model) prepare(ctx context.Context, data []byte, withBase bool) (*prepared, error) {
	p := m.pipe
	hd, err := inspect(data, m.opts.Limits)
	if err != nil {
		return nil, err
	}
	uw, uh := hd.upright()
	dw, dh := overlaySize(uw, uh, m.opts.OverlayMaxSide)
	// The same decoded size for Classify and Analyze, so that both give the same scores.
	need, short := max(dw, dh), m.info.ResizeShorter
	scale := p.codec.PickScale(hd.w, hd.h, need, short)
	k := imagecodec.PickFactor(hd.w, hd.h, need, short)
	decoded := hd.decodedBytes(p.codec, scale, k)
	var extra int64
	if withBase {
		extra = 2 * 4 * int64(dw) * int64(dh) // the base and the rendered overlay
	}
	// A photo larger than the whole budget takes all of it: it waits until it is alone.
	weight := min(decoded+extra, p.size)
	if err := p.budget.Acquire(ctx, weight); err != nil {
		return nil, fmt.Errorf("wait for memory to decode the photo: %w", err)
	}
	pr := &prepared{hd: hd, held: weight}
	ok := false
	defer func() {
		if !ok {
			m.done(pr)
		}
	}()

	pix := p.pixels.get(int(min(decoded, maxPooledBuffer)))
	// libjpeg-turbo left the JPEG to Go's full-size decoder: give the share back and wait for
	// one that covers that decode too (taking more while holding some could deadlock).
	makeRoom := func(full int64) error {
		p.budget.Release(pr.held)
		pr.held = 0
		w := min(decoded+full+extra, p.size)
		if err := p.budget.Acquire(ctx, w); err != nil {
			return fmt.Errorf("wait for memory to decode the photo: %w", err)
		}
		pr.held = w
		return nil
	}
	if p.codec.Name() == "go" {
		makeRoom = nil // decoded is already the Go decode's share
	}
	img, err := decodeStored(data, hd, p.codec, scale, k, pix, makeRoom)
	if err != nil {
		p.pixels.put(pix)
		return nil, err
	}
	pr.decoded = time.Now()

	src, b := sourceOf(img), img.Bounds()
	n := m.info.InputSize
	pr.tensor = p.tensor(3 * n * n)
	// The tensor through the float resampler: the model sees what it saw before (the fixed-point
	// one, within half a level, moved the shipped model's probabilities by up to 2 points).
	if box := m.info.CropBoxFor(b.Dx(), b.Dy()); box.Side >= float64(n) {
		m.info.tensorInto(pr.tensor, src, float64(b.Min.X)+box.X, float64(b.Min.Y)+box.Y, box.Side, hd.orient)
	} else { // smaller than the model's input, so small: enlarge the upright photo
		m.info.Tensor(pr.tensor[:0], uprightCopy(src, b, hd.orient))
	}
	// The overlay's base: opaque NRGBA (libjpeg-turbo's, the streamed PNG's) through the
	// fixed-point resampler, or as it is where it already has the base's size; anything else (Go's
	// YCbCr, a WebP) through the float one. A resampled base is made while the model runs (wait).
	fast, _ := img.(*image.NRGBA)
	sw, sh := dw, dh // the base's size in the stored orientation
	if hd.orient >= 5 {
		sw, sh = dh, dw
	}
	asIs := withBase && fast != nil && hd.orient <= 1 && b == image.Rect(0, 0, sw, sh)
	finish := func() {
		switch {
		case fast != nil:
			resampleFixed(fast, float64(b.Min.X), float64(b.Min.Y), float64(b.Dx()), float64(b.Dy()), sw, sh,
				intoNRGBAFixed(pr.base, hd.orient, sw, sh))
		default:
			resampleArea(src, float64(b.Min.X), float64(b.Min.Y), float64(b.Dx()), float64(b.Dy()), sw, sh,
				intoNRGBAOriented(pr.base, hd.orient, sw, sh))
		}
		m.dropDecoded(pr, fast, extra)
	}
	switch {
	case !withBase:
		m.dropDecoded(pr, fast, extra)
	case asIs:
		pr.base = fast // the decoded pixels are the base as they are
		pr.box = m.info.CropBoxFor(dw, dh)
		m.dropDecoded(pr, nil, extra)
	default:
		pr.base = &image.NRGBA{Pix: p.pixels.get(4 * dw * dh), Stride: 4 * dw, Rect: image.Rect(0, 0, dw, dh)}
		pr.box = m.info.CropBoxFor(dw, dh)
		pr.baseDone = make(chan struct{})
		go pr.makeBase(finish)
	}
	ok = true
	return pr, nil
}

// dropDecoded gives the decoded photo's buffer (fast, unless nil) back to the pool and its share
// of the budget back, keeping only the base's and the overlay's (extra).
func (m *Model) dropDecoded(pr *prepared, fast *image.NRGBA, extra int64) {
	if fast != nil {
		m.pipe.pixels.put(fast.Pix)
	}
	if keep := min(extra, pr.held); pr.held > keep {
		m.pipe.budget.Release(pr.held - keep)
		pr.held = keep
	}
}

// makeBase runs finish, which makes the overlay's base beside the model's run, and closes
// baseDone. A panic there is not the process's end: it is recovered and render reports it.
func (pr *prepared) makeBase(finish func()) {
	defer close(pr.baseDone)
	defer func() {
		if r := recover(); r != nil {
			pr.baseErr = fmt.Errorf("overlay base: panic: %v", r)
		}
	}()
	finish()
}

// wait returns when the overlay's base is ready.
func (pr *prepared) wait() {
	if pr.baseDone != nil {
		<-pr.baseDone
	}
}

// done gives back what prepare took: buffers and the rest of the budget.
func (m *Model) done(pr *prepared) {
	pr.wait()
	if pr.tensor != nil {
		m.pipe.putTensor(pr.tensor)
	}
	if pr.base != nil {
		m.pipe.pixels.put(pr.base.Pix)
	}
	if pr.held > 0 {
		m.pipe.budget.Release(pr.held)
		pr.held = 0
	}
}

// render draws the overlay of the top class over the base and encodes it as JPEG.
func (m *Model) render(pr *prepared, hm Heatmap) (encoded []byte, w, h int, rendered time.Time, err error) {
	pr.wait()
	if pr.baseErr != nil {
		return nil, 0, 0, time.Time{}, pr.baseErr
	}
	b := pr.base.Rect
	over := &image.RGBA{Pix: m.pipe.pixels.get(4 * b.Dx() * b.Dy()), Stride: 4 * b.Dx(), Rect: b}
	defer m.pipe.pixels.put(over.Pix)
	overlayInto(over, pr.base, pr.box, hm)
	rendered = time.Now()
	encoded, err = m.pipe.codec.EncodeJPEG(nil, over, m.opts.JPEGQuality)
	if err != nil {
		return nil, 0, 0, rendered, fmt.Errorf("overlay: %w", err)
	}
	return encoded, b.Dx(), b.Dy(), rendered, nil
}

// uprightCopy is the photo upright as NRGBA (for small photos only).
func uprightCopy(src rowSource, b image.Rectangle, o int) *image.NRGBA {
	w, h := b.Dx(), b.Dy()
	uw, uh := w, h
	if o >= 5 {
		uw, uh = h, w
	}
	out := image.NewNRGBA(image.Rect(0, 0, uw, uh))
	emit := intoNRGBAOriented(out, o, w, h)
	row := make([]float32, 3*w)
	for y := range h {
		src.row(b.Min.Y+y, b.Min.X, b.Max.X, row)
		emit(y, row)
	}
	return out
}
