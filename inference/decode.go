package inference

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // registered for image.DecodeConfig: exactly the formats we accept
	"image/png"

	"golang.org/x/image/webp"

	"github.com/cropshield/cropshield/inference/imagecodec"
)

// Limits bound the photos Decode accepts; they are checked before any pixel is decoded.
type Limits struct {
	MaxBytes  int64 // default 20 MB
	MaxPixels int64 // default 40 megapixels
}

// DefaultLimits are the limits used where Limits fields are zero.
var DefaultLimits = Limits{MaxBytes: 20 << 20, MaxPixels: 40_000_000}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultLimits.MaxPixels
	}
	return l
}

// MaxAspect is the largest ratio of a photo's longer side to its shorter one that Decode accepts.
const MaxAspect = 20

// ErrAspect is the detail of the ErrCorrupt of a photo whose sides are further apart than
// MaxAspect: not a photo of a leaf, and rows too long for the decode budget.
var ErrAspect = fmt.Errorf("longer side more than %d times the shorter", MaxAspect)

// Formats accepted by Decode, as image.DecodeConfig names them.
var acceptedFormats = map[string]string{"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}

// Photo is a decoded photo, upright (EXIF orientation applied) and opaque (alpha flattened onto
// white).
type Photo struct {
	Image  image.Image
	Format string // "jpeg", "png" or "webp"
	MIME   string
}

// PhotoError says what is wrong with a photo. It wraps one of ErrEmpty, ErrTooLarge,
// ErrNotImage, ErrUnsupportedFormat, ErrTooManyPixels or ErrCorrupt (check with errors.Is) and
// carries the figures a user-facing message needs (read with errors.As).
type PhotoError struct {
	Kind       error
	Format     string  // the sniffed format, "" if unknown
	Bytes      int64   // the photo's size
	Megapixels float64 // from the header, 0 if not read
	Limit      Limits
	Detail     error // the decoder's error, if any
}

func (e *PhotoError) Error() string {
	msg := e.Kind.Error()
	switch {
	case errors.Is(e.Kind, ErrTooLarge):
		msg += fmt.Sprintf(": %d bytes, limit %d", e.Bytes, e.Limit.MaxBytes)
	case errors.Is(e.Kind, ErrTooManyPixels):
		msg += fmt.Sprintf(": %.1f megapixels, limit %.0f", e.Megapixels, float64(e.Limit.MaxPixels)/1e6)
	case e.Format != "":
		msg += ": " + e.Format
	}
	if e.Detail != nil {
		msg += ": " + e.Detail.Error()
	}
	return msg
}

// Unwrap exposes the kind and the decoder's error.
func (e *PhotoError) Unwrap() []error { return []error{e.Kind, e.Detail} }

// header is what a photo's bytes declare, read and checked before any pixel is decoded.
type header struct {
	format, mime string
	w, h         int // as stored, before the EXIF orientation
	orient       int // EXIF orientation 1..8 (JPEG only; 1 otherwise)
	bytes        int64
	limits       Limits
	// png: the IHDR's bit depth, colour type and interlace flag.
	pngDepth, pngColour int
	pngInterlaced       bool
	// jpeg: the frame's components and whether it is progressive, from a walk over the markers.
	jpegComponents  int
	jpegProgressive bool
}

// fail builds the *PhotoError of a photo.
func (hd header) fail(kind error, detail error) *PhotoError {
	return &PhotoError{Kind: kind, Format: hd.format, Bytes: hd.bytes, Megapixels: hd.megapixels(), Limit: hd.limits, Detail: detail}
}

func (hd header) megapixels() float64 { return float64(hd.w) * float64(hd.h) / 1e6 }

// upright is the photo's size as a viewer sees it.
func (hd header) upright() (w, h int) {
	if hd.orient >= 5 {
		return hd.h, hd.w
	}
	return hd.w, hd.h
}

// inspect checks data against the limits from its header alone. Errors are *PhotoError.
func inspect(data []byte, limits Limits) (header, error) {
	hd := header{bytes: int64(len(data)), limits: limits.withDefaults(), orient: 1}
	if len(data) == 0 {
		return hd, hd.fail(ErrEmpty, nil)
	}
	if hd.bytes > hd.limits.MaxBytes {
		return hd, hd.fail(ErrTooLarge, nil)
	}
	hd.format = sniff(data)
	if hd.format == "" {
		return hd, hd.fail(ErrNotImage, nil)
	}
	mime, ok := acceptedFormats[hd.format]
	if !ok {
		return hd, hd.fail(ErrUnsupportedFormat, nil)
	}
	hd.mime = mime
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return hd, hd.fail(ErrCorrupt, fmt.Errorf("header: %w", err))
	}
	hd.w, hd.h = cfg.Width, cfg.Height
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return hd, hd.fail(ErrCorrupt, fmt.Errorf("%dx%d pixels", cfg.Width, cfg.Height))
	}
	if int64(cfg.Width)*int64(cfg.Height) > hd.limits.MaxPixels {
		return hd, hd.fail(ErrTooManyPixels, nil)
	}
	// No leaf photo is a strip; a 16777216x2 one passes the pixel limit but makes rows (and the
	// decoders' row buffers) of hundreds of megabytes that the budget would have to count whole.
	if long, short := max(cfg.Width, cfg.Height), min(cfg.Width, cfg.Height); long > MaxAspect*short {
		return hd, hd.fail(ErrCorrupt, fmt.Errorf("%dx%d pixels: %w", cfg.Width, cfg.Height, ErrAspect))
	}
	switch hd.format {
	case "jpeg":
		hd.orient = imagecodec.JPEGOrientation(data)
		m, err := imagecodec.ReadJPEGMarkers(data)
		if errors.Is(err, imagecodec.ErrTooManyScans) {
			return hd, hd.fail(ErrCorrupt, err)
		}
		hd.jpegComponents, hd.jpegProgressive = m.Components, m.Progressive
	case "png": // DecodeConfig has read IHDR, so these bytes exist
		hd.pngDepth, hd.pngColour, hd.pngInterlaced = int(data[24]), int(data[25]), data[28] == 1
	}
	return hd, nil
}

// Decode checks data against the limits and decodes it at full size, upright and opaque. Errors
// are *PhotoError. Model.Analyze does not use it: it decodes at the reduced size it needs.
func Decode(data []byte, limits Limits) (Photo, error) {
	hd, err := inspect(data, limits)
	if err != nil {
		return Photo{}, err
	}
	img, err := decodeStored(data, hd, imagecodec.Default(), imagecodec.One, 1, nil, nil)
	if err != nil {
		return Photo{}, err
	}
	up := img
	if hd.orient != 1 {
		up = uprightCopy(sourceOf(up), up.Bounds(), hd.orient)
	}
	return Photo{Image: up, Format: hd.format, MIME: hd.mime}, nil
}

// decodeStored decodes the pixels in their stored orientation: a JPEG reduced by scale where the
// codec can (libjpeg-turbo), a non-interlaced PNG averaged over k x k blocks while it is
// inflated, anything else at full size. pix is a buffer to decode into where the decoder allows.
// The image may be larger than asked (Go's JPEG decoder and the fall-backs decode at 1/1). It is
// opaque: what may have transparency (a PNG decoded whole, WebP) is flattened onto white here, and
// nothing else is scanned for it. Before a JPEG is decoded whole with Go's decoder (the codec is
// Go's, or libjpeg-turbo left it to Go), makeRoom, unless nil, is called with the bytes that
// decode takes (goJPEGBytes); its error is returned as it is. Other errors are *PhotoError.
func decodeStored(data []byte, hd header, codec imagecodec.Codec, scale imagecodec.Scale, k int, pix []byte,
	makeRoom func(int64) error) (image.Image, error) {
	var img image.Image
	var err error
	switch hd.format {
	case "jpeg":
		var fast *image.NRGBA
		fast, err = codec.DecodeJPEGScaled(data, hd.w, hd.h, scale, pix)
		switch {
		case errors.Is(err, imagecodec.ErrNeedsGo):
			if makeRoom != nil {
				if err := makeRoom(hd.goJPEGBytes()); err != nil {
					return nil, err
				}
			}
			img, err = imagecodec.DecodeJPEGGo(data)
		case err == nil:
			img = fast
		}
	case "png":
		img, err = imagecodec.DecodePNGReduced(data, hd.w, hd.h, k, pix) // opaque: composited while inflated
		if errors.Is(err, imagecodec.ErrInterlaced) {
			if img, err = png.Decode(bytes.NewReader(data)); err == nil {
				img = flatten(img)
			}
		}
	case "webp":
		if img, err = webp.Decode(bytes.NewReader(data)); err == nil {
			img = flatten(img)
		}
	default:
		err = fmt.Errorf("no decoder for %s", hd.format)
	}
	if err != nil {
		return nil, hd.fail(ErrCorrupt, err)
	}
	if b := img.Bounds(); b.Empty() {
		return nil, hd.fail(ErrCorrupt, fmt.Errorf("decoded to %v", b))
	}
	return img, nil
}

// decodedBytes estimates the memory of decodeStored's image: what the pixel budget counts.
func (hd header) decodedBytes(codec imagecodec.Codec, scale imagecodec.Scale, k int) int64 {
	px := int64(hd.w) * int64(hd.h)
	switch {
	case hd.format == "jpeg" && codec.Name() != "go":
		// libjpeg-turbo's RGBA pixels; for a progressive JPEG also its coefficient image, which
		// it keeps whole in C memory however much it scales (64 int16 per 8x8 block and
		// component: 9.5 MB of pixels but 240 MB of coefficients for a 6320x6320 photo).
		n := 4 * int64(scale.Apply(hd.w)) * int64(scale.Apply(hd.h))
		if hd.jpegProgressive {
			n += 128 * hd.jpegComps() * hd.blocks()
		}
		return n
	case hd.format == "jpeg":
		return hd.goJPEGBytes()
	case hd.format == "png" && !hd.pngInterlaced:
		// The reduced pixels, and the streaming decoder's two filtered rows, its RGB row and its
		// block sums.
		kk := int64(k)
		dw := (int64(hd.w) + kk - 1) / kk
		return 4*dw*((int64(hd.h)+kk-1)/kk) + hd.pngRows() + 3*int64(hd.w) + 4*3*dw
	case hd.format == "png":
		// image/png's pixels (8 bytes for 16-bit colour), and the flattened copy when there is
		// transparency.
		bpp := int64(4)
		switch {
		case hd.pngColour == 0 || hd.pngColour == 3:
			bpp = int64(max(1, hd.pngDepth/8))
		case hd.pngDepth == 16:
			bpp = 8
		}
		return bpp*px + 4*px + hd.pngRows()
	}
	return 2 * 4 * px // WebP: NRGBA (lossless) and the flattened copy
}

// goJPEGBytes estimates what image/jpeg holds to decode a JPEG whole: its image (1 byte a pixel
// grey, 3 YCbCr up to 4:4:4, 4 CMYK and the 4 of the NRGBA copy sourceOf makes of CMYK) and, for
// a progressive JPEG, its coefficients (64 int32 per 8x8 block and component, at most).
func (hd header) goJPEGBytes() int64 {
	px := int64(hd.w) * int64(hd.h)
	comps, n := hd.jpegComps(), 3*px
	switch comps {
	case 1:
		n = px
	case 4:
		n = 8 * px
	}
	if hd.jpegProgressive {
		n += 256 * comps * hd.blocks()
	}
	return n
}

// jpegComps is the frame's number of components, 3 where the walk found no frame header.
func (hd header) jpegComps() int64 {
	if hd.jpegComponents <= 0 {
		return 3
	}
	return int64(hd.jpegComponents)
}

// blocks is the number of 8x8 blocks of a full-resolution JPEG component.
func (hd header) blocks() int64 { return (int64(hd.w) + 7) / 8 * ((int64(hd.h) + 7) / 8) }

// pngRows is what a PNG decoder holds besides the pixels: two filtered rows (the current one and
// the one above) and the inflater's state and window.
func (hd header) pngRows() int64 {
	channels := map[int]int64{0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[hd.pngColour]
	rowBytes := (int64(hd.w)*channels*int64(hd.pngDepth) + 7) / 8
	const inflater = 64 << 10
	return 2*(1+rowBytes) + inflater
}

// sniff names the image format from the magic bytes, including formats we refuse, so that the
// user hears "GIF is not supported" rather than "not an image".
func sniff(b []byte) string {
	has := func(off int, magic string) bool {
		return len(b) >= off+len(magic) && string(b[off:off+len(magic)]) == magic
	}
	switch {
	case has(0, "\xff\xd8\xff"):
		return "jpeg"
	case has(0, "\x89PNG\r\n\x1a\n"):
		return "png"
	case has(0, "RIFF") && has(8, "WEBP"):
		return "webp"
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return "gif"
	case has(0, "BM"):
		return "bmp"
	case has(0, "II*\x00"), has(0, "MM\x00*"):
		return "tiff"
	case has(4, "ftypheic"), has(4, "ftypheix"), has(4, "ftypmif1"), has(4, "ftypavif"):
		return "heif"
	}
	return ""
}

type opaquer interface{ Opaque() bool }

// flatten composites images with transparency onto white: a cut-out leaf must not turn into a
// leaf on black for the model.
func flatten(img image.Image) image.Image {
	if o, ok := img.(opaquer); !ok || o.Opaque() {
		return img
	}
	b := img.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), &image.Uniform{C: color.White}, image.Point{}, draw.Src)
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Over)
	return dst
}
