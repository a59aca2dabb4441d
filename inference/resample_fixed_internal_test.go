package inference

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// photoNRGBA is an opaque photo-like image at origin (x0, y0): smooth gradients, a sharp edge and
// noise, so that a wrong tap, offset or orientation shows.
func photoNRGBA(x0, y0, w, h int, seed uint64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(x0, y0, x0+w, y0+h))
	rnd := rand.New(rand.NewPCG(seed, 1))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			r, g, b := 200*fx, 180*fy, 100+80*math.Sin(fx*20)
			if x > w/3 && x < w/2 {
				r, g, b = 20, 230, 40
			}
			n := float64(rnd.IntN(31) - 15)
			p := img.Pix[y*img.Stride+4*x:]
			p[0], p[1], p[2], p[3] = clampF(r+n), clampF(g+n), clampF(b+n), 255
		}
	}
	return img
}

func clampF(v float64) uint8 { return uint8(min(max(v, 0), 255)) }

// TestFixedMatchesFloatResampler: the fixed-point resampler gives the float one's overlay base
// within a level or two, for integer and fractional factors, a crop at a fractional offset,
// a source not at the origin and every EXIF orientation.
func TestFixedMatchesFloatResampler(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // row bands in parallel whatever the machine
	type tc struct {
		name       string
		w, h       int
		x0, y0     int     // the source's origin
		cx, cy, cs float64 // the rectangle, relative to the origin; cs 0: the whole source
		dw, dh     int
		o          int
		worst      float64 // the largest difference allowed; 0: 2 levels
	}
	var cases []tc
	for _, c := range []tc{
		{name: "1.25 (1280 to 1024)", w: 1280, h: 960, dw: 1024, dh: 768},
		{name: "identity", w: 300, h: 200, dw: 300, dh: 200},
		{name: "exactly 2", w: 800, h: 600, dw: 400, dh: 300},
		{name: "1.95 (2000 to 1024)", w: 2000, h: 1500, dw: 1024, dh: 768},
		{name: "not at the origin", w: 640, h: 480, x0: 7, y0: 3, dw: 500, dh: 375},
		{name: "a crop, 3 exactly", w: 1024, h: 768, cx: 176, cy: 48, cs: 672, dw: 224, dh: 224},
		{name: "a crop at a fractional offset", w: 1000, h: 750, cx: 171.875, cy: 46.875, cs: 656.25, dw: 224, dh: 224},
		{name: "a crop, 3.75", w: 1280, h: 960, cx: 220, cy: 60, cs: 840, dw: 224, dh: 224},
		// From about 30x, a weight in 1/256 is within a few percent of its share at best, so a
		// sharp edge moves by a few levels; on average the base stays within a tenth of a level.
		{name: "30 (3000x1500 to 100x50)", w: 3000, h: 1500, dw: 100, dh: 50, worst: 8},
		{name: "30 (30720x300 to 1024x10)", w: 30720, h: 300, dw: 1024, dh: 10, worst: 8},
		{name: "40 (4000x1600 to 100x40)", w: 4000, h: 1600, dw: 100, dh: 40, worst: 8},
	} {
		for _, o := range []int{1, 3, 6, 8} {
			c.o = o
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/o%d", c.name, c.o), func(t *testing.T) {
			src := photoNRGBA(c.x0, c.y0, c.w, c.h, uint64(c.w))
			x, y, w, h := float64(c.x0)+c.cx, float64(c.y0)+c.cy, c.cs, c.cs
			if c.cs == 0 {
				w, h = float64(c.w), float64(c.h)
			}
			uw, uh := c.dw, c.dh
			if c.o >= 5 {
				uw, uh = c.dh, c.dw
			}
			want, got := image.NewNRGBA(image.Rect(0, 0, uw, uh)), image.NewNRGBA(image.Rect(0, 0, uw, uh))
			resampleArea(nrgbaSource{src}, x, y, w, h, c.dw, c.dh, intoNRGBAOriented(want, c.o, c.dw, c.dh))
			resampleFixed(src, x, y, w, h, c.dw, c.dh, intoNRGBAFixed(got, c.o, c.dw, c.dh))
			var sum, worst float64
			for i := range want.Pix {
				d := math.Abs(float64(got.Pix[i]) - float64(want.Pix[i]))
				sum += d
				worst = max(worst, d)
			}
			allowed := c.worst
			if allowed == 0 {
				allowed = 2
			}
			if mean := sum / float64(len(want.Pix)); mean > 0.5 || worst > allowed {
				t.Errorf("base differs from the float resampler's by %.3f levels on average, %.0f at worst", mean, worst)
			}
		})
	}
}

// TestToFixedWeights: every destination pixel's fixed-point weights are within one unit of
// their exact share and add up to exactly 256, whatever the factor (at 30x and more, putting
// the whole rounding error on the largest tap made it negative).
func TestToFixedWeights(t *testing.T) {
	for _, tc := range []struct {
		name string
		x, w float64
		dw   int
	}{
		{"1.25", 0, 1280, 1024},
		{"3.75 at an offset", 0.375, 840, 224},
		{"30", 0, 30720, 1024},
		{"30.72", 0, 30720, 1000},
		{"40", 0, 4000, 100},
		{"300", 0.5, 30000, 100},
		{"1000", 0, 100000, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := areaTaps(tc.x, tc.w, tc.dw)
			f := toFixed(ft)
			for i := range f.first {
				ws := ft.w[ft.off[i] : ft.off[i]+ft.count[i]]
				var exact float64
				for _, w := range ws {
					exact += float64(w)
				}
				var sum int64
				for k, w := range f.w[f.off[i] : f.off[i]+f.count[i]] {
					if int64(w) < 0 || w > 256 {
						t.Fatalf("pixel %d tap %d: weight %d", i, k, int64(w))
					}
					if share := float64(ws[k]) / exact * 256; math.Abs(float64(w)-share) >= 1 {
						t.Fatalf("pixel %d tap %d: weight %d, share %.3f", i, k, w, share)
					}
					sum += int64(w)
				}
				if sum != 256 {
					t.Fatalf("pixel %d: weights add up to %d", i, sum)
				}
			}
		})
	}
}
