package inference_test

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"runtime"
	"testing"

	"github.com/cropshield/cropshield/inference"
)

func TestCropBoxFor(t *testing.T) {
	for _, c := range []struct {
		w, h int
		want inference.CropBox
	}{
		{256, 256, inference.CropBox{X: 16, Y: 16, Side: 224}},
		{400, 300, inference.CropBox{X: 68.75, Y: 18.75, Side: 262.5}},
		{300, 400, inference.CropBox{X: 18.75, Y: 68.75, Side: 262.5}},
		{224, 500, inference.CropBox{X: 14, Y: 152, Side: 196}},
		{1024, 768, inference.CropBox{X: 176, Y: 48, Side: 672}},
	} {
		t.Run(fmt.Sprintf("%dx%d", c.w, c.h), func(t *testing.T) {
			if got := imagenet.CropBoxFor(c.w, c.h); got != c.want {
				t.Errorf("CropBoxFor = %+v, want %+v", got, c.want)
			}
		})
	}
}

func uniformNRGBA(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	fill(img, img.Rect, c)
	return img
}

// heatmap is a w x h map of value v everywhere except the listed cells.
func heatmap(w, h int, v float32, cells map[[2]int]float32) inference.Heatmap {
	hm := inference.Heatmap{W: w, H: h, V: make([]float32, w*h)}
	for i := range hm.V {
		hm.V[i] = v
	}
	for c, cv := range cells {
		hm.V[c[1]*w+c[0]] = cv
	}
	return hm
}

func rgbaAt(img *image.RGBA, x, y int) color.RGBA {
	return img.RGBAAt(img.Rect.Min.X+x, img.Rect.Min.Y+y)
}

func reddish(c color.RGBA) bool { return int(c.R) > int(c.B)+20 && c.R > c.G }
func bluish(c color.RGBA) bool  { return int(c.B) > int(c.R)+20 }

func TestOverlayMarksTheHotCell(t *testing.T) {
	withProcs(t, 4)
	for _, size := range []image.Point{{400, 300}, {1200, 900}} { // the larger renders in row bands
		t.Run(fmt.Sprintf("%dx%d", size.X, size.Y), func(t *testing.T) { testOverlayHotCell(t, size.X, size.Y) })
	}
}

func testOverlayHotCell(t *testing.T, w, h int) {
	gray := color.NRGBA{128, 128, 128, 255}
	base := uniformNRGBA(w, h, gray)
	box := imagenet.CropBoxFor(w, h)
	for _, c := range []struct {
		name string
		hm   inference.Heatmap
		// colour expected near each corner of the box: top-left, top-right, bottom-left, bottom-right
		want [4]string
	}{
		{"hot top-left cell", heatmap(7, 7, 0, map[[2]int]float32{{0, 0}: 1}), [4]string{"red", "blue", "blue", "blue"}},
		{"hot bottom-right cell", heatmap(7, 7, 0, map[[2]int]float32{{6, 6}: 1}), [4]string{"blue", "blue", "blue", "red"}},
		{"hot top-right cell of a 3x2 map", heatmap(3, 2, 0, map[[2]int]float32{{2, 0}: 1}), [4]string{"blue", "red", "blue", "blue"}},
		{"all cold", heatmap(7, 7, 0, nil), [4]string{"blue", "blue", "blue", "blue"}},
		{"all hot", heatmap(7, 7, 1, nil), [4]string{"red", "red", "red", "red"}},
		{"single cell", heatmap(1, 1, 1, nil), [4]string{"red", "red", "red", "red"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := inference.Overlay(base, box, c.hm)
			if out.Rect != base.Rect {
				t.Fatalf("overlay bounds %v, want the base's %v", out.Rect, base.Rect)
			}
			x0, y0 := int(box.X)+3, int(box.Y)+3
			x1, y1 := int(box.X+box.Side)-3, int(box.Y+box.Side)-3
			for i, p := range [4]image.Point{{x0, y0}, {x1, y0}, {x0, y1}, {x1, y1}} {
				got := rgbaAt(out, p.X, p.Y)
				ok := reddish(got)
				if c.want[i] == "blue" {
					ok = bluish(got)
				}
				if !ok || got.A != 255 {
					t.Errorf("box corner %v = %v, want %s and opaque", p, got, c.want[i])
				}
			}
			// Outside the box: the photo at half brightness.
			for _, p := range []image.Point{{10, h / 2}, {int(box.X) - 8, 5}, {w - 5, h / 2}, {w / 2, 5}, {w / 2, h - 4}, {w - 1, h - 1}} {
				if got, want := rgbaAt(out, p.X, p.Y), (color.RGBA{64, 64, 64, 255}); got != want {
					t.Errorf("outside the box %v = %v, want %v", p, got, want)
				}
			}
		})
	}
}

func TestOverlayDimsOnlyOutsideTheBox(t *testing.T) {
	// A base whose pixels differ everywhere, at the origin and as a sub-image of a larger photo.
	pattern := func(w, h int) *image.NRGBA {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y * 3), uint8(x + y), 255})
			}
		}
		return img
	}
	withProcs(t, 4)
	big := pattern(340, 430)
	huge := pattern(1000, 1400)
	for _, c := range []struct {
		name string
		base *image.NRGBA
	}{
		{"landscape at the origin", pattern(400, 300)},
		{"portrait sub-image", big.SubImage(image.Rect(17, 9, 317, 409)).(*image.NRGBA)},
		{"large sub-image in row bands", huge.SubImage(image.Rect(3, 50, 1000, 1400)).(*image.NRGBA)},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.base.Bounds()
			w, h := b.Dx(), b.Dy()
			box := imagenet.CropBoxFor(w, h)
			out := inference.Overlay(c.base, box, heatmap(7, 7, 0.5, nil))
			if out.Rect.Dx() != w || out.Rect.Dy() != h {
				t.Fatalf("overlay %dx%d, want %dx%d", out.Rect.Dx(), out.Rect.Dy(), w, h)
			}
			// Where a pixel's center lies relative to the box, leaving a 1 px margin undecided.
			where := func(p int, origin float64) int {
				c := float64(p) + 0.5
				switch {
				case c < origin-0.5 || c > origin+box.Side+0.5:
					return -1
				case c > origin+0.5 && c < origin+box.Side-0.5:
					return 1
				}
				return 0
			}
			var inside, outside int
			for y := range h {
				for x := range w {
					s := c.base.NRGBAAt(b.Min.X+x, b.Min.Y+y)
					got := rgbaAt(out, x, y)
					wx, wy := where(x, box.X), where(y, box.Y)
					switch {
					case wx < 0 || wy < 0:
						outside++
						want := color.RGBA{s.R / 2, s.G / 2, s.B / 2, 255}
						if got != want {
							t.Fatalf("outside pixel (%d,%d) = %v, want the base %v halved %v", x, y, got, s, want)
						}
					case wx > 0 && wy > 0:
						inside++
						// Jet(0.5) is (128, 255, 128): green rises well above the halved base.
						if int(got.G) < int(s.G)/2+50 || got.A != 255 {
							t.Fatalf("inside pixel (%d,%d) = %v from base %v: not tinted", x, y, got, s)
						}
					}
				}
			}
			if inside == 0 || outside == 0 {
				t.Fatalf("%d pixels inside, %d outside: the test checks nothing", inside, outside)
			}
		})
	}
}

func TestOverlayRenderingIsTheSameInRowBands(t *testing.T) {
	withProcs(t, 4)
	base := noise(1200, 900)
	box := imagenet.CropBoxFor(1200, 900)
	hm := heatmap(7, 7, 0.2, map[[2]int]float32{{0, 0}: 1, {3, 4}: 0.7, {6, 2}: 0.4})
	banded := inference.Overlay(base, box, hm)
	runtime.GOMAXPROCS(1)
	serial := inference.Overlay(base, box, hm)
	if !bytes.Equal(banded.Pix, serial.Pix) {
		t.Errorf("the overlay rendered on four CPUs differs from the one rendered on one")
	}
}

func TestOverlayHeatFallsOffThroughTheScale(t *testing.T) {
	base := uniformNRGBA(400, 300, color.NRGBA{128, 128, 128, 255})
	box := imagenet.CropBoxFor(400, 300)
	out := inference.Overlay(base, box, heatmap(7, 7, 0, map[[2]int]float32{{0, 0}: 1}))
	// Along the box's diagonal, away from the hot corner, the tint goes red → green → blue
	// without jumps, and never turns red again.
	dominant := func(c color.RGBA) byte {
		switch {
		case c.R > c.G && c.R > c.B:
			return 'r'
		case c.G > c.R && c.G > c.B:
			return 'g'
		case c.B > c.R && c.B > c.G:
			return 'b'
		}
		return '-'
	}
	var seq []byte
	prev := rgbaAt(out, int(box.X)+1, int(box.Y)+1)
	for i := 1; i < int(box.Side)-1; i++ {
		c := rgbaAt(out, int(box.X)+i, int(box.Y)+i)
		for _, d := range []int{int(c.R) - int(prev.R), int(c.G) - int(prev.G), int(c.B) - int(prev.B)} {
			if d < -40 || d > 40 {
				t.Fatalf("diagonal step %d jumps from %v to %v", i, prev, c)
			}
		}
		if k := dominant(c); k != '-' && (len(seq) == 0 || seq[len(seq)-1] != k) {
			seq = append(seq, k)
		}
		prev = c
	}
	if string(seq) != "rgb" {
		t.Errorf("dominant channels along the diagonal: %q, want \"rgb\"", seq)
	}
}

// TestOverlayToleratesHeatOutsideUnitRange: a model that emits NaN or Inf makes a heat-map
// outside 0..1; the overlay must still render (clamped: above 1 is hot, below 0 and NaN cold)
// rather than panic, which on a large photo happens on a worker goroutine and ends the process.
func TestOverlayToleratesHeatOutsideUnitRange(t *testing.T) {
	base := uniformNRGBA(400, 300, color.NRGBA{128, 128, 128, 255})
	box := imagenet.CropBoxFor(400, 300)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		name string
		v    float32
		want string // "red", "blue" or "" (anything opaque)
	}{
		{"1.5", 1.5, "red"},
		{"+Inf", inf, "red"},
		{"-0.5", -0.5, "blue"},
		{"-Inf", -inf, "blue"},
		{"NaN", nan, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out *image.RGBA
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("Overlay panicked on heat %v: %v", c.v, r)
					}
				}()
				out = inference.Overlay(base, box, heatmap(7, 7, c.v, nil))
			}()
			got := rgbaAt(out, base.Rect.Dx()/2, base.Rect.Dy()/2)
			switch {
			case got.A != 255:
				t.Errorf("center %v is not opaque", got)
			case c.want == "red" && !reddish(got), c.want == "blue" && !bluish(got):
				t.Errorf("center %v, want %s", got, c.want)
			}
		})
	}
}

func TestJet(t *testing.T) {
	for _, c := range []struct {
		v    float32
		name string
		ok   func(r, g, b int) bool
	}{
		{0, "blue", func(r, g, b int) bool { return b > 100 && r < 30 && g < 30 }},
		{0.25, "cyan", func(r, g, b int) bool { return g > 100 && b > 100 && r < 30 }},
		{0.5, "green", func(r, g, b int) bool { return g > 200 && g > r+100 && g > b+100 }},
		{0.75, "yellow", func(r, g, b int) bool { return r > 100 && g > 100 && b < 30 }},
		{1, "red", func(r, g, b int) bool { return r > 100 && g < 30 && b < 30 }},
	} {
		t.Run(fmt.Sprint(c.v), func(t *testing.T) {
			r, g, b := inference.Jet(c.v)
			if !c.ok(int(r), int(g), int(b)) {
				t.Errorf("Jet(%v) = (%d,%d,%d), want %s", c.v, r, g, b, c.name)
			}
		})
	}
	// No jumps: the map is continuous, so steps of 1/256 move each channel by a few levels.
	pr, pg, pb := inference.Jet(0)
	for i := 1; i <= 256; i++ {
		r, g, b := inference.Jet(float32(i) / 256)
		for _, d := range []int{int(r) - int(pr), int(g) - int(pg), int(b) - int(pb)} {
			if d < -5 || d > 5 {
				t.Fatalf("Jet jumps between %v and %v: (%d,%d,%d) → (%d,%d,%d)", float32(i-1)/256, float32(i)/256, pr, pg, pb, r, g, b)
			}
		}
		pr, pg, pb = r, g, b
	}
}

func TestEncodeJPEG(t *testing.T) {
	gradient := image.NewNRGBA(image.Rect(0, 0, 17, 9))
	for y := range 9 {
		for x := range 17 {
			gradient.SetNRGBA(x, y, color.NRGBA{uint8(8 * x), uint8(12 * y), 90, 255})
		}
	}
	grayImg := image.NewGray(image.Rect(0, 0, 33, 20))
	for i := range grayImg.Pix {
		grayImg.Pix[i] = uint8(i)
	}
	base := uniformNRGBA(400, 300, color.NRGBA{128, 128, 128, 255})
	box := imagenet.CropBoxFor(400, 300)
	over := inference.Overlay(base, box, heatmap(7, 7, 0, map[[2]int]float32{{0, 0}: 1}))
	hot := image.Pt(int(box.X)+3, int(box.Y)+3)

	for _, c := range []struct {
		name string
		img  image.Image
	}{
		{"overlay 400x300", over},
		{"odd-sized NRGBA", gradient},
		{"gray", grayImg},
		{"sub-image", over.SubImage(image.Rect(50, 20, 150, 90))},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := inference.EncodeJPEG(c.img, 80)
			if err != nil {
				t.Fatalf("EncodeJPEG: %v", err)
			}
			got, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("image/jpeg cannot decode the output: %v", err)
			}
			if gb, wb := got.Bounds(), c.img.Bounds(); gb.Dx() != wb.Dx() || gb.Dy() != wb.Dy() {
				t.Fatalf("decoded %dx%d, want %dx%d", gb.Dx(), gb.Dy(), wb.Dx(), wb.Dy())
			}
			// Close to the source on average: the right picture, not just the right size.
			var diff float64
			b := c.img.Bounds()
			for y := range b.Dy() {
				for x := range b.Dx() {
					s, d := rgbAt(c.img, x, y), rgbAt(got, x, y)
					for ch := range 3 {
						diff += math.Abs(float64(s[ch] - d[ch]))
					}
				}
			}
			if mean := diff / float64(3*b.Dx()*b.Dy()); mean > 6 {
				t.Errorf("mean absolute difference %.1f levels after encoding", mean)
			}
		})
	}

	t.Run("hot corner survives", func(t *testing.T) {
		data, err := inference.EncodeJPEG(over, 80)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if c := rgbAt(img, hot.X, hot.Y); c[0] <= c[2]+20 {
			t.Errorf("hot corner decodes to %v, want reddish", c)
		}
	})

	t.Run("quality is honoured", func(t *testing.T) {
		img := noise(64, 64)
		lo, err := inference.EncodeJPEG(img, 30)
		if err != nil {
			t.Fatal(err)
		}
		hi, err := inference.EncodeJPEG(img, 95)
		if err != nil {
			t.Fatal(err)
		}
		if len(hi) <= len(lo) {
			t.Errorf("quality 95 gave %d bytes, quality 30 %d: want more bytes at higher quality", len(hi), len(lo))
		}
	})
}
