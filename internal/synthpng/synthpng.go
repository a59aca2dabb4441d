// Package synthpng writes PNG files by hand, for tests and for cropshield bench: colour types,
// bit depths and interlacing that Go's encoder never writes, and tiny uploads that decode to tens
// of megapixels (the hostile photo of issue 12).
package synthpng

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
)

// Header is a PNG's IHDR: size, bit depth, colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha,
// 6 RGBA) and interlace method (0 none, 1 Adam7).
type Header struct {
	W, H, Depth, Colour int
	Interlace           byte
}

// Chunk is an ancillary or palette chunk written between IHDR and IDAT (PLTE, tRNS, tEXt...).
type Chunk struct {
	Type string
	Data []byte
}

// Write returns a PNG of header h, the chunks extra in order, and n image rows row(0..n-1) (the
// raw bytes of each row, without the filter byte: every row is written with filter 0) compressed
// into one IDAT at the zlib level given. Nothing is checked: broken files are what some callers
// want.
func Write(h Header, extra []Chunk, n int, row func(i int) []byte, level int) []byte {
	var z bytes.Buffer
	zw, err := zlib.NewWriterLevel(&z, level)
	if err != nil {
		zw = zlib.NewWriter(&z)
	}
	filter := []byte{0}
	for i := range n {
		_, _ = zw.Write(filter) // into a bytes.Buffer: no error
		_, _ = zw.Write(row(i))
	}
	_ = zw.Close()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(h.W))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h.H))
	ihdr = append(ihdr, byte(h.Depth), byte(h.Colour), 0, 0, h.Interlace)
	out := chunk([]byte("\x89PNG\r\n\x1a\n"), "IHDR", ihdr)
	for _, c := range extra {
		out = chunk(out, c.Type, c.Data)
	}
	out = chunk(out, "IDAT", z.Bytes())
	return chunk(out, "IEND", nil)
}

func chunk(out []byte, typ string, body []byte) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	start := len(out)
	out = append(out, typ...)
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start:]))
}

// Huge is a w x h paletted PNG of green and brown stripes that compresses to a few hundred
// kilobytes however large it is: a small upload that decodes to w*h pixels. A non-empty comment
// goes into a tEXt chunk (distinct comments give distinct files, and so distinct photo hashes).
func Huge(w, h int, comment string) []byte {
	row := make([]byte, w)
	for x := range w {
		row[x] = uint8(x / 97 % 3)
	}
	extra := []Chunk{{"PLTE", []byte{40, 130, 45, 120, 80, 35, 220, 220, 210}}}
	if comment != "" {
		extra = append(extra, Chunk{"tEXt", append([]byte("Comment\x00"), comment...)})
	}
	return Write(Header{W: w, H: h, Depth: 8, Colour: 3}, extra, h,
		func(int) []byte { return row }, zlib.BestCompression)
}
