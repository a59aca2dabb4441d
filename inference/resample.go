package inference

import (
	"image"
	"image/color"
	"math"

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
	}
	return nrgbaSource{imaging.Clone(img)}
}

type ycbcrSource struct{ im *image.YCbCr }

func (s ycbcrSource) bounds() image.Rectangle { return s.im.Rect }

func (s ycbcrSource) row(y, x0, x1 int, dst []float32) {
	for x := x0; x < x1; x++ {
		yi, ci := s.im.YOffset(x, y), s.im.COffset(x, y)
		r, g, b := color.YCbCrToRGB(s.im.Y[yi], s.im.Cb[ci], s.im.Cr[ci])
		d := dst[3*(x-x0):]
		d[0], d[1], d[2] = float32(r), float32(g), float32(b)
	}
}

// nrgbaSource assumes opaque pixels (Decode flattens transparency).
type nrgbaSource struct{ im *image.NRGBA }

func (s nrgbaSource) bounds() image.Rectangle { return s.im.Rect }

func (s nrgbaSource) row(y, x0, x1 int, dst []float32) {
	p := s.im.Pix[s.im.PixOffset(x0, y):]
	for i := range x1 - x0 {
		d, q := dst[3*i:], p[4*i:]
		d[0], d[1], d[2] = float32(q[0]), float32(q[1]), float32(q[2])
	}
}

// span is one source pixel's share of a destination pixel.
type span struct {
	src int
	w   float32
}

// areaWeights maps each of n destination pixels to the source pixels covering the interval
// [start + i*size/n, start + (i+1)*size/n), weighted by overlap (box filter, exact for integer
// factors and the identity when size == n).
func areaWeights(start, size float64, n int) ([][]span, int, int) {
	out := make([][]span, n)
	step := size / float64(n)
	lo, hi := math.MaxInt, math.MinInt
	for i := range n {
		a, b := start+float64(i)*step, start+float64(i+1)*step
		first, last := int(math.Floor(a)), int(math.Ceil(b))-1
		for k := first; k <= last; k++ {
			ov := math.Min(b, float64(k+1)) - math.Max(a, float64(k))
			if ov <= 1e-9 {
				continue
			}
			out[i] = append(out[i], span{k, float32(ov / step)})
			lo, hi = min(lo, k), max(hi, k)
		}
	}
	return out, lo, hi + 1
}

// resampleArea reduces the source rectangle (x, y, w, h in source pixels, fractional allowed) to
// dw x dh pixels by area averaging and returns interleaved RGB in 0..255. The rectangle must lie
// inside the source and be at least as large as the destination.
func resampleArea(src rowSource, x, y, w, h float64, dw, dh int) []float32 {
	cols, cx0, cx1 := areaWeights(x, w, dw)
	rows, _, _ := areaWeights(y, h, dh)
	// Which destination rows each source row feeds.
	type feed struct {
		dst int
		w   float32
	}
	feeds := map[int][]feed{}
	for i, r := range rows {
		for _, s := range r {
			feeds[s.src] = append(feeds[s.src], feed{i, s.w})
		}
	}
	out := make([]float32, dw*dh*3)
	line := make([]float32, (cx1-cx0)*3)
	hrow := make([]float32, dw*3)
	y0, y1 := int(math.Floor(y)), int(math.Ceil(y+h))
	for sy := y0; sy < y1; sy++ {
		fs := feeds[sy]
		if len(fs) == 0 {
			continue
		}
		src.row(sy, cx0, cx1, line)
		for j, c := range cols {
			var r, g, b float32
			for _, s := range c {
				p := line[3*(s.src-cx0):]
				r += s.w * p[0]
				g += s.w * p[1]
				b += s.w * p[2]
			}
			hrow[3*j], hrow[3*j+1], hrow[3*j+2] = r, g, b
		}
		for _, f := range fs {
			o := out[3*dw*f.dst:]
			for k, v := range hrow {
				o[k] += f.w * v
			}
		}
	}
	return out
}

// toNRGBA packs interleaved RGB floats into an opaque NRGBA image.
func toNRGBA(rgb []float32, w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		p := img.Pix[4*i:]
		p[0], p[1], p[2], p[3] = clamp8(rgb[3*i]), clamp8(rgb[3*i+1]), clamp8(rgb[3*i+2]), 255
	}
	return img
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
	src := sourceOf(img)
	return toNRGBA(resampleArea(src, float64(b.Min.X), float64(b.Min.Y), float64(w), float64(h), dw, dh), dw, dh)
}
