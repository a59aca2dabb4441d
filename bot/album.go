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
// the probabilities of the leaves of crops the model knows, and their overlays come with it.
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
	// A stated crop applies to every photo of the album (no question is asked about an album): a
	// photo that clearly shows another crop is left out, like a photo that is not a leaf.
	crop := h.statedCrop(t)
	judged := analyses
	if crop != "" {
		t.rec.Crop = crop
		judged = nil
		var mismatch *cropOutcome
		for _, a := range analyses {
			o := withinCrop(a, crop)
			if o.mismatch {
				mismatch = cmp.Or(mismatch, &o)
				leftOut++
				continue
			}
			judged = append(judged, o.a)
		}
		if len(judged) == 0 {
			h.send(ctx, t, Reply{Kind: KindCropMismatch, Text: h.loc.T(t.lang, "crop.mismatch",
				"crop", h.loc.CropName(t.lang, crop), "other", h.loc.CropName(t.lang, mismatch.other.crop),
				"percent", h.loc.Percent(t.lang, mismatch.other.share))})
			return
		}
	}
	combined, used := combine(judged)
	leftOut += len(judged) - used
	caption, details, kind := h.diagnosisText(t.lang, combined)
	if crop != "" && !combined.Rejected {
		caption = h.loc.T(t.lang, "crop.stated", "crop", h.loc.CropName(t.lang, crop)) + "\n\n" + caption
	}
	head := h.loc.TN(t.lang, "album.header", len(t.msg.Album))
	if leftOut > 0 {
		head += " " + h.loc.TN(t.lang, "album.left_out", leftOut)
	}
	r := Reply{Caption: strings.TrimSpace(head + "\n\n" + caption), Text: details, Kind: kind}
	for _, a := range judged {
		if !a.Rejected && !a.OtherCrop && len(a.Overlay) > 0 && len(r.Images) < maxAlbumImages {
			r.Images = append(r.Images, a.Overlay)
		}
	}
	if len(r.Images) == 0 {
		r = Reply{Text: r.FullText(), Kind: kind} // the caption already starts with head
	}
	h.send(ctx, t, r)
}

// combine averages the top candidates of the analyses that are leaves of crops the model knows (a
// class missing from one photo's top-3 counts as 0 there) and returns the best three, and how
// many analyses the answer is about (the others are left out). Without such a leaf the result is
// a leaf of a crop the model does not know if there is one, else rejected as not a leaf.
func combine(analyses []store.Analysis) (store.Analysis, int) {
	sum := map[string]float64{}
	leaves, otherCrop := 0, 0
	for _, a := range analyses {
		switch {
		case a.Rejected:
			continue
		case a.OtherCrop:
			otherCrop++
			continue
		}
		leaves++
		for _, c := range a.Top {
			sum[c.Class] += c.Prob
		}
	}
	switch {
	case leaves == 0 && otherCrop > 0:
		return store.Analysis{OtherCrop: true, Top: analyses[0].Top}, otherCrop
	case leaves == 0:
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
