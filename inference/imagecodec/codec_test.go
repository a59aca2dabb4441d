package imagecodec_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"testing"

	"github.com/cropshield/cropshield/inference/imagecodec"
	"github.com/cropshield/cropshield/internal/synthpng"
)

// photo is a smooth, leaf-like test picture with some texture.
func photo(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			c := color.RGBA{uint8(200 - 120*fx), uint8(90 + 100*fy), uint8(60 + 40*math.Sin(fx*12)), 255}
			if dx, dy := (fx-0.5)/0.4, (fy-0.5)/0.3; dx*dx+dy*dy < 1 {
				c = color.RGBA{40, uint8(110 + 60*math.Sin(fx*30+fy*20)), 35, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func encJPEG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// meanDiff is the mean absolute RGB difference of two images of the same size.
func meanDiff(t *testing.T, a, b image.Image) float64 {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes %v and %v differ", a.Bounds().Size(), b.Bounds().Size())
	}
	var sum float64
	ab, bb := a.Bounds(), b.Bounds()
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			sum += math.Abs(float64(r1>>8)-float64(r2>>8)) + math.Abs(float64(g1>>8)-float64(g2>>8)) + math.Abs(float64(b1>>8)-float64(b2>>8))
		}
	}
	return sum / float64(3*ab.Dx()*ab.Dy())
}

// boxReduce averages k x k blocks of img (edge blocks over the pixels they have), compositing
// alpha onto white: the reference for the reduced decoders.
func boxReduce(img image.Image, k int) *image.NRGBA {
	b := img.Bounds()
	dw, dh := (b.Dx()+k-1)/k, (b.Dy()+k-1)/k
	out := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for by := range dh {
		for bx := range dw {
			var s [3]float64
			n := 0
			for y := by * k; y < min((by+1)*k, b.Dy()); y++ {
				for x := bx * k; x < min((bx+1)*k, b.Dx()); x++ {
					c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
					a := float64(c.A) / 255
					s[0] += float64(c.R)*a + 255*(1-a)
					s[1] += float64(c.G)*a + 255*(1-a)
					s[2] += float64(c.B)*a + 255*(1-a)
					n++
				}
			}
			out.SetNRGBA(bx, by, color.NRGBA{uint8(s[0]/float64(n) + 0.5), uint8(s[1]/float64(n) + 0.5), uint8(s[2]/float64(n) + 0.5), 255})
		}
	}
	return out
}

func TestPickScale(t *testing.T) {
	turbo, ok := imagecodec.LibJPEGTurbo()
	if !ok {
		t.Skip("built without libjpeg-turbo (CGO_ENABLED=0 or -tags noturbojpeg)")
	}
	for _, tc := range []struct {
		w, h, long, short int
		want              imagecodec.Scale
	}{
		{4000, 3000, 1024, 256, imagecodec.Scale{Num: 1, Denom: 2}}, // 2000x1500; 3/8 is slower, 1/4 too small
		{3000, 4000, 1024, 256, imagecodec.Scale{Num: 1, Denom: 2}}, // portrait: the same
		{4000, 3000, 1000, 256, imagecodec.Scale{Num: 1, Denom: 4}}, // 1000x750 exactly
		{4032, 3024, 1008, 256, imagecodec.Scale{Num: 1, Denom: 4}}, // 1008x756
		{1280, 960, 1024, 256, imagecodec.One},                      // 7/8 (1120x840) is slower than 1/1
		{2048, 1536, 1024, 256, imagecodec.Scale{Num: 1, Denom: 2}}, // exactly 1024x768
		{2047, 1536, 1024, 256, imagecodec.Scale{Num: 1, Denom: 2}}, // 1024 px: libjpeg-turbo rounds up
		{2046, 1534, 1024, 256, imagecodec.One},                     // 1/2 would be 1023 px
		{1024, 768, 1024, 256, imagecodec.One},                      // already the overlay's size
		{800, 600, 1024, 256, imagecodec.One},                       // smaller than the overlay
		{4000, 3000, 0, 256, imagecodec.Scale{Num: 1, Denom: 8}},    // 500x375 still covers 256
		{4000, 3000, 0, 400, imagecodec.Scale{Num: 1, Denom: 4}},    // 375 rows would not cover 400
		{8000, 256, 1024, 256, imagecodec.One},                      // the short side needs all
		{8000, 600, 1024, 256, imagecodec.Scale{Num: 1, Denom: 2}},  // 300 px still cover it
		{200, 100, 1024, 256, imagecodec.One},                       // tiny
	} {
		t.Run(fmt.Sprintf("%dx%d_%d_%d", tc.w, tc.h, tc.long, tc.short), func(t *testing.T) {
			if got := turbo.PickScale(tc.w, tc.h, tc.long, tc.short); got != tc.want {
				t.Errorf("PickScale = %v, want %v", got, tc.want)
			}
		})
	}
	if got := imagecodec.PureGo().PickScale(4000, 3000, 1024, 256); got != imagecodec.One {
		t.Errorf("Go codec scale %v, want 1/1", got)
	}
}

func TestPickFactor(t *testing.T) {
	for _, tc := range []struct{ w, h, long, short, want int }{
		{6320, 6320, 1024, 256, 6}, // ceil(6320/6) = 1054 >= 1024, /7 = 903
		{4000, 3000, 1024, 256, 3}, // 1334x1000
		{1280, 960, 1024, 256, 1},
		{1000, 700, 1024, 256, 1},
		{20000, 500, 1024, 256, 1}, // the short side needs every row
		{4096, 4096, 1024, 256, 4}, // exactly 1024
		{4000, 3000, 0, 256, 11},   // 364x273
	} {
		if got := imagecodec.PickFactor(tc.w, tc.h, tc.long, tc.short); got != tc.want {
			t.Errorf("PickFactor(%d, %d, %d, %d) = %d, want %d", tc.w, tc.h, tc.long, tc.short, got, tc.want)
		}
	}
}

// exifJPEG returns jpg with an APP1 Exif segment holding the given IFD0 entries (tag, type,
// count, value) in the given byte order.
func exifJPEG(jpg []byte, big bool, entries [][4]uint32) []byte {
	var order binary.AppendByteOrder = binary.LittleEndian
	t := []byte("II")
	if big {
		order, t = binary.BigEndian, []byte("MM")
	}
	t = order.AppendUint16(t, 42)
	t = order.AppendUint32(t, 8)
	t = order.AppendUint16(t, uint16(len(entries)))
	for _, e := range entries {
		t = order.AppendUint16(t, uint16(e[0]))
		t = order.AppendUint16(t, uint16(e[1]))
		t = order.AppendUint32(t, e[2])
		t = order.AppendUint16(t, uint16(e[3]))
		t = order.AppendUint16(t, 0)
	}
	t = order.AppendUint32(t, 0)
	payload := append([]byte("Exif\x00\x00"), t...)
	// An APP0 first, so that the reader has to skip a segment.
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xFF, 0xE0, 0, 7, 'J', 'F', 'I', 'F', 0)
	out = append(out, 0xFF, 0xE1)
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(payload)))
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

func TestJPEGOrientation(t *testing.T) {
	jpg := encJPEG(t, photo(32, 16))
	orient := func(o uint32) [4]uint32 { return [4]uint32{0x0112, 3, 1, o} }
	width := [4]uint32{0x0100, 3, 1, 32}
	for _, tc := range []struct {
		name string
		data []byte
		want int
	}{
		{"no exif", jpg, 1},
		{"little-endian 6", exifJPEG(jpg, false, [][4]uint32{width, orient(6)}), 6},
		{"big-endian 8", exifJPEG(jpg, true, [][4]uint32{width, orient(8)}), 8},
		{"big-endian 3", exifJPEG(jpg, true, [][4]uint32{orient(3)}), 3},
		{"out of range 9", exifJPEG(jpg, false, [][4]uint32{orient(9)}), 1},
		{"zero", exifJPEG(jpg, false, [][4]uint32{orient(0)}), 1},
		{"wrong type LONG", exifJPEG(jpg, false, [][4]uint32{{0x0112, 4, 1, 6}}), 1},
		{"no orientation tag", exifJPEG(jpg, false, [][4]uint32{width}), 1},
		{"truncated segment", exifJPEG(jpg, false, [][4]uint32{orient(6)})[:30], 1},
		{"not a jpeg", []byte("\x89PNG\r\n\x1a\n"), 1},
		{"empty", nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := imagecodec.JPEGOrientation(tc.data); got != tc.want {
				t.Errorf("JPEGOrientation = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestTurboMatchesGo decodes the same JPEGs with both codecs: at 1/1 the pixels agree closely
// (libjpeg-turbo interpolates chroma where Go repeats it), and a scaled decode agrees with Go's
// full decode averaged over the same blocks.
func TestTurboMatchesGo(t *testing.T) {
	turbo, ok := imagecodec.LibJPEGTurbo()
	if !ok {
		t.Skip("built without libjpeg-turbo (CGO_ENABLED=0 or -tags noturbojpeg)")
	}
	gray := image.NewGray(image.Rect(0, 0, 320, 240))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i % 320 * 255 / 319)
	}
	for _, tc := range []struct {
		name string
		img  image.Image
	}{{"colour", photo(640, 480)}, {"gray", gray}} {
		data := encJPEG(t, tc.img)
		b := tc.img.Bounds()
		goImg, err := imagecodec.PureGo().DecodeJPEG(data, b.Dx(), b.Dy(), imagecodec.One, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []imagecodec.Scale{imagecodec.One, {Num: 1, Denom: 2}, {Num: 1, Denom: 4}, {Num: 1, Denom: 8}} {
			t.Run(fmt.Sprintf("%s/%d_%d", tc.name, s.Num, s.Denom), func(t *testing.T) {
				img, err := turbo.DecodeJPEG(data, b.Dx(), b.Dy(), s, make([]byte, 16))
				if err != nil {
					t.Fatal(err)
				}
				if got := img.Bounds().Size(); got != image.Pt(s.Apply(b.Dx()), s.Apply(b.Dy())) {
					t.Fatalf("size %v, want %dx%d", got, s.Apply(b.Dx()), s.Apply(b.Dy()))
				}
				want := boxReduce(goImg, s.Denom/s.Num)
				if d := meanDiff(t, img, want); d > 2.5 {
					t.Errorf("mean difference from Go's decode %.2f levels, want <= 2.5", d)
				}
			})
		}
	}
}

func TestDecodeJPEGErrors(t *testing.T) {
	data := encJPEG(t, photo(256, 192))
	codecs := []imagecodec.Codec{imagecodec.PureGo()}
	if c, ok := imagecodec.LibJPEGTurbo(); ok {
		codecs = append(codecs, c)
	}
	for _, c := range codecs {
		for _, tc := range []struct {
			name string
			data []byte
		}{
			{"truncated", data[:len(data)/2]},
			{"header only", data[:200]},
			{"garbage after SOI", append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte{7}, 500)...)},
		} {
			t.Run(c.Name()+"/"+tc.name, func(t *testing.T) {
				if _, err := c.DecodeJPEG(tc.data, 256, 192, imagecodec.One, nil); err == nil {
					t.Error("no error")
				}
			})
		}
	}
}

func TestEncodeJPEG(t *testing.T) {
	src := photo(300, 200)
	nrgba := image.NewNRGBA(src.Rect)
	draw.Draw(nrgba, nrgba.Rect, src, image.Point{}, draw.Src)
	codecs := []imagecodec.Codec{imagecodec.PureGo()}
	if c, ok := imagecodec.LibJPEGTurbo(); ok {
		codecs = append(codecs, c)
	}
	for _, c := range codecs {
		for _, in := range []image.Image{src, nrgba, src.SubImage(image.Rect(10, 10, 110, 60))} {
			t.Run(fmt.Sprintf("%s/%T%v", c.Name(), in, in.Bounds()), func(t *testing.T) {
				prefix := []byte("keep")
				out, err := c.EncodeJPEG(prefix, in, 85)
				if err != nil {
					t.Fatal(err)
				}
				if string(out[:4]) != "keep" {
					t.Fatalf("prefix lost: %q", out[:4])
				}
				back, err := jpeg.Decode(bytes.NewReader(out[4:]))
				if err != nil {
					t.Fatal(err)
				}
				if d := meanDiff(t, back, in); d > 3 {
					t.Errorf("round trip differs by %.2f levels on average", d)
				}
			})
		}
	}
}

// rawPNG writes a PNG by hand (filter 0 rows), for colour types Go's encoder never writes; extra
// holds PLTE and tRNS chunks by type.
func rawPNG(w, h, depth, colour int, interlace byte, rows [][]byte, extra map[string][]byte) []byte {
	var chunks []synthpng.Chunk
	for _, typ := range []string{"PLTE", "tRNS"} {
		if b, ok := extra[typ]; ok {
			chunks = append(chunks, synthpng.Chunk{Type: typ, Data: b})
		}
	}
	return synthpng.Write(synthpng.Header{W: w, H: h, Depth: depth, Colour: colour, Interlace: interlace}, chunks,
		len(rows), func(i int) []byte { return rows[i] }, zlib.DefaultCompression)
}

// TestDecodePNGReduced compares the streaming decoder with image/png plus a box average, for every
// colour type and depth, at 1/1 and reduced.
func TestDecodePNGReduced(t *testing.T) {
	const w, h = 61, 47 // odd sizes: partial edge blocks
	base := photo(w, h)
	var cases []struct {
		name string
		data []byte
	}
	add := func(name string, data []byte) {
		cases = append(cases, struct {
			name string
			data []byte
		}{name, data})
	}
	enc := func(img image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	nrgba, n64, rgba64, gray, gray16 := image.NewNRGBA(base.Rect), image.NewNRGBA64(base.Rect), image.NewRGBA64(base.Rect), image.NewGray(base.Rect), image.NewGray16(base.Rect)
	for y := range h {
		for x := range w {
			c := base.RGBAAt(x, y)
			a := uint8(255 * x / (w - 1))
			nrgba.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, a})
			n64.SetNRGBA64(x, y, color.NRGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, uint16(a) * 257})
			rgba64.Set(x, y, c)
			gray.Set(x, y, c)
			gray16.Set(x, y, c)
		}
	}
	add("RGB 8-bit", enc(base))
	add("RGBA 8-bit", enc(nrgba))
	add("RGBA 16-bit", enc(n64))
	add("RGB 16-bit", enc(rgba64))
	add("gray 8-bit", enc(gray))
	add("gray 16-bit", enc(gray16))
	for _, colours := range []int{2, 4, 16, 200} { // bit depths 1, 2, 4, 8
		pal := color.Palette{color.NRGBA{0, 0, 0, 0}, color.NRGBA{200, 30, 30, 128}}
		for len(pal) < colours {
			i := len(pal)
			pal = append(pal, color.NRGBA{uint8(i * 37), uint8(255 - i), uint8(i * 11), 255})
		}
		p := image.NewPaletted(base.Rect, pal)
		for y := range h {
			for x := range w {
				p.SetColorIndex(x, y, uint8((x*3+y*5)%colours))
			}
		}
		add(fmt.Sprintf("paletted %d colours", colours), enc(p))
	}
	// Gray+alpha and colour keys, written by hand.
	ga := make([][]byte, h)
	key := make([][]byte, h)
	rgbKey := make([][]byte, h)
	for y := range h {
		for x := range w {
			ga[y] = append(ga[y], uint8(x*4), uint8(y*5))
			key[y] = append(key[y], uint8((x+y)%4)*85)
			rgbKey[y] = append(rgbKey[y], uint8(x%2)*10, 20, 30)
		}
	}
	add("gray+alpha 8-bit", rawPNG(w, h, 8, 4, 0, ga, nil))
	add("gray 8-bit with key", rawPNG(w, h, 8, 0, 0, key, map[string][]byte{"tRNS": {0, 170}}))
	add("RGB 8-bit with key", rawPNG(w, h, 8, 2, 0, rgbKey, map[string][]byte{"tRNS": {0, 10, 0, 20, 0, 30}}))
	for _, tc := range cases {
		ref, err := png.Decode(bytes.NewReader(tc.data))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, k := range []int{1, 2, 5} {
			t.Run(fmt.Sprintf("%s/k=%d", tc.name, k), func(t *testing.T) {
				b := ref.Bounds()
				got, err := imagecodec.DecodePNGReduced(tc.data, b.Dx(), b.Dy(), k, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := boxReduce(ref, k)
				if got.Rect != want.Rect {
					t.Fatalf("size %v, want %v", got.Rect, want.Rect)
				}
				for i := range got.Pix {
					if d := int(got.Pix[i]) - int(want.Pix[i]); d < -2 || d > 2 {
						p := i / 4
						t.Fatalf("pixel (%d,%d) channel %d = %d, want %d", p%want.Rect.Dx(), p/want.Rect.Dx(), i%4, got.Pix[i], want.Pix[i])
					}
				}
			})
		}
	}
}

func TestDecodePNGReducedErrors(t *testing.T) {
	var good bytes.Buffer
	if err := png.Encode(&good, photo(40, 30)); err != nil {
		t.Fatal(err)
	}
	data := good.Bytes()
	flipped := bytes.Clone(data)
	flipped[len(flipped)-20] ^= 0xFF // inside IDAT: checksum mismatch
	rows := [][]byte{{1, 2, 3}}
	for _, tc := range []struct {
		name string
		data []byte
		is   error
		w, h int // the size the caller checked; 0: the first IHDR's
	}{
		{name: "second IHDR", data: twoIHDR(1, 1, 4000, 4000)},
		{name: "second IHDR of the same size", data: twoIHDR(1, 1, 1, 1)},
		{name: "other size than checked", data: rawPNG(1, 1, 8, 2, 0, rows, nil), is: imagecodec.ErrSizeMismatch, w: 2, h: 1},
		{name: "interlaced", data: rawPNG(1, 1, 8, 2, 1, rows, nil), is: imagecodec.ErrInterlaced},
		{name: "truncated", data: data[:len(data)/2], w: 40, h: 30},
		{name: "checksum", data: flipped, w: 40, h: 30},
		{name: "not png", data: []byte("GIF89a")},
		{name: "bad depth", data: rawPNG(1, 1, 3, 2, 0, rows, nil)},
		{name: "palette without PLTE", data: rawPNG(1, 1, 8, 3, 0, [][]byte{{0}}, nil)},
		{name: "too few rows", data: rawPNG(1, 3, 8, 2, 0, rows, nil), h: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, h := tc.w, tc.h
			if w == 0 {
				w = 1
			}
			if h == 0 {
				h = 1
			}
			img, err := imagecodec.DecodePNGReduced(tc.data, w, h, 2, nil)
			if err == nil {
				t.Fatalf("no error: decoded %v", img.Rect)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
		})
	}
}

// twoIHDR is an RGB PNG whose IHDR says w1 x h1, followed by a second IHDR (valid checksum) of
// w2 x h2 and image data for the second: a decoder that takes the last IHDR decodes a size the
// caller never checked.
func twoIHDR(w1, h1, w2, h2 int) []byte {
	second := binary.BigEndian.AppendUint32(nil, uint32(w2))
	second = binary.BigEndian.AppendUint32(second, uint32(h2))
	second = append(second, 8, 2, 0, 0, 0)
	row := make([]byte, 3*w2)
	return synthpng.Write(synthpng.Header{W: w1, H: h1, Depth: 8, Colour: 2}, []synthpng.Chunk{{Type: "IHDR", Data: second}},
		h2, func(int) []byte { return row }, zlib.BestCompression)
}

// FuzzDecodePNGReduced: whatever the bytes, the streaming decoder returns an error or an opaque
// image of ceil(w/k) x ceil(h/k), and never panics. `go test` runs the seeds.
func FuzzDecodePNGReduced(f *testing.F) {
	var good bytes.Buffer
	if err := png.Encode(&good, photo(23, 17)); err != nil {
		f.Fatal(err)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 9, 5), color.Palette{color.NRGBA{1, 2, 3, 0}, color.NRGBA{200, 100, 50, 255}})
	var paletted bytes.Buffer
	if err := png.Encode(&paletted, pal); err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{good.Bytes(), good.Bytes()[:60], paletted.Bytes(),
		rawPNG(3, 2, 16, 4, 0, [][]byte{make([]byte, 12), make([]byte, 12)}, nil), rawPNG(2, 2, 1, 0, 1, [][]byte{{0}, {0}}, nil),
		twoIHDR(3, 2, 5, 4)} {
		f.Add(seed, uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil || int64(cfg.Width)*int64(cfg.Height) > 1<<22 {
			return // the callers check the header and the pixel limit first
		}
		img, err := imagecodec.DecodePNGReduced(data, cfg.Width, cfg.Height, int(k%8)+1, nil)
		if err != nil {
			return
		}
		kk := int(k%8) + 1
		if want := image.Rect(0, 0, (cfg.Width+kk-1)/kk, (cfg.Height+kk-1)/kk); img.Rect != want {
			t.Fatalf("bounds %v, want %v", img.Rect, want)
		}
		if !img.Opaque() {
			t.Fatal("not opaque")
		}
	})
}

// withScans repeats a baseline JPEG's one scan (SOS and its entropy-coded data) to n scans.
func withScans(t *testing.T, data []byte, n int) []byte {
	t.Helper()
	sos := bytes.Index(data, []byte{0xFF, 0xDA})
	if sos < 0 || !bytes.HasSuffix(data, []byte{0xFF, 0xD9}) {
		t.Fatal("no SOS or no EOI at the end")
	}
	scan := data[sos : len(data)-2]
	out := bytes.Clone(data[:len(data)-2])
	for range n - 1 {
		out = append(out, scan...)
	}
	return append(out, 0xFF, 0xD9)
}

// progressive marks a baseline JPEG's frame as progressive (SOF0 to SOF2): not decodable, but
// what a marker walk sees of a progressive JPEG.
func progressive(t *testing.T, data []byte) []byte {
	t.Helper()
	out := bytes.Clone(data)
	i := bytes.Index(out, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	out[i+1] = 0xC2
	return out
}

func TestReadJPEGMarkers(t *testing.T) {
	colour := encJPEG(t, photo(64, 48))
	gray := image.NewGray(image.Rect(0, 0, 16, 16))
	grayData := encJPEG(t, gray)
	for _, tc := range []struct {
		name string
		data []byte
		want imagecodec.JPEGMarkers
		err  bool
	}{
		{name: "baseline", data: colour, want: imagecodec.JPEGMarkers{Scans: 1, Components: 3}},
		{name: "gray", data: grayData, want: imagecodec.JPEGMarkers{Scans: 1, Components: 1}},
		{name: "progressive", data: progressive(t, colour), want: imagecodec.JPEGMarkers{Scans: 1, Progressive: true, Components: 3}},
		{name: "500 scans", data: withScans(t, colour, imagecodec.MaxScans), want: imagecodec.JPEGMarkers{Scans: imagecodec.MaxScans, Components: 3}},
		{name: "501 scans", data: withScans(t, colour, imagecodec.MaxScans+1), err: true},
		{name: "20000 progressive scans", data: withScans(t, progressive(t, colour), 20000), err: true},
		{name: "truncated", data: colour[:len(colour)/2], want: imagecodec.JPEGMarkers{Scans: 1, Components: 3}},
		{name: "not a JPEG", data: []byte("GIF89a......"), err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := imagecodec.ReadJPEGMarkers(tc.data)
			if tc.err {
				if err == nil {
					t.Fatalf("no error: %+v", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestDecodeJPEGRefusesTooManyScans: image/jpeg has no scan limit (a progressive CMYK JPEG of
// 20000 scans, which libjpeg-turbo hands to it, decoded for 90 s), so every codec refuses more
// than MaxScans before decoding; MaxScans are decoded.
func TestDecodeJPEGRefusesTooManyScans(t *testing.T) {
	data := encJPEG(t, photo(64, 48))
	codecs := []imagecodec.Codec{imagecodec.PureGo(), imagecodec.Default()}
	for _, c := range codecs {
		for _, tc := range []struct {
			name  string
			scans int
			is    error
		}{
			{"500 scans", imagecodec.MaxScans, nil},
			{"501 scans", imagecodec.MaxScans + 1, imagecodec.ErrTooManyScans},
			{"5000 scans", 5000, imagecodec.ErrTooManyScans},
		} {
			t.Run(c.Name()+"/"+tc.name, func(t *testing.T) {
				_, err := c.DecodeJPEG(withScans(t, data, tc.scans), 64, 48, imagecodec.One, nil)
				switch {
				case tc.is == nil && err != nil && c.Name() == "go":
					t.Errorf("refused: %v", err)
				case tc.is != nil && err == nil:
					t.Error("decoded")
				case tc.is != nil && c.Name() == "go" && !errors.Is(err, tc.is):
					t.Errorf("error %v, want %v", err, tc.is)
				}
			})
		}
	}
}

// TestDecodeJPEGScaledNeedsGo: where a full-size Go decode would follow, DecodeJPEGScaled says so
// (ErrNeedsGo) instead of doing it, so that the caller can make room for it first.
func TestDecodeJPEGScaledNeedsGo(t *testing.T) {
	good := encJPEG(t, photo(64, 48))
	extraneous := append(bytes.Clone(good[:len(good)-2]), bytes.Repeat([]byte{0x41}, 64)...)
	extraneous = append(extraneous, 0xFF, 0xD9)
	turbo, built := imagecodec.LibJPEGTurbo()
	for _, tc := range []struct {
		name  string
		codec imagecodec.Codec
		data  []byte
		needs bool
	}{
		{"go", imagecodec.PureGo(), good, true},
		{"libjpeg-turbo, clean", turbo, good, !built},
		{"libjpeg-turbo, extraneous bytes", turbo, extraneous, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := tc.codec.DecodeJPEGScaled(tc.data, 64, 48, imagecodec.One, nil)
			if got := errors.Is(err, imagecodec.ErrNeedsGo); got != tc.needs {
				t.Fatalf("ErrNeedsGo %v (%v), want %v", got, err, tc.needs)
			}
			if !tc.needs && (err != nil || img.Rect.Dx() != 64) {
				t.Errorf("decoded %v, %v", img, err)
			}
			if full, err := tc.codec.DecodeJPEG(tc.data, 64, 48, imagecodec.One, nil); err != nil || full.Bounds().Dx() != 64 {
				t.Errorf("DecodeJPEG: %v", err)
			}
		})
	}
}

// TestTurboChecksSizes: libjpeg-turbo refuses a JPEG whose frame is not the size the caller
// checked (ErrSizeMismatch, not a decode of another size), and an image whose pixel buffer is
// shorter than its size and stride say (an error, not a read past the buffer).
func TestTurboChecksSizes(t *testing.T) {
	turbo, ok := imagecodec.LibJPEGTurbo()
	if !ok {
		t.Skip("built without libjpeg-turbo")
	}
	data := encJPEG(t, photo(64, 48))
	for _, tc := range []struct {
		name string
		w, h int
		s    imagecodec.Scale
	}{
		{"wider", 128, 48, imagecodec.One},
		{"taller at 1/2", 64, 96, imagecodec.Scale{Num: 1, Denom: 2}},
		{"smaller", 32, 24, imagecodec.One},
	} {
		t.Run("decode "+tc.name, func(t *testing.T) {
			img, err := turbo.DecodeJPEG(data, tc.w, tc.h, tc.s, nil)
			if !errors.Is(err, imagecodec.ErrSizeMismatch) {
				t.Errorf("error %v, want ErrSizeMismatch", err)
			}
			if img != nil {
				t.Errorf("decoded %v", img.Bounds())
			}
		})
	}
	full := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for _, tc := range []struct {
		name string
		img  *image.NRGBA
		ok   bool
	}{
		{"whole", full, true},
		{"last row short by one byte", &image.NRGBA{Pix: full.Pix[:len(full.Pix)-1], Stride: full.Stride, Rect: full.Rect}, false},
		{"half the rows", &image.NRGBA{Pix: full.Pix[:len(full.Pix)/2], Stride: full.Stride, Rect: full.Rect}, false},
		{"stride under the width", &image.NRGBA{Pix: full.Pix, Stride: 4*64 - 4, Rect: full.Rect}, false},
	} {
		t.Run("encode "+tc.name, func(t *testing.T) {
			_, err := turbo.EncodeJPEG(nil, tc.img, 80)
			if (err == nil) != tc.ok {
				t.Errorf("error %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
