// Package imagecodec reads photos at reduced size and writes the overlay JPEG, for the inference
// package.
//
// JPEG goes through libjpeg-turbo's TurboJPEG API (cgo, Debian libturbojpeg0-dev) where this
// package is built with cgo and without the build tag noturbojpeg: it decodes with DCT-domain
// scaling (1/8 … 1/1), so a 12-megapixel photo is never decoded at full size, and it encodes
// with SIMD. The pure-Go codec (image/jpeg, full-size decode) is always compiled in: it is the
// default under CGO_ENABLED=0 or -tags noturbojpeg, it decodes what libjpeg-turbo refuses or
// only warns about (CMYK, a truncated file), and tests compare the two.
//
// The package has no cgo-free dependency on ONNX Runtime, so it builds and passes its tests with
// CGO_ENABLED=0 too. It keeps no state: callers pass buffers to reuse.
package imagecodec
