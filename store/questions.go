package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// bucketCropQuestions: platform NUL chat id → cropQuestionRec (JSON), the chat's open question.
const bucketCropQuestions = "crop_questions"

// CropQuestion is the bot's open question "which crop is this?" about a photo in a chat. A chat
// has at most one: asking about a newer photo replaces it. It is kept in the database so that an
// answer after a restart (a tapped button, a number) still finds the photo. About a leaf the
// model judged an unknown crop, the last choice is "another crop" (Crops holds "other",
// locales.OtherCrop).
type CropQuestion struct {
	Platform, ChatID string
	PhotoHash        string
	MessageID        string   // the photo's platform message id, quoted by the answer
	SenderID         string   // who sent the photo: in a group, only they answer
	Crops            []string // the crop ids offered, in the order shown (1, 2, ...); "other": "another crop"
	Lang             string
	Asked            time.Time
}

type cropQuestionRec struct {
	PhotoHash string    `json:"photo_hash"`
	MessageID string    `json:"message_id,omitempty"`
	SenderID  string    `json:"sender_id,omitempty"`
	Crops     []string  `json:"crops"`
	Lang      string    `json:"lang,omitempty"`
	Asked     time.Time `json:"asked"`
}

// PutCropQuestion stores q as its chat's open question, replacing any earlier one.
func (s *Store) PutCropQuestion(ctx context.Context, q CropQuestion) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", q.Platform, "chat id", q.ChatID); err != nil {
		return err
	}
	if err := checkID("photo hash", q.PhotoHash); err != nil {
		return err
	}
	if len(q.Crops) == 0 {
		return fmt.Errorf("%w: a crop question without crops", ErrInvalid)
	}
	rec := cropQuestionRec{PhotoHash: q.PhotoHash, MessageID: q.MessageID, SenderID: q.SenderID, Crops: q.Crops, Lang: q.Lang, Asked: utc(q.Asked)}
	return s.update(ctx, "put crop question", func(tx Tx) error {
		b, err := bucket(tx, bucketCropQuestions)
		if err != nil {
			return err
		}
		return putJSON(b, compositeKey(q.Platform, q.ChatID), rec)
	})
}

// GetCropQuestion returns a chat's open question, or ErrNotFound: also when it was asked before
// notBefore (expired; it is left for DeleteCropQuestion or the next PutCropQuestion).
func (s *Store) GetCropQuestion(ctx context.Context, platform, chatID string, notBefore time.Time) (CropQuestion, error) {
	if err := ctx.Err(); err != nil {
		return CropQuestion{}, err
	}
	if err := checkIDs("platform", platform, "chat id", chatID); err != nil {
		return CropQuestion{}, err
	}
	var rec cropQuestionRec
	err := s.view(ctx, "get crop question", func(tx Tx) error {
		return getJSON(tx, bucketCropQuestions, compositeKey(platform, chatID), &rec, "crop question in chat "+chatID+" on "+platform)
	})
	if err != nil {
		return CropQuestion{}, err
	}
	if rec.Asked.Before(notBefore) {
		return CropQuestion{}, fmt.Errorf("%w: crop question in chat %s on %s expired (asked %s)", ErrNotFound, chatID, platform, rec.Asked.Format(time.RFC3339))
	}
	return CropQuestion{Platform: platform, ChatID: chatID, PhotoHash: rec.PhotoHash, MessageID: rec.MessageID,
		SenderID: rec.SenderID, Crops: rec.Crops, Lang: rec.Lang, Asked: rec.Asked}, nil
}

// DeleteCropQuestion removes a chat's open question if it is about photoHash (answered); a
// question about another photo (asked since) stays. Deleting what is not there is no error.
func (s *Store) DeleteCropQuestion(ctx context.Context, platform, chatID, photoHash string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkIDs("platform", platform, "chat id", chatID); err != nil {
		return err
	}
	return s.update(ctx, "delete crop question", func(tx Tx) error {
		return deleteCropQuestionIf(tx, compositeKey(platform, chatID), func(q cropQuestionRec) bool { return q.PhotoHash == photoHash })
	})
}

// deleteCropQuestionIf removes chatKey's open crop question if there is one and match says so.
func deleteCropQuestionIf(tx Tx, chatKey []byte, match func(cropQuestionRec) bool) error {
	b, err := bucket(tx, bucketCropQuestions)
	if err != nil {
		return err
	}
	v := b.Get(chatKey)
	if v == nil {
		return nil
	}
	var q cropQuestionRec
	if err := json.Unmarshal(v, &q); err != nil {
		return fmt.Errorf("decode crop question: %w", err)
	}
	if !match(q) {
		return nil
	}
	return b.Delete(chatKey)
}
