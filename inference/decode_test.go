package inference_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/cropshield/cropshield/inference"
	"github.com/cropshield/cropshield/internal/synthpng"
)

// imagenet is the contract model's preprocessing, so that Tensor can be tested without a model.
var imagenet = inference.Info{
	InputSize: 224, ResizeShorter: 256,
	Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225},
}

// unit is a preprocessing of side n without normalization: the tensor holds RGB/255.
func unit(n, resizeShorter int) inference.Info {
	return inference.Info{InputSize: n, ResizeShorter: resizeShorter, Std: [3]float32{1, 1, 1}}
}

var (
	red   = color.NRGBA{255, 0, 0, 255}
	green = color.NRGBA{0, 160, 0, 255}
	blue  = color.NRGBA{0, 0, 255, 255}
	white = [3]int{255, 255, 255}
)

var photoErrors = []error{
	inference.ErrEmpty, inference.ErrTooLarge, inference.ErrNotImage,
	inference.ErrUnsupportedFormat, inference.ErrTooManyPixels, inference.ErrCorrupt,
}

func encodeJPEG(tb testing.TB, img image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatalf("jpeg.Encode: %v", err)
	}
	return buf.Bytes()
}

func encodePNG(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatalf("png.Encode: %v", err)
	}
	return buf.Bytes()
}

func fill(img draw.Image, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{C: c}, image.Point{}, draw.Src)
}

// noise is a deterministic busy picture, so that its JPEG has plenty of entropy-coded data.
func noise(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	s := uint32(1)
	for i := range img.Pix {
		s = s*1664525 + 1013904223
		img.Pix[i] = uint8(s >> 24)
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	return img
}

// rgbAt is the 8-bit RGB of img at (x, y) counted from its bounds' origin.
func rgbAt(img image.Image, x, y int) [3]int {
	b := img.Bounds()
	c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
	return [3]int{int(c.R), int(c.G), int(c.B)}
}

// tensorRGB undoes the normalization of pixel (x, y) of the first image in a Tensor output.
func tensorRGB(info inference.Info, t []float32, x, y int) [3]float64 {
	n := info.InputSize
	i := y*n + x
	var out [3]float64
	for c := range 3 {
		out[c] = (float64(t[c*n*n+i])*float64(info.Std[c]) + float64(info.Mean[c])) * 255
	}
	return out
}

func round3(c [3]float64) [3]int {
	return [3]int{int(math.Round(c[0])), int(math.Round(c[1])), int(math.Round(c[2]))}
}

// colourName classifies the saturated colours the tests draw, with room for JPEG's losses.
func colourName(c [3]int) string {
	const hi, lo = 140, 90
	switch {
	case c[0] >= hi && c[1] <= lo && c[2] <= lo:
		return "red"
	case c[1] >= hi && c[0] <= lo && c[2] <= lo:
		return "green"
	case c[2] >= hi && c[0] <= lo && c[1] <= lo:
		return "blue"
	}
	return fmt.Sprint(c)
}

func near(a, b [3]int, tol int) bool {
	for i := range a {
		if d := a[i] - b[i]; d < -tol || d > tol {
			return false
		}
	}
	return true
}

// withOrientation inserts, right after SOI, an APP1 Exif segment whose IFD0 holds ImageWidth and
// then Orientation = o, so that the reader has to walk the entries.
func withOrientation(jpg []byte, o uint16, bigEndian bool) []byte {
	var order binary.AppendByteOrder = binary.LittleEndian
	tiffHdr := []byte("II")
	if bigEndian {
		order, tiffHdr = binary.BigEndian, []byte("MM")
	}
	t := order.AppendUint16(tiffHdr, 42)
	t = order.AppendUint32(t, 8) // IFD0 follows the 8-byte header
	t = order.AppendUint16(t, 2) // entries
	for _, e := range [][2]uint16{{0x0100, 320}, {0x0112, o}} {
		t = order.AppendUint16(t, e[0]) // tag
		t = order.AppendUint16(t, 3)    // SHORT
		t = order.AppendUint32(t, 1)    // count
		t = order.AppendUint16(t, e[1]) // value, left-justified in the 4-byte field
		t = order.AppendUint16(t, 0)
	}
	t = order.AppendUint32(t, 0) // no IFD1
	payload := append([]byte("Exif\x00\x00"), t...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, 0xFF, 0xE1)
	out = binary.BigEndian.AppendUint16(out, uint16(2+len(payload)))
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// upright maps stored pixel (x, y) of a w x h image to where a viewer sees it under EXIF
// orientation o, from the Exif table of the sides row 0 and column 0 are shown on.
func upright(o, x, y, w, h int) (int, int) {
	switch o {
	case 2: // row 0 top, column 0 right
		return w - 1 - x, y
	case 3: // row 0 bottom, column 0 right
		return w - 1 - x, h - 1 - y
	case 4: // row 0 bottom, column 0 left
		return x, h - 1 - y
	case 5: // row 0 left, column 0 top
		return y, x
	case 6: // row 0 right, column 0 top
		return h - 1 - y, x
	case 7: // row 0 right, column 0 bottom
		return h - 1 - y, w - 1 - x
	case 8: // row 0 left, column 0 bottom
		return y, w - 1 - x
	}
	return x, y // 1 and none
}

func TestDecodeAppliesEXIFOrientation(t *testing.T) {
	// Stored 320x240: a red block in the top-left corner, a blue one in the top-right, the rest
	// green. Blocks are 96 px so that the model's 210 px center crop starts inside them.
	const w, h, s = 320, 240, 96
	stored := image.NewNRGBA(image.Rect(0, 0, w, h))
	fill(stored, stored.Rect, green)
	fill(stored, image.Rect(0, 0, s, s), red)
	fill(stored, image.Rect(w-s, 0, w, s), blue)
	plain := encodeJPEG(t, stored, 95)
	// One point near each stored corner and the colour there.
	marks := []struct {
		x, y int
		want string
	}{{s / 2, s / 2, "red"}, {w - s/2, s / 2, "blue"}, {s / 2, h - s/2, "green"}, {w - s/2, h - s/2, "green"}}

	type tc struct {
		orientation int // 0: no Exif segment
		bigEndian   bool
	}
	cases := []tc{{orientation: 0}}
	for o := 1; o <= 8; o++ {
		cases = append(cases, tc{o, false}, tc{o, true})
	}
	for _, c := range cases {
		order := "II"
		if c.bigEndian {
			order = "MM"
		}
		t.Run(fmt.Sprintf("orientation=%d/%s", c.orientation, order), func(t *testing.T) {
			data := plain
			if c.orientation > 0 {
				data = withOrientation(plain, uint16(c.orientation), c.bigEndian)
			}
			photo, err := inference.Decode(data, inference.Limits{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if photo.Format != "jpeg" || photo.MIME != "image/jpeg" {
				t.Errorf("format %q %q, want jpeg image/jpeg", photo.Format, photo.MIME)
			}
			o := max(c.orientation, 1)
			wantW, wantH := w, h
			if o >= 5 {
				wantW, wantH = h, w
			}
			if b := photo.Image.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
				t.Fatalf("upright size %dx%d, want %dx%d", b.Dx(), b.Dy(), wantW, wantH)
			}
			for _, m := range marks {
				ux, uy := upright(o, m.x, m.y, w, h)
				if got := colourName(rgbAt(photo.Image, ux, uy)); got != m.want {
					t.Errorf("stored (%d,%d) shown at (%d,%d) is %s, want %s", m.x, m.y, ux, uy, got, m.want)
				}
			}

			// The model-free preprocessing sees the upright photo: each corner of its input
			// has the colour of the upright photo's corner.
			tensor, box := imagenet.Tensor(nil, photo.Image)
			n := imagenet.InputSize
			if len(tensor) != 3*n*n {
				t.Fatalf("tensor has %d floats, want %d", len(tensor), 3*n*n)
			}
			if want := imagenet.CropBoxFor(wantW, wantH); box != want {
				t.Errorf("crop box %+v, want %+v", box, want)
			}
			for _, m := range marks {
				ux, uy := upright(o, m.x, m.y, w, h)
				tx, ty := 4, 4
				if ux > wantW/2 {
					tx = n - 5
				}
				if uy > wantH/2 {
					ty = n - 5
				}
				if got := colourName(round3(tensorRGB(imagenet, tensor, tx, ty))); got != m.want {
					t.Errorf("tensor pixel (%d,%d) is %s, want %s", tx, ty, got, m.want)
				}
			}
		})
	}
}

func TestDecodeFlattensTransparencyOntoWhite(t *testing.T) {
	// A clear background whose hidden colour is black (dropping alpha would show black), an
	// opaque green disc and two partly transparent pixels.
	const size = 64
	halfBlue := color.NRGBA{0, 0, 255, 128}
	quarterOrange := color.NRGBA{200, 100, 0, 64}
	transparent := color.NRGBA{}
	at := func(x, y int) color.NRGBA {
		switch dx, dy := x-size/2, y-size/2; {
		case x == 2 && y == 2:
			return halfBlue
		case x == size-3 && y == 2:
			return quarterOrange
		case dx*dx+dy*dy <= 16*16:
			return green
		}
		return transparent
	}
	r := image.Rect(0, 0, size, size)
	nrgba := image.NewNRGBA(r)
	n64 := image.NewNRGBA64(r)
	pal := image.NewPaletted(r, color.Palette{transparent, green, halfBlue, quarterOrange})
	for y := range size {
		for x := range size {
			nrgba.SetNRGBA(x, y, at(x, y))
			n64.Set(x, y, at(x, y))
			pal.Set(x, y, at(x, y))
		}
	}
	// Alpha blended onto white: c*a + 255*(1-a).
	onWhite := func(c color.NRGBA) [3]int {
		a := float64(c.A) / 255
		f := func(v uint8) int { return int(math.Round(float64(v)*a + 255*(1-a))) }
		return [3]int{f(c.R), f(c.G), f(c.B)}
	}
	points := []struct {
		name string
		x, y int
		want [3]int
	}{
		{"clear corner", 0, 0, white},
		{"clear far corner", size - 1, size - 1, white},
		{"clear beside the disc", 5, size / 2, white},
		{"disc center", size / 2, size / 2, [3]int{0, 160, 0}},
		{"disc edge", size/2 + 15, size / 2, [3]int{0, 160, 0}},
		{"half-transparent blue", 2, 2, onWhite(halfBlue)},
		{"quarter-opaque orange", size - 3, 2, onWhite(quarterOrange)},
	}
	for _, src := range []struct {
		name string
		img  image.Image
	}{{"RGBA 8-bit", nrgba}, {"RGBA 16-bit", n64}, {"paletted with tRNS", pal}} {
		t.Run(src.name, func(t *testing.T) {
			photo, err := inference.Decode(encodePNG(t, src.img), inference.Limits{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if photo.Format != "png" || photo.MIME != "image/png" {
				t.Errorf("format %q %q, want png image/png", photo.Format, photo.MIME)
			}
			b := photo.Image.Bounds()
			if b.Dx() != size || b.Dy() != size {
				t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), size, size)
			}
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					if _, _, _, a := photo.Image.At(x, y).RGBA(); a != 0xffff {
						t.Fatalf("pixel (%d,%d) has alpha %#x, want opaque", x, y, a)
					}
				}
			}
			for _, p := range points {
				if got := rgbAt(photo.Image, p.x, p.y); !near(got, p.want, 1) {
					t.Errorf("%s (%d,%d) = %v, want %v", p.name, p.x, p.y, got, p.want)
				}
			}
			// The model sees white, not black, around the leaf.
			tensor, _ := imagenet.Tensor(nil, photo.Image)
			if got := round3(tensorRGB(imagenet, tensor, 0, imagenet.InputSize-1)); !near(got, white, 1) {
				t.Errorf("tensor bottom-left = %v, want white", got)
			}
		})
	}
}

func TestDecodeGrayscaleJPEG(t *testing.T) {
	for _, sz := range []struct{ w, h int }{
		{256, 256}, // the center crop is exactly the model's input: compared pixel for pixel
		{600, 400}, // area downscale
		{96, 64},   // smaller than the input: enlarged
	} {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			gray := image.NewGray(image.Rect(0, 0, sz.w, sz.h))
			for y := range sz.h {
				for x := range sz.w {
					gray.Pix[y*gray.Stride+x] = uint8((x*255/(sz.w-1) + y*255/(sz.h-1)) / 2)
				}
			}
			photo, err := inference.Decode(encodeJPEG(t, gray, 90), inference.Limits{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if b := photo.Image.Bounds(); photo.Format != "jpeg" || b.Dx() != sz.w || b.Dy() != sz.h {
				t.Fatalf("got %s %dx%d, want jpeg %dx%d", photo.Format, b.Dx(), b.Dy(), sz.w, sz.h)
			}
			tensor, _ := imagenet.Tensor(nil, photo.Image)
			n := imagenet.InputSize
			var sum, sumSq [3]float64
			for y := range n {
				for x := range n {
					p := tensorRGB(imagenet, tensor, x, y)
					if math.Abs(p[0]-p[1]) > 0.01 || math.Abs(p[0]-p[2]) > 0.01 {
						t.Fatalf("tensor pixel (%d,%d) un-normalized to %.3f, want R = G = B", x, y, p)
					}
					if sz.w == 256 && sz.h == 256 {
						if want := float64(rgbAt(photo.Image, x+16, y+16)[0]); math.Abs(p[0]-want) > 0.01 {
							t.Fatalf("tensor pixel (%d,%d) = %.3f, want photo pixel (%d,%d) = %v", x, y, p[0], x+16, y+16, want)
						}
					}
					for c := range 3 {
						sum[c] += p[c]
						sumSq[c] += p[c] * p[c]
					}
				}
			}
			// Each plane, un-normalized with its own mean and std, has the same statistics.
			var mean, std [3]float64
			for c := range 3 {
				mean[c] = sum[c] / float64(n*n)
				std[c] = math.Sqrt(sumSq[c]/float64(n*n) - mean[c]*mean[c])
			}
			if math.Abs(mean[0]-mean[1]) > 0.01 || math.Abs(mean[0]-mean[2]) > 0.01 ||
				math.Abs(std[0]-std[1]) > 0.01 || math.Abs(std[0]-std[2]) > 0.01 {
				t.Errorf("plane means %.3f stds %.3f differ", mean, std)
			}
			if std[0] < 20 || mean[0] < 80 || mean[0] > 175 {
				t.Errorf("plane mean %.1f std %.1f: not the gradient's mid-gray spread", mean[0], std[0])
			}
		})
	}
}

func TestDecodeWebP(t *testing.T) {
	// testdata/pattern.webp: 16x16 lossless, quadrants red, green / blue, clear (see README.md).
	data, err := os.ReadFile(filepath.Join("testdata", "pattern.webp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 2048 {
		t.Fatalf("pattern.webp is %d bytes; test data must stay tiny", len(data))
	}
	photo, err := inference.Decode(data, inference.Limits{})
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if photo.Format != "webp" || photo.MIME != "image/webp" {
		t.Errorf("format %q %q, want webp image/webp", photo.Format, photo.MIME)
	}
	if b := photo.Image.Bounds(); b.Dx() != 16 || b.Dy() != 16 {
		t.Fatalf("size %dx%d, want 16x16", b.Dx(), b.Dy())
	}
	quadrant := [2][2][3]int{
		{{255, 0, 0}, {0, 0, 255}}, // left column: top red, bottom blue
		{{0, 255, 0}, white},       // right column: top green, bottom clear → white
	}
	for y := range 16 {
		for x := range 16 {
			if got, want := rgbAt(photo.Image, x, y), quadrant[x/8][y/8]; got != want {
				t.Errorf("pixel (%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
}

// pngChunk is one PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// pngHeaderOnly is a PNG signature, an IHDR declaring w x h 8-bit RGB and IEND: no pixel data.
func pngHeaderOnly(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // depth, colour type RGB, compression, filter, interlace
	out := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
	return append(out, pngChunk("IEND", nil)...)
}

// pngTwoIHDR is a grey PNG whose first IHDR (the one image.DecodeConfig reads) says w1 x h1 and
// whose second, with a valid checksum, says w2 x h2, with image data for the second: a decoder
// that takes the last IHDR decodes a size nobody checked against the limits.
func pngTwoIHDR(w1, h1, w2, h2 uint32) []byte {
	second := binary.BigEndian.AppendUint32(nil, w2)
	second = binary.BigEndian.AppendUint32(second, h2)
	second = append(second, 8, 0, 0, 0, 0)
	row := make([]byte, w2)
	return synthpng.Write(synthpng.Header{W: int(w1), H: int(h1), Depth: 8, Colour: 0}, []synthpng.Chunk{{Type: "IHDR", Data: second}},
		int(h2), func(int) []byte { return row }, 9)
}

// pngWithSize is a real PNG whose IHDR (CRC fixed) claims w x h: decoding it would allocate the
// claimed image before finding the data short.
func pngWithSize(tb testing.TB, w, h uint32) []byte {
	tb.Helper()
	data := encodePNG(tb, noise(16, 16))
	const ihdr = 8 + 8 // signature, then IHDR's length and type
	binary.BigEndian.PutUint32(data[ihdr:], w)
	binary.BigEndian.PutUint32(data[ihdr+4:], h)
	binary.BigEndian.PutUint32(data[ihdr+13:], crc32.ChecksumIEEE(data[ihdr-4:ihdr+13]))
	return data
}

// jpegHeaderOnly is SOI, SOF0 declaring w x h with three components, SOS and EOI: the markers of
// a baseline JPEG and no pixel data.
func jpegHeaderOnly(w, h uint16) []byte {
	out := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8}
	out = binary.BigEndian.AppendUint16(out, h)
	out = binary.BigEndian.AppendUint16(out, w)
	out = append(out, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	out = append(out, 0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0)
	return append(out, 0xFF, 0xD9)
}

// jpegWithSize is a real JPEG whose SOF0 claims w x h.
func jpegWithSize(tb testing.TB, w, h uint16) []byte {
	tb.Helper()
	data := encodeJPEG(tb, noise(16, 16), 90)
	i := bytes.Index(data, []byte{0xFF, 0xC0})
	if i < 0 {
		tb.Fatal("no SOF0 in the encoded JPEG")
	}
	binary.BigEndian.PutUint16(data[i+5:], h)
	binary.BigEndian.PutUint16(data[i+7:], w)
	return data
}

func animatedGIF(tb testing.TB) []byte {
	tb.Helper()
	pal := color.Palette{color.Black, color.White}
	f1 := image.NewPaletted(image.Rect(0, 0, 8, 8), pal)
	f2 := image.NewPaletted(image.Rect(0, 0, 8, 8), pal)
	fill(f2, f2.Rect, color.White)
	var buf bytes.Buffer
	if err := gif.EncodeAll(&buf, &gif.GIF{Image: []*image.Paletted{f1, f2}, Delay: []int{10, 10}}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// decodeNoPanic calls Decode and turns a panic into a test failure naming the input.
func decodeNoPanic(t *testing.T, data []byte, limits inference.Limits) (photo inference.Photo, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Decode panicked on %d bytes: %v", len(data), r)
		}
	}()
	return inference.Decode(data, limits)
}

// checkPhotoError asserts err is a *PhotoError of the given kind and of no other.
func checkPhotoError(t *testing.T, err error, kind error) *inference.PhotoError {
	t.Helper()
	if err == nil {
		t.Fatalf("Decode succeeded, want %v", kind)
	}
	var pe *inference.PhotoError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *PhotoError", err, err)
	}
	if pe.Kind != kind || !errors.Is(err, kind) {
		t.Errorf("error %q: kind %v, want %v", err, pe.Kind, kind)
	}
	for _, other := range photoErrors {
		if other != kind && errors.Is(err, other) {
			t.Errorf("error %q also matches %v", err, other)
		}
	}
	if !strings.HasPrefix(err.Error(), kind.Error()) {
		t.Errorf("message %q does not start with %q", err, kind)
	}
	return pe
}

func TestDecodeRejectsBadPhotos(t *testing.T) {
	small := encodeJPEG(t, noise(100, 100), 90)
	smallPNG := encodePNG(t, noise(40, 40))
	brokenPNG := bytes.Clone(smallPNG)
	brokenPNG[bytes.Index(brokenPNG, []byte("IDAT"))+20] ^= 0xFF // CRC no longer matches
	tooLarge := make([]byte, 25<<20)
	copy(tooLarge, small)
	var bmpBuf, tiffBuf bytes.Buffer
	if err := bmp.Encode(&bmpBuf, noise(8, 8)); err != nil {
		t.Fatal(err)
	}
	if err := tiff.Encode(&tiffBuf, noise(8, 8), nil); err != nil {
		t.Fatal(err)
	}
	webp, err := os.ReadFile(filepath.Join("testdata", "pattern.webp"))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		data   []byte
		limits inference.Limits
		kind   error
		format string  // PhotoError.Format
		mp     float64 // PhotoError.Megapixels
	}{
		{name: "nil", data: nil, kind: inference.ErrEmpty},
		{name: "zero bytes", data: []byte{}, kind: inference.ErrEmpty},
		{name: "text named .jpg", data: []byte("IMG_2041.jpg: my tomato leaves have brown spots, please help\n"), kind: inference.ErrNotImage},
		{name: "HTML error page", data: []byte("<!DOCTYPE html><html><body>404 Not Found</body></html>"), kind: inference.ErrNotImage},
		{name: "one byte", data: []byte{0xFF}, kind: inference.ErrNotImage},
		{name: "JPEG cut in half", data: small[:len(small)/2], kind: inference.ErrCorrupt, format: "jpeg", mp: 0.01},
		{name: "JPEG cut inside its header", data: small[:40], kind: inference.ErrCorrupt, format: "jpeg"},
		{name: "PNG cut in half", data: smallPNG[:len(smallPNG)/2], kind: inference.ErrCorrupt, format: "png", mp: 0.0016},
		{name: "PNG with a bad IDAT CRC", data: brokenPNG, kind: inference.ErrCorrupt, format: "png", mp: 0.0016},
		{name: "PNG of 100x100 with a second IHDR of 2000x2000", data: pngTwoIHDR(100, 100, 2000, 2000), kind: inference.ErrCorrupt, format: "png", mp: 0.01},
		{name: "PNG with a second IHDR of 8000x8000", data: pngTwoIHDR(100, 100, 8000, 8000), kind: inference.ErrCorrupt, format: "png", mp: 0.01},
		{name: "PNG with a second IHDR of its own size", data: pngTwoIHDR(100, 100, 100, 100), kind: inference.ErrCorrupt, format: "png", mp: 0.01},
		{name: "WebP cut short", data: webp[:24], kind: inference.ErrCorrupt, format: "webp"},
		{name: "PNG header of 8000x7500, no IDAT", data: pngHeaderOnly(8000, 7500), kind: inference.ErrTooManyPixels, format: "png", mp: 60},
		{name: "JPEG markers of 10000x10000", data: jpegHeaderOnly(10000, 10000), kind: inference.ErrTooManyPixels, format: "jpeg", mp: 100},
		{name: "JPEG claiming 10000x10000", data: jpegWithSize(t, 10000, 10000), kind: inference.ErrTooManyPixels, format: "jpeg", mp: 100},
		{name: "PNG claiming 8000x7500", data: pngWithSize(t, 8000, 7500), kind: inference.ErrTooManyPixels, format: "png", mp: 60},
		{name: "one pixel over a custom limit", data: small, limits: inference.Limits{MaxPixels: 100*100 - 1}, kind: inference.ErrTooManyPixels, format: "jpeg", mp: 0.01},
		{name: "animated GIF", data: animatedGIF(t), kind: inference.ErrUnsupportedFormat, format: "gif"},
		{name: "BMP", data: bmpBuf.Bytes(), kind: inference.ErrUnsupportedFormat, format: "bmp"},
		{name: "TIFF", data: tiffBuf.Bytes(), kind: inference.ErrUnsupportedFormat, format: "tiff"},
		{name: "HEIC", data: []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), kind: inference.ErrUnsupportedFormat, format: "heif"},
		{name: "25 MB starting like a JPEG", data: tooLarge, kind: inference.ErrTooLarge},
		{name: "one byte over a custom limit", data: small, limits: inference.Limits{MaxBytes: int64(len(small) - 1)}, kind: inference.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			photo, err := decodeNoPanic(t, c.data, c.limits)
			pe := checkPhotoError(t, err, c.kind)
			if photo.Image != nil {
				t.Errorf("Decode returned an image with its error")
			}
			if pe.Format != c.format {
				t.Errorf("Format %q, want %q", pe.Format, c.format)
			}
			if pe.Bytes != int64(len(c.data)) {
				t.Errorf("Bytes %d, want %d", pe.Bytes, len(c.data))
			}
			if math.Abs(pe.Megapixels-c.mp) > 1e-6 {
				t.Errorf("Megapixels %g, want %g", pe.Megapixels, c.mp)
			}
			wantLimit := inference.DefaultLimits
			if c.limits.MaxBytes > 0 {
				wantLimit.MaxBytes = c.limits.MaxBytes
			}
			if c.limits.MaxPixels > 0 {
				wantLimit.MaxPixels = c.limits.MaxPixels
			}
			if pe.Limit != wantLimit {
				t.Errorf("Limit %+v, want %+v", pe.Limit, wantLimit)
			}
			if c.kind == inference.ErrCorrupt && pe.Detail == nil {
				t.Errorf("a corrupt photo's error carries no decoder detail")
			}
		})
	}
}

func TestDecodeLimitsAreInclusive(t *testing.T) {
	data := encodeJPEG(t, noise(100, 100), 90)
	for _, limits := range []inference.Limits{
		{},
		{MaxPixels: 100 * 100},
		{MaxBytes: int64(len(data))},
		{MaxBytes: int64(len(data)), MaxPixels: 100 * 100},
	} {
		t.Run(fmt.Sprintf("%+v", limits), func(t *testing.T) {
			photo, err := inference.Decode(data, limits)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if b := photo.Image.Bounds(); b.Dx() != 100 || b.Dy() != 100 {
				t.Errorf("size %dx%d, want 100x100", b.Dx(), b.Dy())
			}
		})
	}
}

// TestDecodeRejectsPixelBombsBeforeDecoding checks the pixel limit holds before any decoding:
// decoding the bombs would allocate 150-240 MB. Not parallel, so that the allocation counter
// sees only this test.
func TestDecodeRejectsPixelBombsBeforeDecoding(t *testing.T) {
	const budget = 4 << 20
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"JPEG markers of 10000x10000", jpegHeaderOnly(10000, 10000)},
		{"JPEG claiming 10000x10000", jpegWithSize(t, 10000, 10000)},
		{"PNG header of 8000x7500", pngHeaderOnly(8000, 7500)},
		{"PNG claiming 8000x7500", pngWithSize(t, 8000, 7500)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := decodeNoPanic(t, c.data, inference.Limits{})
			runtime.ReadMemStats(&after)
			checkPhotoError(t, err, inference.ErrTooManyPixels)
			if n := after.TotalAlloc - before.TotalAlloc; n > budget {
				t.Errorf("Decode allocated %d bytes for a rejected header, want < %d", n, budget)
			}
		})
	}
}

func TestTensorAreaResampling(t *testing.T) {
	// gray builds a Gray image from rows of levels.
	gray := func(rows ...[]uint8) *image.Gray {
		img := image.NewGray(image.Rect(0, 0, len(rows[0]), len(rows)))
		for y, r := range rows {
			copy(img.Pix[y*img.Stride:], r)
		}
		return img
	}
	// levels expands rows of gray levels to the expected RGB of each output pixel.
	levels := func(rows ...[]float64) [][3]float64 {
		var out [][3]float64
		for _, r := range rows {
			for _, v := range r {
				out = append(out, [3]float64{v, v, v})
			}
		}
		return out
	}
	rgbBlocks := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	fill(rgbBlocks, image.Rect(0, 0, 2, 2), red)
	fill(rgbBlocks, image.Rect(2, 0, 4, 2), green)
	fill(rgbBlocks, image.Rect(0, 2, 2, 4), blue)
	fill(rgbBlocks, image.Rect(2, 2, 4, 4), color.White)
	// A 4:2:0 YCbCr image with neutral chroma, so that RGB = Y exactly.
	ycc := image.NewYCbCr(image.Rect(0, 0, 4, 4), image.YCbCrSubsampleRatio420)
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	for y := range 4 {
		for x := range 4 {
			ycc.Y[y*ycc.YStride+x] = uint8(255 * ((x + y) % 2))
		}
	}
	// An 8x8 parent whose levels say where they come from; the test crops a 4x4 window of it.
	parent := image.NewGray(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			parent.Pix[y*parent.Stride+x] = uint8(10*x + y)
		}
	}

	cases := []struct {
		name string
		img  image.Image
		info inference.Info
		want [][3]float64 // row-major output pixels, 0..255
		tol  float64
	}{
		{
			name: "2x2 blocks halve exactly",
			img:  gray([]uint8{0, 0, 255, 255}, []uint8{0, 0, 255, 255}, []uint8{255, 255, 0, 0}, []uint8{255, 255, 0, 0}),
			info: unit(2, 2),
			want: levels([]float64{0, 255}, []float64{255, 0}),
			tol:  1e-3,
		},
		{
			name: "1 px checkerboard halves to mid-gray",
			img:  gray([]uint8{0, 255, 0, 255}, []uint8{255, 0, 255, 0}, []uint8{0, 255, 0, 255}, []uint8{255, 0, 255, 0}),
			info: unit(2, 2),
			want: levels([]float64{127.5, 127.5}, []float64{127.5, 127.5}),
			tol:  0.5,
		},
		{
			name: "YCbCr checkerboard halves to mid-gray",
			img:  ycc,
			info: unit(2, 2),
			want: levels([]float64{127.5, 127.5}, []float64{127.5, 127.5}),
			tol:  0.5,
		},
		{
			name: "colour blocks keep their channels",
			img:  rgbBlocks,
			info: unit(2, 2),
			want: [][3]float64{{255, 0, 0}, {0, 160, 0}, {0, 0, 255}, {255, 255, 255}},
			tol:  1e-3,
		},
		{
			name: "identity when the size is unchanged",
			img:  gray([]uint8{10, 200, 30}, []uint8{40, 50, 250}, []uint8{0, 128, 255}),
			info: unit(3, 3),
			want: levels([]float64{10, 200, 30}, []float64{40, 50, 250}, []float64{0, 128, 255}),
			tol:  1e-3,
		},
		{
			name: "3 to 2 columns weighs by overlap",
			img:  gray([]uint8{0, 90, 180}, []uint8{0, 90, 180}, []uint8{0, 90, 180}),
			info: unit(2, 2),
			want: levels([]float64{30, 150}, []float64{30, 150}), // 0·⅔+90·⅓, 90·⅓+180·⅔
			tol:  1e-3,
		},
		{
			name: "3 to 2 rows weighs by overlap",
			img:  gray([]uint8{0, 0, 0}, []uint8{90, 90, 90}, []uint8{180, 180, 180}),
			info: unit(2, 2),
			want: levels([]float64{30, 30}, []float64{150, 150}),
			tol:  1e-3,
		},
		{
			name: "uniform stays uniform at a fractional factor",
			img:  gray([]uint8{77, 77, 77, 77, 77}, []uint8{77, 77, 77, 77, 77}, []uint8{77, 77, 77, 77, 77}, []uint8{77, 77, 77, 77, 77}, []uint8{77, 77, 77, 77, 77}),
			info: unit(3, 3),
			want: levels([]float64{77, 77, 77}, []float64{77, 77, 77}, []float64{77, 77, 77}),
			tol:  1e-3,
		},
		{
			name: "landscape: center columns",
			img:  gray([]uint8{0, 10, 20, 30, 40, 50}, []uint8{0, 10, 20, 30, 40, 50}, []uint8{0, 10, 20, 30, 40, 50}, []uint8{0, 10, 20, 30, 40, 50}),
			info: unit(4, 4),
			want: levels([]float64{10, 20, 30, 40}, []float64{10, 20, 30, 40}, []float64{10, 20, 30, 40}, []float64{10, 20, 30, 40}),
			tol:  1e-3,
		},
		{
			name: "portrait: center rows",
			img:  gray([]uint8{0, 0}, []uint8{10, 10}, []uint8{20, 20}, []uint8{30, 30}),
			info: unit(2, 2),
			want: levels([]float64{10, 10}, []float64{20, 20}),
			tol:  1e-3,
		},
		{
			name: "center crop then halve",
			img:  gray([]uint8{0, 10, 20, 30, 40, 50, 60, 70}, []uint8{0, 10, 20, 30, 40, 50, 60, 70}, []uint8{0, 10, 20, 30, 40, 50, 60, 70}, []uint8{0, 10, 20, 30, 40, 50, 60, 70}),
			info: unit(2, 2),
			want: levels([]float64{25, 45}, []float64{25, 45}),
			tol:  1e-3,
		},
		{
			name: "sub-image reads its own window",
			img:  parent.SubImage(image.Rect(2, 3, 6, 7)),
			info: unit(4, 4),
			want: levels([]float64{23, 33, 43, 53}, []float64{24, 34, 44, 54}, []float64{25, 35, 45, 55}, []float64{26, 36, 46, 56}),
			tol:  1e-3,
		},
		{
			name: "resize_shorter > input_size crops before scaling",
			img:  parent,
			info: unit(2, 4), // the box is the center 4x4, halved
			want: levels([]float64{27.5, 47.5}, []float64{29.5, 49.5}),
			tol:  1e-3,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tensor, _ := c.info.Tensor(nil, c.img)
			n := c.info.InputSize
			if len(tensor) != 3*n*n || len(c.want) != n*n {
				t.Fatalf("tensor %d floats, want %d (table has %d pixels)", len(tensor), 3*n*n, len(c.want))
			}
			for i, want := range c.want {
				got := tensorRGB(c.info, tensor, i%n, i/n)
				for ch := range 3 {
					if math.Abs(got[ch]-want[ch]) > c.tol {
						t.Errorf("pixel (%d,%d) = %.3f, want %.3f", i%n, i/n, got, want)
						break
					}
				}
			}
		})
	}
}

func TestTensorCropsCenterOf256(t *testing.T) {
	// Sources of 256x256 whose pixel values name their position; the model's input must be the
	// center 224x224, unscaled: tensor pixel (i, j) is source pixel (16+i, 16+j).
	plain := image.NewNRGBA(image.Rect(0, 0, 256, 256))
	for y := range 256 {
		for x := range 256 {
			plain.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), uint8(255 - x), 255})
		}
	}
	// The same inside a larger red parent, at a non-zero origin.
	parent := image.NewNRGBA(image.Rect(0, 0, 276, 266))
	fill(parent, parent.Rect, red)
	draw.Draw(parent, image.Rect(20, 10, 276, 266), plain, image.Point{}, draw.Src)
	sub := parent.SubImage(image.Rect(20, 10, 276, 266))
	// YCbCr 4:2:0 at an odd origin, neutral chroma: RGB = Y.
	ycc := image.NewYCbCr(image.Rect(0, 0, 259, 261), image.YCbCrSubsampleRatio420)
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	yOf := func(x, y int) uint8 { return uint8(x*7 + y*3) }
	for y := range 261 {
		for x := range 259 {
			ycc.Y[ycc.YOffset(x, y)] = yOf(x-3, y-5)
		}
	}
	yccSub := ycc.SubImage(image.Rect(3, 5, 259, 261))

	xyz := func(x, y int) [3]float64 { return [3]float64{float64(x), float64(y), float64(255 - x)} }
	cases := []struct {
		name string
		img  image.Image
		want func(x, y int) [3]float64 // at source pixel (x, y) relative to the bounds' origin
	}{
		{"NRGBA", plain, xyz},
		{"NRGBA sub-image", sub, xyz},
		{"YCbCr 4:2:0 sub-image", yccSub, func(x, y int) [3]float64 {
			v := float64(yOf(x, y))
			return [3]float64{v, v, v}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tensor, box := imagenet.Tensor(nil, c.img)
			if want := (inference.CropBox{X: 16, Y: 16, Side: 224}); box != want {
				t.Errorf("crop box %+v, want %+v", box, want)
			}
			for j := range 224 {
				for i := range 224 {
					got, want := tensorRGB(imagenet, tensor, i, j), c.want(16+i, 16+j)
					for ch := range 3 {
						if math.Abs(got[ch]-want[ch]) > 0.01 {
							t.Fatalf("tensor pixel (%d,%d) = %.3f, want %v", i, j, got, want)
						}
					}
				}
			}
		})
	}
}

func TestTensorAppendsToBatch(t *testing.T) {
	a, b := noise(300, 260), noise(260, 300)
	first, _ := imagenet.Tensor(nil, a)
	second, _ := imagenet.Tensor(nil, b)
	batch := []float32{42}
	batch, _ = imagenet.Tensor(batch, a)
	batch, _ = imagenet.Tensor(batch, b)
	plane := 3 * 224 * 224
	if len(batch) != 1+2*plane {
		t.Fatalf("batch has %d floats, want %d", len(batch), 1+2*plane)
	}
	if batch[0] != 42 {
		t.Errorf("Tensor overwrote what dst held")
	}
	for i := range plane {
		if batch[1+i] != first[i] || batch[1+plane+i] != second[i] {
			t.Fatalf("batch float %d differs from the single-image tensors", i)
		}
	}
}

func TestTensorEnlargesSmallPhotos(t *testing.T) {
	// Left half black, right half white; inside a red parent at a non-zero origin.
	parent := image.NewNRGBA(image.Rect(0, 0, 140, 110))
	fill(parent, parent.Rect, red)
	fill(parent, image.Rect(10, 5, 70, 105), color.Black)
	fill(parent, image.Rect(70, 5, 130, 105), color.White)
	for _, c := range []struct {
		name string
		img  image.Image
	}{
		{"at the origin", imageAtOrigin(parent.SubImage(image.Rect(10, 5, 130, 105)))},
		{"sub-image", parent.SubImage(image.Rect(10, 5, 130, 105))},
	} {
		t.Run(c.name, func(t *testing.T) {
			tensor, box := imagenet.Tensor(nil, c.img)
			if want := imagenet.CropBoxFor(120, 100); box != want {
				t.Errorf("crop box %+v, want %+v", box, want)
			}
			n := imagenet.InputSize
			for _, p := range []struct {
				x, y int
				want [3]int
			}{
				{0, 0, [3]int{0, 0, 0}}, {10, n / 2, [3]int{0, 0, 0}}, {0, n - 1, [3]int{0, 0, 0}},
				{n - 1, 0, white}, {n - 10, n / 2, white}, {n - 1, n - 1, white},
			} {
				if got := round3(tensorRGB(imagenet, tensor, p.x, p.y)); !near(got, p.want, 1) {
					t.Errorf("tensor pixel (%d,%d) = %v, want %v", p.x, p.y, got, p.want)
				}
			}
		})
	}
}

// withProcs sets GOMAXPROCS for one (non-parallel) test, so that the row-band parallelism of
// resampling and rendering runs whatever the machine.
func withProcs(tb testing.TB, n int) {
	old := runtime.GOMAXPROCS(n)
	tb.Cleanup(func() { runtime.GOMAXPROCS(old) })
}

// referenceArea is a plain float64 box filter: output pixel (i, j) of the n x n result is the
// overlap-weighted mean of the source pixels under its square of the crop box.
func referenceArea(img *image.NRGBA, box inference.CropBox, n int) [][3]float64 {
	step := box.Side / float64(n)
	type wt struct {
		k int
		w float64
	}
	weights := func(start float64, i int) []wt {
		a, b := start+float64(i)*step, start+float64(i+1)*step
		var out []wt
		for k := int(math.Floor(a)); float64(k) < b; k++ {
			if ov := math.Min(b, float64(k+1)) - math.Max(a, float64(k)); ov > 1e-12 {
				out = append(out, wt{k, ov / step})
			}
		}
		return out
	}
	out := make([][3]float64, n*n)
	for j := range n {
		ys := weights(box.Y, j)
		for i := range n {
			var acc [3]float64
			for _, wy := range ys {
				for _, wx := range weights(box.X, i) {
					p := img.Pix[img.PixOffset(wx.k, wy.k):]
					for c := range 3 {
						acc[c] += wx.w * wy.w * float64(p[c])
					}
				}
			}
			out[j*n+i] = acc
		}
	}
	return out
}

func TestTensorMatchesReferenceAreaAverage(t *testing.T) {
	withProcs(t, 4)
	for _, sz := range []struct{ w, h int }{
		{300, 260},   // small: one band
		{640, 480},   // factor 1.875
		{1000, 700},  // factor 2.734375, several bands
		{1536, 2048}, // portrait, factor 6 exactly
	} {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			img := noise(sz.w, sz.h)
			tensor, box := imagenet.Tensor(nil, img)
			want := referenceArea(img, box, imagenet.InputSize)
			n := imagenet.InputSize
			for i, w := range want {
				got := tensorRGB(imagenet, tensor, i%n, i/n)
				for c := range 3 {
					if math.Abs(got[c]-w[c]) > 0.02 {
						t.Fatalf("pixel (%d,%d) = %.3f, want the box average %.3f", i%n, i/n, got, w)
					}
				}
			}
			// Splitting the rows into bands changes nothing, not even rounding.
			runtime.GOMAXPROCS(1)
			serial, _ := imagenet.Tensor(nil, img)
			runtime.GOMAXPROCS(4)
			for i := range serial {
				if serial[i] != tensor[i] {
					t.Fatalf("float %d: %v on one CPU, %v on four", i, serial[i], tensor[i])
				}
			}
		})
	}
}

// imageAtOrigin copies img into a new NRGBA whose bounds start at (0, 0).
func imageAtOrigin(img image.Image) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}

// FuzzDecode: whatever the bytes, Decode returns an opaque image of an accepted format or a
// *PhotoError of exactly one kind, and never panics. `go test` runs the seeds.
func FuzzDecode(f *testing.F) {
	jpg := encodeJPEG(f, noise(24, 16), 80)
	pngData := encodePNG(f, noise(16, 24))
	webp, err := os.ReadFile(filepath.Join("testdata", "pattern.webp"))
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{
		jpg, jpg[:len(jpg)/2], withOrientation(jpg, 6, true), withOrientation(jpg, 9, false),
		pngData, pngData[:len(pngData)-20], webp, webp[:30], animatedGIF(f),
		pngHeaderOnly(8000, 7500), pngTwoIHDR(3, 2, 40, 30), jpegHeaderOnly(100, 100), jpegHeaderOnly(0, 0), pngHeaderOnly(0, 1),
		[]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), nil,
	} {
		f.Add(seed)
	}
	limits := inference.Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		photo, err := decodeNoPanic(t, data, limits)
		if err != nil {
			var pe *inference.PhotoError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *PhotoError", err, err)
			}
			kinds := 0
			for _, k := range photoErrors {
				if errors.Is(err, k) {
					kinds++
				}
			}
			if kinds != 1 {
				t.Fatalf("error %q matches %d kinds, want 1", err, kinds)
			}
			return
		}
		switch photo.Format {
		case "jpeg", "png", "webp":
		default:
			t.Fatalf("accepted format %q", photo.Format)
		}
		b := photo.Image.Bounds()
		if b.Empty() || int64(b.Dx())*int64(b.Dy()) > limits.MaxPixels {
			t.Fatalf("decoded bounds %v", b)
		}
		if o, ok := photo.Image.(interface{ Opaque() bool }); ok && !o.Opaque() {
			t.Fatalf("decoded image is not opaque")
		}
	})
}

// TestDecodeRefusesStrips: a photo whose longer side is more than MaxAspect times the shorter is
// refused from its header as corrupt (its detail ErrAspect), whatever its format and orientation;
// one of exactly MaxAspect:1 is decoded.
func TestDecodeRefusesStrips(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   []byte
		refuse bool
	}{
		{"PNG 4200x200", synthpng.Huge(4200, 200, ""), true},
		{"PNG 200x4200", synthpng.Huge(200, 4200, ""), true},
		{"PNG 16777216x2", synthpng.Huge(1<<24, 2, ""), true},
		{"PNG 4000x200", synthpng.Huge(4000, 200, ""), false},
		{"PNG 200x4000", synthpng.Huge(200, 4000, ""), false},
		{"JPEG 2100x100", encodeJPEG(t, noise(2100, 100), 80), true},
		{"JPEG 100x2100", encodeJPEG(t, noise(100, 2100), 80), true},
		{"JPEG 2000x100", encodeJPEG(t, noise(2000, 100), 80), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			photo, err := decodeNoPanic(t, tc.data, inference.Limits{})
			if !tc.refuse {
				if err != nil {
					t.Fatalf("a %d:1 photo refused: %v", inference.MaxAspect, err)
				}
				return
			}
			checkPhotoError(t, err, inference.ErrCorrupt)
			if !errors.Is(err, inference.ErrAspect) {
				t.Errorf("error %v does not wrap ErrAspect", err)
			}
			if photo.Image != nil {
				t.Error("an image with the error")
			}
		})
	}
}
