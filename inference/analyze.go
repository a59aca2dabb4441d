package inference

import (
	"context"
	"time"
)

// Timings of the stages of one Analyze call.
type Timings struct {
	Decode, Preprocess, Inference, Render, Encode time.Duration
}

// Total is the sum of all stages.
func (t Timings) Total() time.Duration {
	return t.Decode + t.Preprocess + t.Inference + t.Render + t.Encode
}

// Result is the full analysis of one photo.
type Result struct {
	Prediction
	Format        string // "jpeg", "png" or "webp"
	MIME          string
	Width, Height int    // of the upright photo
	Overlay       []byte // JPEG, the photo's orientation and aspect, longest side <= OverlayMaxSide
	OverlayWidth  int
	OverlayHeight int
	Timings       Timings
}

// Analyze decodes a photo, runs the model and renders the Grad-CAM overlay of the top class.
// Errors about the photo itself are *PhotoError (ErrNotImage, ErrTooLarge, ...).
func (m *Model) Analyze(ctx context.Context, data []byte) (Result, error) {
	return m.analyze(ctx, data, true)
}

// Classify is Analyze without the overlay (Result.Overlay is nil): the same decoding,
// preprocessing and model, for evaluation.
func (m *Model) Classify(ctx context.Context, data []byte) (Result, error) {
	return m.analyze(ctx, data, false)
}

func (m *Model) analyze(ctx context.Context, data []byte, overlay bool) (Result, error) {
	var res Result
	t0 := time.Now()
	// Decoded at reduced size and resampled straight into the tensor and the overlay's base.
	pr, err := m.prepare(ctx, data, overlay)
	if err != nil {
		return res, err
	}
	defer m.done(pr)
	res.Format, res.MIME = pr.hd.format, pr.hd.mime
	res.Width, res.Height = pr.hd.upright()
	t1 := pr.decoded
	t2 := time.Now()
	preds, err := m.Predict(ctx, pr.tensor, 1)
	if err != nil {
		return res, err
	}
	res.Prediction = preds[0]
	t3 := time.Now()
	if !overlay {
		res.Timings = Timings{Decode: t1.Sub(t0), Preprocess: t2.Sub(t1), Inference: t3.Sub(t2)}
		return res, nil
	}
	var t4 time.Time
	res.Overlay, res.OverlayWidth, res.OverlayHeight, t4, err = m.render(pr, res.Heatmaps[0])
	if err != nil {
		return res, err
	}
	t5 := time.Now()
	res.Timings = Timings{Decode: t1.Sub(t0), Preprocess: t2.Sub(t1), Inference: t3.Sub(t2), Render: t4.Sub(t3), Encode: t5.Sub(t4)}
	return res, nil
}
