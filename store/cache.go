package store

import (
	"context"
	"fmt"
)

// The analysis cache: each photo's analysis (bucketAnalyses) and heat-map overlay
// (bucketOverlays), by photo hash. Clearing it removes only those: photos, the content-id index,
// conversations, summaries, statistics and staff corrections stay, and a photo seen again is
// analysed again.

// CacheStats is the analysis cache's size.
type CacheStats struct {
	Analyses int   // stored analyses (one per photo)
	Overlays int   // stored heat-map overlays
	Bytes    int64 // bytes of the database's pages they use
}

// CacheStats returns the analysis cache's size, from the buckets' page statistics (no record is
// read).
func (s *Store) CacheStats(ctx context.Context) (CacheStats, error) {
	if err := ctx.Err(); err != nil {
		return CacheStats{}, err
	}
	var cs CacheStats
	err := s.view(ctx, "cache stats", func(tx Tx) error {
		var err error
		cs, err = cacheStats(tx)
		return err
	})
	return cs, err
}

func cacheStats(tx Tx) (CacheStats, error) {
	ab, err := bucket(tx, bucketAnalyses)
	if err != nil {
		return CacheStats{}, err
	}
	ob, err := bucket(tx, bucketOverlays)
	if err != nil {
		return CacheStats{}, err
	}
	as, os := ab.Stats(), ob.Stats()
	return CacheStats{Analyses: as.KeyN, Overlays: os.KeyN,
		Bytes: as.Bytes + os.Bytes}, nil
}

// ClearCache removes every stored analysis and overlay in one transaction and returns what it
// removed. Nothing else is touched.
func (s *Store) ClearCache(ctx context.Context) (CacheStats, error) {
	if err := ctx.Err(); err != nil {
		return CacheStats{}, err
	}
	var removed CacheStats
	err := s.update(ctx, "clear cache", func(tx Tx) error {
		var err error
		if removed, err = cacheStats(tx); err != nil {
			return err
		}
		for _, name := range []string{bucketAnalyses, bucketOverlays} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return fmt.Errorf("delete %s: %w", name, err)
			}
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return CacheStats{}, err
	}
	return removed, nil
}

// HasPhoto reports whether a photo's bytes are stored, without reading them.
func (s *Store) HasPhoto(ctx context.Context, photoHash string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := checkID("photo hash", photoHash); err != nil {
		return false, err
	}
	var ok bool
	err := s.view(ctx, "has photo", func(tx Tx) error {
		pb, err := bucket(tx, bucketPhotos)
		if err != nil {
			return err
		}
		ok = pb.Get([]byte(photoHash)) != nil
		return nil
	})
	return ok, err
}
