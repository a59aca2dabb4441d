package inference

import (
	"image"
	"image/color"
	"math"
	"runtime"
	"sync"

	"github.com/disintegration/imaging"
)

// rowSource reads one row of an image as RGB floats in 0..255.
type rowSource interface {
	bounds() image.Rectangle
	// row fills dst[3*(x-x0):] with the RGB of pixels x0..x1-1 of row y.
	row(y, x0, x1 int, dst []float32)
}

// sourceOf returns a fast row reader for the decoder's common image types and converts anything
// else to NRGBA once.
func sourceOf(img image.Image) rowSource {
	switch im := img.(type) {
	case *image.YCbCr:
		return ycbcrSource{im}
	case *image.NRGBA:
		return nrgbaSource{im}
	case *image.Gray:
		return graySource{im}
	}
	// imaging.Clone puts the copy at (0, 0); keep the source's coordinates, which callers pass.
	n := imaging.Clone(img)
	n.Rect = img.Bounds()
	return nrgbaSource{n}
}

type ycbcrSource struct{ im *image.YCbCr }

func (s ycbcrSource) bounds() image.Rectangle { return s.im.Rect }

func (s ycbcrSource) row(y, x0, x1 int, dst []float32) {
	im := s.im
	shift := 0 // horizontal chroma subsampling: chroma column = x >> shift
	switch im.SubsampleRatio {
	case image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio422:
		shift = 1
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		shift = 2
	}
	ys := im.Y[im.YOffset(x0, y) : im.YOffset(x0, y)+x1-x0]
	c0 := im.COffset(x0, y) - x0>>shift
	dst = dst[:3*len(ys)]
	for i, yy := range ys {
		ci := c0 + (x0+i)>>shift
		r, g, b := color.YCbCrToRGB(yy, im.Cb[ci], im.Cr[ci])
		d := dst[3*i : 3*i+3 : 3*i+3]
		d[0], d[1], d[2] = float32(r), float32(g), float32(b)
	}
}

// nrgbaSource assumes opaque pixels (Decode flattens transparency).
type nrgbaSource struct{ im *image.NRGBA }

func (s nrgbaSource) bounds() image.Rectangle { return s.im.Rect }

func (s nrgbaSource) row(y, x0, x1 int, dst []float32) {
	n := x1 - x0
	p := s.im.Pix[s.im.PixOffset(x0, y):]
	p, dst = p[:4*n], dst[:3*n]
	for i := range n {
		d, q := dst[3*i:3*i+3:3*i+3], p[4*i:4*i+3:4*i+3]
		d[0], d[1], d[2] = float32(q[0]), float32(q[1]), float32(q[2])
	}
}

type graySource struct{ im *image.Gray }

func (s graySource) bounds() image.Rectangle { return s.im.Rect }

func (s graySource) row(y, x0, x1 int, dst []float32) {
	p := s.im.Pix[s.im.PixOffset(x0, y):]
	for i := range x1 - x0 {
		v := float32(p[i])
		d := dst[3*i : 3*i+3 : 3*i+3]
		d[0], d[1], d[2] = v, v, v
	}
}

// taps maps destination pixels to the source pixels they average: destination i reads
// count[i] source pixels from first[i] on, with weights w[off[i]:off[i]+count[i]]: float, or
// fixed point (resampleFixed).
type taps[W float32 | uint64] struct {
	first, count, off []int32
	w                 []W
}

// sumRows makes destination rows lo..hi of a separable resample: each is the weighted sum of the
// source rows its taps cover, as reduce gives them (already resampled across), put in acc and
// handed to emit.
func sumRows[W float32 | uint64](rows taps[W], lo, hi int, acc []W, reduce func(sy int) []W, emit func(row int, acc []W)) {
	for i := lo; i < hi; i++ {
		ws := rows.w[rows.off[i] : rows.off[i]+rows.count[i]]
		for k, wt := range ws {
			hr := reduce(int(rows.first[i]) + k)
			if k == 0 {
				for j, v := range hr {
					acc[j] = wt * v
				}
				continue
			}
			for j, v := range hr {
				acc[j] += wt * v
			}
		}
		emit(i, acc)
	}
}

// areaTaps covers the source interval [start, start+size) with n destination pixels of size/n
// source pixels each, weighted by overlap (a box filter: exact for integer factors, the identity
// when size == n).
func areaTaps(start, size float64, n int) taps[float32] {
	t := taps[float32]{first: make([]int32, n), count: make([]int32, n), off: make([]int32, n)}
	step := size / float64(n)
	for i := range n {
		a, b := start+float64(i)*step, start+float64(i+1)*step
		t.off[i] = int32(len(t.w))
		t.first[i] = -1
		for k := int(math.Floor(a)); k < int(math.Ceil(b)); k++ {
			ov := math.Min(b, float64(k+1)) - math.Max(a, float64(k))
			if ov <= 1e-9 {
				continue
			}
			if t.first[i] < 0 {
				t.first[i] = int32(k)
			}
			t.w = append(t.w, float32(ov/step))
			t.count[i]++
		}
	}
	return t
}

// resampleArea reduces the source rectangle (x, y, w, h in source pixels, fractional allowed) to
// dw x dh pixels by area averaging. It calls emit once per destination row with that row's
// interleaved RGB in 0..255 (the slice is reused afterwards). The rectangle must lie inside the
// source and be at least as large as the destination. Bands of rows run in parallel, so emit is
// called concurrently for different rows.
func resampleArea(src rowSource, x, y, w, h float64, dw, dh int, emit func(row int, rgb []float32)) {
	cols, rows := areaTaps(x, w, dw), areaTaps(y, h, dh)
	cx0 := int(cols.first[0])
	cx1 := int(cols.first[dw-1] + cols.count[dw-1])
	parallel(dh, int(w*h)/(1<<16), func(lo, hi int) {
		line := make([]float32, (cx1-cx0)*3)
		acc := make([]float32, dw*3)
		// The horizontally reduced source row last computed: consecutive destination rows share
		// at most their boundary source row.
		last, spare := make([]float32, dw*3), make([]float32, dw*3)
		lastY := -1
		reduce := func(sy int) []float32 {
			if sy == lastY {
				return last
			}
			src.row(sy, cx0, cx1, line)
			for j := range dw {
				var r, g, b float32
				ws := cols.w[cols.off[j] : cols.off[j]+cols.count[j]]
				p := line[3*(int(cols.first[j])-cx0):]
				p = p[:3*len(ws)]
				for k, wt := range ws {
					q := p[3*k : 3*k+3 : 3*k+3]
					r += wt * q[0]
					g += wt * q[1]
					b += wt * q[2]
				}
				d := spare[3*j : 3*j+3 : 3*j+3]
				d[0], d[1], d[2] = r, g, b
			}
			last, spare, lastY = spare, last, sy
			return last
		}
		sumRows(rows, lo, hi, acc, reduce, emit)
	})
}

// parallel splits n rows into one band per CPU when the work (in units of 64 Ki source pixels)
// is worth a goroutine, and runs fn on each band.
func parallel(n, work int, fn func(lo, hi int)) {
	bands := min(runtime.GOMAXPROCS(0), n, max(1, work))
	if bands <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for b := range bands {
		lo, hi := b*n/bands, (b+1)*n/bands
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// intoNRGBA returns an emit function for resampleArea that writes rows into img.
func intoNRGBA(img *image.NRGBA) func(int, []float32) {
	return func(y int, rgb []float32) {
		p := img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y):]
		for i := range len(rgb) / 3 {
			q := p[4*i : 4*i+4 : 4*i+4]
			q[0], q[1], q[2], q[3] = clamp8(rgb[3*i]), clamp8(rgb[3*i+1]), clamp8(rgb[3*i+2]), 255
		}
	}
}

func clamp8(v float32) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// FitForOverlay returns the image scaled down by area averaging so that its longest side is at most
// maxSide, as NRGBA; smaller images are converted without scaling.
func FitForOverlay(img image.Image, maxSide int) *image.NRGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	scale := math.Min(1, float64(maxSide)/float64(max(w, h)))
	dw, dh := max(1, int(math.Round(float64(w)*scale))), max(1, int(math.Round(float64(h)*scale)))
	if dw == w && dh == h {
		if n, ok := img.(*image.NRGBA); ok && b.Min == (image.Point{}) {
			return n
		}
		return imaging.Clone(img)
	}
	out := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	resampleArea(sourceOf(img), float64(b.Min.X), float64(b.Min.Y), float64(w), float64(h), dw, dh, intoNRGBA(out))
	return out
}
