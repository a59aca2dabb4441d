package inference

import "errors"

// Errors returned by this package, to be checked with errors.Is. Errors about a photo wrap one of
// the first group so that callers can answer the user precisely.
var (
	// ErrTooLarge: the photo's bytes exceed Limits.MaxBytes.
	ErrTooLarge = errors.New("photo file too large")
	// ErrTooManyPixels: the photo's header declares more than Limits.MaxPixels pixels.
	ErrTooManyPixels = errors.New("photo has too many pixels")
	// ErrEmpty: zero bytes.
	ErrEmpty = errors.New("photo is empty")
	// ErrNotImage: the bytes are not an image of any format we know.
	ErrNotImage = errors.New("not an image")
	// ErrUnsupportedFormat: an image, but not JPEG, PNG or WebP (GIF, BMP, TIFF, ...).
	ErrUnsupportedFormat = errors.New("unsupported image format")
	// ErrCorrupt: the header is fine but the image data is broken or truncated.
	ErrCorrupt = errors.New("image data corrupt or truncated")

	// ErrRuntime: the ONNX Runtime library is missing, of the wrong version or failed to start.
	ErrRuntime = errors.New("onnx runtime")
	// ErrContract: the model file does not follow the CropShield model contract.
	ErrContract = errors.New("model contract violated")
	// ErrClosed: the model was closed.
	ErrClosed = errors.New("model closed")
)
