package bot

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/cropshield/cropshield/store"
)

// maxAlbumImages is Telegram's limit of photos in one media group.
const maxAlbumImages = 10

// handleAlbum diagnoses the photos of an album together and answers once: the verdict averages
// the leaves' probabilities, and the overlays of the leaves come with it.
func (h *Handler) handleAlbum(ctx context.Context, t *turn) {
	var hashes []string
	var analyses []store.Analysis
	var firstErr error
	leftOut := 0
	for _, p := range t.msg.Album {
		hash, a, err := h.photoAnalysis(ctx, t, p)
		if err != nil {
			t.log.Info("album photo not analysed", "err", err)
			leftOut++
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		hashes = append(hashes, hash)
		analyses = append(analyses, a)
	}
	if len(analyses) == 0 {
		h.photoError(ctx, t, firstErr)
		return
	}
	t.rec.PhotoHash, t.rec.Album, t.recChanged = hashes[0], hashes, true
	combined, leaves := combine(analyses)
	leftOut += len(analyses) - leaves
	caption, details, kind := h.diagnosisText(t.lang, combined)
	head := h.loc.TN(t.lang, "album.header", len(t.msg.Album))
	if leftOut > 0 {
		head += " " + h.loc.TN(t.lang, "album.left_out", leftOut)
	}
	r := Reply{Caption: head + "\n\n" + caption, Text: details, Kind: kind}
	for _, a := range analyses {
		if !a.Rejected && len(a.Overlay) > 0 && len(r.Images) < maxAlbumImages {
			r.Images = append(r.Images, a.Overlay)
		}
	}
	if len(r.Images) == 0 {
		r = Reply{Text: strings.TrimSpace(head + "\n\n" + r.FullText()), Kind: kind}
	}
	h.send(ctx, t, r)
}

// combine averages the top candidates of the analyses that are leaves (a class missing from one
// photo's top-3 counts as 0 there) and returns the best three. With no leaf at all the result is
// rejected as not a leaf.
func combine(analyses []store.Analysis) (store.Analysis, int) {
	sum := map[string]float64{}
	leaves := 0
	for _, a := range analyses {
		if a.Rejected {
			continue
		}
		leaves++
		for _, c := range a.Top {
			sum[c.Class] += c.Prob
		}
	}
	if leaves == 0 {
		return store.Analysis{Rejected: true, Top: analyses[0].Top}, 0
	}
	var top []store.Candidate
	for class, p := range sum {
		top = append(top, store.Candidate{Class: class, Prob: p / float64(leaves)})
	}
	slices.SortFunc(top, func(a, b store.Candidate) int {
		switch {
		case a.Prob > b.Prob:
			return -1
		case a.Prob < b.Prob:
			return 1
		}
		return strings.Compare(a.Class, b.Class)
	})
	return store.Analysis{Top: top[:min(3, len(top))]}, leaves
}
