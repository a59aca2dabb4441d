package inference

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // registered decoders: exactly the formats we accept
	_ "image/png"

	"github.com/disintegration/imaging"
	_ "golang.org/x/image/webp"
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

// Decode checks data against the limits and decodes it. Errors are *PhotoError.
func Decode(data []byte, limits Limits) (Photo, error) {
	limits = limits.withDefaults()
	fail := func(kind error, format string, mp float64, detail error) (Photo, error) {
		return Photo{}, &PhotoError{Kind: kind, Format: format, Bytes: int64(len(data)), Megapixels: mp, Limit: limits, Detail: detail}
	}
	if len(data) == 0 {
		return fail(ErrEmpty, "", 0, nil)
	}
	if int64(len(data)) > limits.MaxBytes {
		return fail(ErrTooLarge, "", 0, nil)
	}
	format := sniff(data)
	if format == "" {
		return fail(ErrNotImage, "", 0, nil)
	}
	mime, ok := acceptedFormats[format]
	if !ok {
		return fail(ErrUnsupportedFormat, format, 0, nil)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return fail(ErrCorrupt, format, 0, fmt.Errorf("header: %w", err))
	}
	mp := float64(cfg.Width) * float64(cfg.Height) / 1e6
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fail(ErrCorrupt, format, mp, fmt.Errorf("%dx%d pixels", cfg.Width, cfg.Height))
	}
	if int64(cfg.Width)*int64(cfg.Height) > limits.MaxPixels {
		return fail(ErrTooManyPixels, format, mp, nil)
	}
	img, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
	if err != nil {
		return fail(ErrCorrupt, format, mp, err)
	}
	return Photo{Image: flatten(img), Format: format, MIME: mime}, nil
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
