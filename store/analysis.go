package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Candidate is one class of an analysis with its probability.
type Candidate struct {
	Class string  `json:"class"`
	Prob  float64 `json:"prob"`
}

// Analysis is the result of running a model on one photo.
type Analysis struct {
	PhotoHash    string      // hex SHA-256 of the photo bytes
	ModelVersion string      // the model that produced it
	Top          []Candidate // best first
	Overlay      []byte      // JPEG heat-map overlay, may be empty
	// NotLeaf is the model's not-a-leaf score (0 for models without one); Rejected says the
	// photo was refused as not a leaf.
	NotLeaf  float64
	Rejected bool
	// UnknownCrop is the model's unknown-crop score (0 for models without one); OtherCrop says
	// the photo is a leaf of a crop the model does not know (never set with Rejected): its
	// classes say nothing about it.
	UnknownCrop float64
	OtherCrop   bool
	// Scores holds every class's probability by class id, so that an answer restricted to the
	// crop the farmer states needs no second inference. Analyses stored before it existed have
	// none (nil): only Top is known of them.
	Scores      map[string]float64
	InferenceMS float64
	CreatedAt   time.Time
}

// analysisRec is the JSON stored under the photo hash. The overlay is kept
// in its own bucket so reading the record never drags the image along.
type analysisRec struct {
	ModelVersion string      `json:"model_version"`
	Top          []Candidate `json:"top"`
	NotLeaf      float64     `json:"not_leaf,omitempty"`
	Rejected     bool        `json:"rejected,omitempty"`
	UnknownCrop  float64     `json:"unknown_crop,omitempty"`
	OtherCrop    bool        `json:"other_crop,omitempty"`
	// Scores: every class's probability (omitempty: older records have none and still decode).
	Scores      map[string]float64 `json:"scores,omitempty"`
	InferenceMS float64            `json:"inference_ms"`
	CreatedAt   time.Time          `json:"created_at"`
}

// photoRec is the JSON stored alongside a photo's bytes.
type photoRec struct {
	MIME string `json:"mime"`
}

// PutAnalysis stores a, replacing any earlier analysis of the same photo (whatever its model
// version), and, when photo is not empty, the photo's bytes and MIME type, all in one
// transaction. A photo is stored once: if its hash is already stored, the first copy is kept.
// An empty Overlay removes a stored one.
func (s *Store) PutAnalysis(ctx context.Context, a Analysis, photo []byte, mime string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("photo hash", a.PhotoHash); err != nil {
		return err
	}
	if a.ModelVersion == "" {
		return fmt.Errorf("%w: empty model version", ErrInvalid)
	}
	v, err := json.Marshal(analysisRec{
		ModelVersion: a.ModelVersion,
		Top:          a.Top,
		NotLeaf:      a.NotLeaf,
		Rejected:     a.Rejected,
		UnknownCrop:  a.UnknownCrop,
		OtherCrop:    a.OtherCrop,
		Scores:       a.Scores,
		InferenceMS:  a.InferenceMS,
		CreatedAt:    utc(a.CreatedAt),
	})
	if err != nil {
		return fmt.Errorf("%w: encode analysis of %s: %w", ErrInvalid, a.PhotoHash, err)
	}
	meta, err := json.Marshal(photoRec{MIME: mime})
	if err != nil {
		return fmt.Errorf("%w: encode photo metadata: %w", ErrInvalid, err)
	}
	key := []byte(a.PhotoHash)
	return s.update(ctx, "put analysis "+a.PhotoHash, func(tx Tx) error {
		if len(photo) > 0 {
			pb, err := bucket(tx, bucketPhotos)
			if err != nil {
				return err
			}
			mb, err := bucket(tx, bucketPhotoMeta)
			if err != nil {
				return err
			}
			if pb.Get(key) == nil {
				if err := pb.Put(key, photo); err != nil {
					return err
				}
				if err := mb.Put(key, meta); err != nil {
					return err
				}
			}
		}
		ab, err := bucket(tx, bucketAnalyses)
		if err != nil {
			return err
		}
		ob, err := bucket(tx, bucketOverlays)
		if err != nil {
			return err
		}
		if err := ab.Put(key, v); err != nil {
			return err
		}
		if len(a.Overlay) == 0 {
			return ob.Delete(key)
		}
		return ob.Put(key, a.Overlay)
	})
}

// GetAnalysis returns the analysis of a photo made by modelVersion. It
// returns ErrNotFound when there is none, and also when the stored analysis
// came from a different model version: a new model never answers with an
// old model's result.
func (s *Store) GetAnalysis(ctx context.Context, photoHash, modelVersion string) (Analysis, error) {
	if err := ctx.Err(); err != nil {
		return Analysis{}, err
	}
	if err := checkID("photo hash", photoHash); err != nil {
		return Analysis{}, err
	}
	if modelVersion == "" {
		return Analysis{}, fmt.Errorf("%w: empty model version", ErrInvalid)
	}
	var a Analysis
	err := s.view(ctx, "get analysis "+photoHash, func(tx Tx) error {
		ab, err := bucket(tx, bucketAnalyses)
		if err != nil {
			return err
		}
		ob, err := bucket(tx, bucketOverlays)
		if err != nil {
			return err
		}
		v := ab.Get([]byte(photoHash))
		if v == nil {
			return fmt.Errorf("%w: analysis of %s", ErrNotFound, photoHash)
		}
		var rec analysisRec
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode analysis: %w", err)
		}
		if rec.ModelVersion != modelVersion {
			return fmt.Errorf("%w: analysis of %s by model %s (stored one is by %s)",
				ErrNotFound, photoHash, modelVersion, rec.ModelVersion)
		}
		a = Analysis{
			PhotoHash:    photoHash,
			ModelVersion: rec.ModelVersion,
			Top:          rec.Top,
			Overlay:      bytes.Clone(ob.Get([]byte(photoHash))),
			NotLeaf:      rec.NotLeaf,
			Rejected:     rec.Rejected,
			UnknownCrop:  rec.UnknownCrop,
			OtherCrop:    rec.OtherCrop,
			Scores:       rec.Scores,
			InferenceMS:  rec.InferenceMS,
			CreatedAt:    rec.CreatedAt,
		}
		return nil
	})
	if err != nil {
		return Analysis{}, err
	}
	return a, nil
}

// CountAnalyses returns the number of stored analyses (one per photo).
func (s *Store) CountAnalyses(ctx context.Context) (int, error) {
	var n int
	err := s.view(ctx, "count analyses", func(tx Tx) error {
		ab, err := bucket(tx, bucketAnalyses)
		if err != nil {
			return err
		}
		n = ab.Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// GetPhoto returns a stored photo and its MIME type, or ErrNotFound.
func (s *Store) GetPhoto(ctx context.Context, photoHash string) (data []byte, mime string, err error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := checkID("photo hash", photoHash); err != nil {
		return nil, "", err
	}
	err = s.view(ctx, "get photo "+photoHash, func(tx Tx) error {
		pb, err := bucket(tx, bucketPhotos)
		if err != nil {
			return err
		}
		mb, err := bucket(tx, bucketPhotoMeta)
		if err != nil {
			return err
		}
		v := pb.Get([]byte(photoHash))
		if v == nil {
			return fmt.Errorf("%w: photo %s", ErrNotFound, photoHash)
		}
		var rec photoRec
		if m := mb.Get([]byte(photoHash)); m != nil {
			if err := json.Unmarshal(m, &rec); err != nil {
				return fmt.Errorf("decode photo metadata: %w", err)
			}
		}
		data, mime = bytes.Clone(v), rec.MIME
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return data, mime, nil
}

// PutContentID records that a platform's own content id (Telegram's
// file_unique_id, WhatsApp's file SHA-256) designates the photo with
// photoHash, so the photo need not be downloaded again. A later call for the
// same content id replaces the mapping.
func (s *Store) PutContentID(ctx context.Context, platform, contentID, photoHash string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", platform, "content id", contentID); err != nil {
		return err
	}
	if err := checkID("photo hash", photoHash); err != nil {
		return err
	}
	return s.update(ctx, "put content id", func(tx Tx) error {
		b, err := bucket(tx, bucketContentIDs)
		if err != nil {
			return err
		}
		return b.Put(compositeKey(platform, contentID), []byte(photoHash))
	})
}

// LookupContentID returns the photo hash recorded for a platform content
// id, or ErrNotFound.
func (s *Store) LookupContentID(ctx context.Context, platform, contentID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := checkIDs("platform", platform, "content id", contentID); err != nil {
		return "", err
	}
	var hash string
	err := s.view(ctx, "lookup content id", func(tx Tx) error {
		b, err := bucket(tx, bucketContentIDs)
		if err != nil {
			return err
		}
		v := b.Get(compositeKey(platform, contentID))
		if v == nil {
			return fmt.Errorf("%w: content id %s on %s", ErrNotFound, contentID, platform)
		}
		hash = string(v) // string conversion copies
		return nil
	})
	if err != nil {
		return "", err
	}
	return hash, nil
}

// checkIDs checks the two parts of a composite key.
func checkIDs(whatA, a, whatB, b string) error {
	if err := checkID(whatA, a); err != nil {
		return err
	}
	return checkID(whatB, b)
}

// StoredAnalysis returns the analysis stored for a photo whatever the model version that made
// it, without the overlay (see Overlay), or ErrNotFound.
func (s *Store) StoredAnalysis(ctx context.Context, photoHash string) (Analysis, error) {
	if err := ctx.Err(); err != nil {
		return Analysis{}, err
	}
	if err := checkID("photo hash", photoHash); err != nil {
		return Analysis{}, err
	}
	var rec analysisRec
	err := s.view(ctx, "stored analysis", func(tx Tx) error {
		return getJSON(tx, bucketAnalyses, []byte(photoHash), &rec, "analysis of "+photoHash)
	})
	if err != nil {
		return Analysis{}, err
	}
	return Analysis{PhotoHash: photoHash, ModelVersion: rec.ModelVersion, Top: rec.Top, NotLeaf: rec.NotLeaf,
		Rejected: rec.Rejected, UnknownCrop: rec.UnknownCrop, OtherCrop: rec.OtherCrop, InferenceMS: rec.InferenceMS,
		CreatedAt: rec.CreatedAt}, nil
}

// Overlay returns a photo's stored heat-map overlay (JPEG), or ErrNotFound.
func (s *Store) Overlay(ctx context.Context, photoHash string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkID("photo hash", photoHash); err != nil {
		return nil, err
	}
	var out []byte
	err := s.view(ctx, "overlay", func(tx Tx) error {
		ob, err := bucket(tx, bucketOverlays)
		if err != nil {
			return err
		}
		v := ob.Get([]byte(photoHash))
		if v == nil {
			return fmt.Errorf("%w: overlay of %s", ErrNotFound, photoHash)
		}
		out = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
