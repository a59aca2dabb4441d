package bot

import "github.com/cropshield/cropshield/inference"

// DefaultMaxPhotoBytes is the largest photo downloaded and analysed unless configured otherwise
// (the handler's Config.MaxPhotoBytes, the intake's, an adapter's download limit).
const DefaultMaxPhotoBytes = 20 << 20

// PhotoTooLarge is the error an adapter's FetchPhoto returns for a photo of size bytes over
// limit: the handler tells the user both sizes in their language.
func PhotoTooLarge(size, limit int64) error {
	return &inference.PhotoError{Kind: inference.ErrTooLarge, Bytes: size, Limit: inference.Limits{MaxBytes: limit}}
}

// PhotoUnsupported is the error an adapter's FetchPhoto returns for a photo it will not hand
// over in the named format (WhatsApp's "view-once"): the handler says it cannot read such photos.
func PhotoUnsupported(format string) error {
	return &inference.PhotoError{Kind: inference.ErrUnsupportedFormat, Format: format}
}
