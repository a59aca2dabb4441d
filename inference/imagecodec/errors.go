package imagecodec

import "errors"

// Errors of this package, to be checked with errors.Is.
var (
	// ErrUnsupported: the JPEG is of a kind this codec does not decode (libjpeg-turbo: CMYK/YCCK);
	// Codec.DecodeJPEG then decodes it with Go.
	ErrUnsupported = errors.New("jpeg kind not supported by this codec")
	// ErrNeedsGo: the codec did not decode the JPEG at reduced size (the Go codec never does;
	// libjpeg-turbo refuses CMYK/YCCK, and a JPEG it warns about is left to Go's stricter decoder):
	// decode it with DecodeJPEGGo, at full size, after making room for that.
	ErrNeedsGo = errors.New("jpeg needs the Go decoder")
	// ErrInterlaced: the PNG is interlaced (Adam7), so its rows cannot be reduced as they arrive;
	// decode it whole with image/png.
	ErrInterlaced = errors.New("interlaced png")
	// ErrSizeMismatch: the image declares another size than the one the caller checked (a second
	// IHDR, or a JPEG frame unlike its header).
	ErrSizeMismatch = errors.New("image size differs from the checked header")
	// errWarning: libjpeg-turbo decoded the JPEG but warned (a truncated file, extraneous bytes).
	// Go's stricter decoder then decides, as before libjpeg-turbo was used.
	errWarning = errors.New("libjpeg-turbo warning")
)
