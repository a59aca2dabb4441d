package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

const bucketCorrections = "corrections" // photo hash → correctionRec (JSON)

// Correction is a staff member's verdict on a photo: the right class, or a confirmation of the
// model's top-1. It is kept by photo hash apart from the analysis, so a new model version does
// not erase it.
type Correction struct {
	PhotoHash    string
	Class        string // the right class
	Confirmed    bool   // Class is the model's own top-1
	ModelClass   string // the model's top-1 when the staff decided
	ModelVersion string
	By           string
	At           time.Time
}

type correctionRec struct {
	Class        string    `json:"class"`
	Confirmed    bool      `json:"confirmed,omitempty"`
	ModelClass   string    `json:"model_class,omitempty"`
	ModelVersion string    `json:"model_version,omitempty"`
	By           string    `json:"by"`
	At           time.Time `json:"at"`
}

func correctionOf(tx Tx, hash string) (Correction, bool) {
	b := tx.Bucket([]byte(bucketCorrections))
	if b == nil || hash == "" {
		return Correction{}, false
	}
	v := b.Get([]byte(hash))
	if v == nil {
		return Correction{}, false
	}
	var rec correctionRec
	if err := json.Unmarshal(v, &rec); err != nil {
		return Correction{}, false
	}
	return rec.correction(hash), true
}

func (r correctionRec) correction(hash string) Correction {
	return Correction{PhotoHash: hash, Class: r.Class, Confirmed: r.Confirmed, ModelClass: r.ModelClass,
		ModelVersion: r.ModelVersion, By: r.By, At: r.At}
}

// PutCorrection stores c (replacing an earlier correction of the same photo). If platform and
// chatID name a conversation, the action is logged there and its summary shows the class and
// no longer needs attention, in the same transaction; the conversation must exist then.
func (s *Store) PutCorrection(ctx context.Context, c Correction, platform, chatID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkID("photo hash", c.PhotoHash); err != nil {
		return err
	}
	if err := checkIDs("class", c.Class, "staff name", c.By); err != nil {
		return err
	}
	if platform != "" || chatID != "" {
		if err := checkIDs("platform", platform, "chat id", chatID); err != nil {
			return err
		}
	}
	rec := correctionRec{Class: c.Class, Confirmed: c.Confirmed, ModelClass: c.ModelClass,
		ModelVersion: c.ModelVersion, By: c.By, At: utc(c.At)}
	return s.update(ctx, "put correction", func(tx Tx) error {
		b, err := bucket(tx, bucketCorrections)
		if err != nil {
			return err
		}
		if err := putJSON(b, []byte(c.PhotoHash), rec); err != nil {
			return err
		}
		if platform == "" {
			return nil
		}
		action := ActionCorrect
		if c.Confirmed {
			action = ActionConfirm
		}
		a := StaffAction{Platform: platform, ChatID: chatID, Time: c.At, Staff: c.By, Action: action, PhotoHash: c.PhotoHash, Class: c.Class}
		return logAction(tx, a, func(s *summaryRec) {
			if s.PhotoHash == c.PhotoHash {
				s.Disease, s.Corrected, s.NotLeaf, s.OtherCrop = c.Class, true, false, false
			}
			addDisease(s, c.Class)
		})
	})
}

// GetCorrection returns the staff's correction of a photo, or ErrNotFound.
func (s *Store) GetCorrection(ctx context.Context, photoHash string) (Correction, error) {
	if err := ctx.Err(); err != nil {
		return Correction{}, err
	}
	if err := checkID("photo hash", photoHash); err != nil {
		return Correction{}, err
	}
	var rec correctionRec
	err := s.view(ctx, "get correction", func(tx Tx) error {
		return getJSON(tx, bucketCorrections, []byte(photoHash), &rec, "correction of "+photoHash)
	})
	if err != nil {
		return Correction{}, err
	}
	return rec.correction(photoHash), nil
}

// Corrections returns every correction, by photo hash.
func (s *Store) Corrections(ctx context.Context) ([]Correction, error) {
	var out []Correction
	err := s.view(ctx, "corrections", func(tx Tx) error {
		b, err := bucket(tx, bucketCorrections)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var rec correctionRec
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode correction of %s: %w", k, err)
			}
			out = append(out, rec.correction(string(k)))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
