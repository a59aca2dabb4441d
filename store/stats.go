package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

const bucketDailyStats = "daily_stats" // day NUL platform NUL language → dayRec (JSON)

// countAnswer counts a bot reply to a photo (or an error reply) in its day's statistics, by
// platform and language (the chat's summary s gives them when r does not).
func countAnswer(tx Tx, s *summaryRec, r Record) error {
	switch r.Kind {
	case kindDiagnosis, kindUnsure, kindNotLeaf, kindUnknownCrop, kindError:
	default:
		return nil
	}
	db, err := bucket(tx, bucketDailyStats)
	if err != nil {
		return err
	}
	lang := cmpOr(r.Lang, s.Language)
	key := []byte(utc(r.Time).Format(time.DateOnly) + "\x00" + r.Platform + "\x00" + lang)
	var d dayRec
	if v := db.Get(key); v != nil {
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decode daily statistics: %w", err)
		}
	}
	switch r.Kind {
	case kindError:
		d.Errors++
	default:
		d.Answers++
		if r.CacheHit {
			d.CacheHits++
		}
	}
	switch r.Kind {
	case kindDiagnosis:
		d.Diagnoses++
		hash := cmpOr(r.PhotoHash, s.PhotoHash)
		if top, ok := modelTop(tx, hash, r.Crop); ok {
			if d.Classes == nil {
				d.Classes = map[string]int{}
			}
			d.Classes[top.Class]++
		}
	case kindUnsure:
		d.Unsure++
	case kindNotLeaf:
		d.NotLeaf++
	case kindUnknownCrop:
		d.UnknownCrop++
	}
	return putJSON(db, key, d)
}

// DayStats counts the bot's answers of one day (UTC) on one platform in one language.
type DayStats struct {
	Day                time.Time // midnight UTC
	Platform, Language string
	// Answers are the answers to photos (Diagnoses + Unsure + NotLeaf + UnknownCrop); CacheHits
	// of them came from the analysis cache. Errors are error replies (failed photos and others).
	Answers, Diagnoses, Unsure, NotLeaf, UnknownCrop, Errors, CacheHits int
	Classes                                                             map[string]int // top-1 of the confident diagnoses
}

type dayRec struct {
	Answers   int `json:"answers,omitempty"`
	Diagnoses int `json:"diagnoses,omitempty"`
	Unsure    int `json:"unsure,omitempty"`
	NotLeaf   int `json:"not_leaf,omitempty"`
	// UnknownCrop counts the answers to leaves of crops the model does not know.
	UnknownCrop int            `json:"unknown_crop,omitempty"`
	Errors      int            `json:"errors,omitempty"`
	CacheHits   int            `json:"cache_hits,omitempty"`
	Classes     map[string]int `json:"classes,omitempty"`
}

// Stats returns the daily statistics of the days from `from` to `to` (UTC dates, inclusive), by
// day, platform and language. It reads one small record per day, platform and language.
func (s *Store) Stats(ctx context.Context, from, to time.Time) ([]DayStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lo := []byte(utc(from).Format(time.DateOnly))
	hi := []byte(utc(to).Format(time.DateOnly) + "\x01")
	out := []DayStats{}
	err := s.view(ctx, "stats", func(tx Tx) error {
		b, err := bucket(tx, bucketDailyStats)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(lo); k != nil && bytes.Compare(k, hi) < 0; k, v = c.Next() {
			parts := strings.SplitN(string(k), "\x00", 3)
			if len(parts) != 3 {
				continue
			}
			day, err := time.Parse(time.DateOnly, parts[0])
			if err != nil {
				continue
			}
			var rec dayRec
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode daily statistics: %w", err)
			}
			out = append(out, DayStats{Day: day, Platform: parts[1], Language: parts[2], Answers: rec.Answers,
				Diagnoses: rec.Diagnoses, Unsure: rec.Unsure, NotLeaf: rec.NotLeaf, UnknownCrop: rec.UnknownCrop, Errors: rec.Errors,
				CacheHits: rec.CacheHits, Classes: rec.Classes})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
