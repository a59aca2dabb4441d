package store

import (
	"errors"
	"testing"
	"time"
)

// TestClearCache (issue 16, item 20): clearing the cache removes every analysis and overlay and
// nothing else: photos, the content-id index, conversations, summaries, statistics and staff
// corrections stay; its size is reported before and after.
func TestClearCache(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	photo := []byte("\xff\xd8 photo bytes")
	for i := range 3 {
		photoTurn(t, s, "webchat", "w", testTime.Add(time.Duration(i)*time.Minute), hashOf(i), Candidate{"corn__common_rust", 0.9}, kindDiagnosis)
	}
	if err := s.PutAnalysis(ctx, Analysis{PhotoHash: hashOf(0), ModelVersion: "v1", Top: []Candidate{{"corn__common_rust", 0.9}},
		Overlay: []byte("\xff\xd8 overlay"), CreatedAt: testTime}, photo, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContentID(ctx, "telegram", "file-1", hashOf(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCorrection(ctx, Correction{PhotoHash: hashOf(1), Class: "corn__healthy", By: "alice", At: testTime}, "webchat", "w"); err != nil {
		t.Fatal(err)
	}
	before, err := s.CacheStats(ctx)
	if err != nil || before.Analyses != 3 || before.Overlays != 1 || before.Bytes <= 0 {
		t.Fatalf("cache stats before: %+v %v", before, err)
	}
	sumBefore := mustSummary(t, s, "webchat", "w")
	statsBefore, err := s.Stats(ctx, testTime, testTime)
	if err != nil {
		t.Fatal(err)
	}

	removed, err := s.ClearCache(ctx)
	if err != nil || removed != before {
		t.Fatalf("ClearCache: %+v %v, want %+v", removed, err, before)
	}
	if after, err := s.CacheStats(ctx); err != nil || after.Analyses != 0 || after.Overlays != 0 {
		t.Errorf("cache stats after: %+v %v", after, err)
	}
	if _, err := s.StoredAnalysis(ctx, hashOf(0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("an analysis after clearing: %v", err)
	}
	if _, err := s.Overlay(ctx, hashOf(0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("an overlay after clearing: %v", err)
	}
	// Everything else stays.
	if got, _, err := s.GetPhoto(ctx, hashOf(0)); err != nil || string(got) != string(photo) {
		t.Errorf("the photo after clearing: %q %v", got, err)
	}
	if ok, err := s.HasPhoto(ctx, hashOf(0)); err != nil || !ok {
		t.Errorf("HasPhoto after clearing: %v %v", ok, err)
	}
	if h, err := s.LookupContentID(ctx, "telegram", "file-1"); err != nil || h != hashOf(0) {
		t.Errorf("the content id after clearing: %q %v", h, err)
	}
	if c, err := s.GetCorrection(ctx, hashOf(1)); err != nil || c.Class != "corn__healthy" {
		t.Errorf("the correction after clearing: %+v %v", c, err)
	}
	if msgs, err := s.Messages(ctx, "webchat", "w", 0, 100); err != nil || len(msgs) != 6 {
		t.Errorf("the messages after clearing: %d %v", len(msgs), err)
	}
	if sum := mustSummary(t, s, "webchat", "w"); sum.Messages != sumBefore.Messages || sum.Disease != sumBefore.Disease || sum.Photos != sumBefore.Photos {
		t.Errorf("the summary after clearing: %+v, before %+v", sum, sumBefore)
	}
	if st, err := s.Stats(ctx, testTime, testTime); err != nil || len(st) != len(statsBefore) || st[0].Answers != statsBefore[0].Answers {
		t.Errorf("the statistics after clearing: %+v %v", st, err)
	}
	// The store works on: a new analysis goes in.
	if err := s.PutAnalysis(ctx, Analysis{PhotoHash: hashOf(0), ModelVersion: "v1", CreatedAt: testTime}, nil, ""); err != nil {
		t.Fatal(err)
	}
	if cs, _ := s.CacheStats(ctx); cs.Analyses != 1 {
		t.Errorf("after a new analysis: %+v", cs)
	}
}
