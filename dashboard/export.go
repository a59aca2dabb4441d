package dashboard

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"golang.org/x/image/webp"

	"github.com/cropshield/cropshield/store"
)

// DatasetFolder is the folder of the dataset export: one folder per class id inside, like the
// shared datasets' field-dev/, so models/train can read it ($CROPSHIELD_DATASETS).
const DatasetFolder = "staff-labels"

var classRegexp = regexp.MustCompile(`^[A-Za-z0-9_.,()-]{1,100}$`)

type exportView struct {
	Corrections int
	Confirmed   int
	Corrected   int
}

func (s *Server) exportPage(w http.ResponseWriter, r *http.Request, sess *session) {
	cs, err := s.st.Corrections(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ev := exportView{Corrections: len(cs)}
	for _, c := range cs {
		if c.Confirmed {
			ev.Confirmed++
		} else {
			ev.Corrected++
		}
	}
	s.render(w, r, http.StatusOK, "export", view{Title: "Export", Nav: "export", Session: sess, Page: ev})
}

// exportDataset streams a zip: staff-labels/CLASS/HASH.jpg (or .png) for every confirmed or
// corrected photo, and staff-labels.csv with who decided what and when. WebP photos are
// re-encoded as PNG, which the training scripts read. Each photo is read in its own short
// transaction.
func (s *Server) exportDataset(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	cs, err := s.st.Corrections(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slices.SortFunc(cs, func(a, b store.Correction) int {
		return cmp.Or(cmp.Compare(a.Class, b.Class), cmp.Compare(a.PhotoHash, b.PhotoHash))
	})
	now := s.opts.Now().UTC()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="cropshield-dataset-`+now.Format("20060102-1504")+`.zip"`)
	zw := zip.NewWriter(w)
	var manifest bytes.Buffer
	mw := csv.NewWriter(&manifest)
	_ = mw.Write([]string{"file", "class", "confirmed", "model_class", "model_version", "by", "at", "photo_sha256"})
	n := 0
	for _, c := range cs {
		if !classRegexp.MatchString(c.Class) {
			s.log.Warn("dataset export: class id not usable as a folder name", "class", c.Class)
			continue
		}
		data, mime, err := s.st.GetPhoto(ctx, c.PhotoHash)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			s.abort(r, "dataset export", err)
		}
		ext := ".jpg"
		switch mime {
		case "image/png":
			ext = ".png"
		case "image/webp":
			if data, err = webpToPNG(data); err != nil {
				s.log.Warn("dataset export: cannot convert a WebP photo", "photo", c.PhotoHash, "err", err)
				continue
			}
			ext = ".png"
		}
		name := DatasetFolder + "/" + c.Class + "/" + c.PhotoHash + ext
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: c.At})
		if err != nil {
			s.abort(r, "dataset export", err)
		}
		if _, err := f.Write(data); err != nil {
			s.abort(r, "dataset export", err)
		}
		_ = mw.Write([]string{name, c.Class, strconv.FormatBool(c.Confirmed), c.ModelClass, c.ModelVersion, c.By,
			c.At.UTC().Format(time.RFC3339), c.PhotoHash})
		n++
	}
	mw.Flush()
	f, err := zw.CreateHeader(&zip.FileHeader{Name: DatasetFolder + ".csv", Method: zip.Deflate, Modified: now})
	if err == nil {
		_, err = f.Write(manifest.Bytes())
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		s.abort(r, "dataset export", err)
	}
	s.log.Info("dashboard: dataset exported", "staff", sess.name, "photos", n)
}

func webpToPNG(data []byte) ([]byte, error) {
	img, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// abort ends a streamed download that failed midway: the client sees a broken transfer rather
// than a file that looks complete.
func (s *Server) abort(r *http.Request, what string, err error) {
	if !errors.Is(err, context.Canceled) {
		s.log.Error("dashboard: "+what+" failed", "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// csvCell defuses spreadsheet formulas: a cell starting with = + - @ or a control character is
// prefixed with a quote.
func csvCell(v string) string {
	if v != "" && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r') {
		return "'" + v
	}
	return v
}

func writeRow(cw *csv.Writer, cells ...string) error {
	for i, c := range cells {
		cells[i] = csvCell(c)
	}
	return cw.Write(cells)
}

func csvHeaders(w http.ResponseWriter, name string, now time.Time) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="cropshield-`+name+`-`+now.UTC().Format("20060102-1504")+`.csv"`)
}

// exportConversations streams one row per conversation matching the list's filters, from the
// summaries.
func (s *Server) exportConversations(w http.ResponseWriter, r *http.Request, sess *session) {
	f, _, _ := filterFromQuery(r.URL.Query())
	csvHeaders(w, "conversations", s.opts.Now())
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"platform", "chat_id", "kind", "title", "name", "sender_id", "language", "first_activity",
		"last_activity", "messages", "photos", "last_photo_sha256", "last_class", "last_probability", "corrected",
		"low_confidence", "needs_attention", "resolved", "resolved_by", "last_text"})
	n := 0
	err := s.st.EachConversation(r.Context(), f, func(c store.Summary) error {
		n++
		return writeRow(cw, c.Platform, c.ChatID, c.Kind, c.Title, c.Name, c.SenderID, c.Language,
			c.First.Format(time.RFC3339), c.Last.Format(time.RFC3339), strconv.Itoa(c.Messages), strconv.Itoa(c.Photos),
			c.PhotoHash, c.Disease, strconv.FormatFloat(c.Prob, 'f', 4, 64), strconv.FormatBool(c.Corrected),
			strconv.FormatBool(c.LowConfidence), strconv.FormatBool(c.NeedsAttention), strconv.FormatBool(c.Resolved),
			c.ResolvedBy, c.LastText)
	})
	if cw.Flush(); err == nil {
		err = cw.Error()
	}
	if err != nil {
		s.abort(r, "conversations export", err)
	}
	s.log.Info("dashboard: conversations exported", "staff", sess.name, "conversations", n)
}

// exportMessages streams every message of the conversations matching the list's filters, one
// row per message with its photo's model class and the staff's class, reading each chat's log in
// short transactions of 500 records.
func (s *Server) exportMessages(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	f, _, _ := filterFromQuery(r.URL.Query())
	csvHeaders(w, "messages", s.opts.Now())
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"platform", "chat_id", "seq", "time", "direction", "sender_id", "sender_name", "staff",
		"kind", "language", "text", "photo_sha256", "model_class", "model_probability", "staff_class", "error"})
	type verdict struct{ model, prob, staff string }
	seen := map[string]verdict{}
	verdictOf := func(hash string) (verdict, error) {
		if v, ok := seen[hash]; ok || hash == "" {
			return v, nil
		}
		var v verdict
		a, err := s.st.StoredAnalysis(ctx, hash)
		if err == nil && len(a.Top) > 0 {
			v.model, v.prob = a.Top[0].Class, strconv.FormatFloat(a.Top[0].Prob, 'f', 4, 64)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return v, err
		}
		c, err := s.st.GetCorrection(ctx, hash)
		if err == nil {
			v.staff = c.Class
		} else if !errors.Is(err, store.ErrNotFound) {
			return v, err
		}
		if len(seen) < 100_000 {
			seen[hash] = v
		}
		return v, nil
	}
	rows := 0
	err := s.st.EachConversation(ctx, f, func(c store.Summary) error {
		var after uint64
		for {
			recs, err := s.st.Messages(ctx, c.Platform, c.ChatID, after, 500)
			if err != nil {
				return err
			}
			for _, m := range recs {
				v, err := verdictOf(m.PhotoHash)
				if err != nil {
					return err
				}
				rows++
				if err := writeRow(cw, m.Platform, m.ChatID, strconv.FormatUint(m.Seq, 10), m.Time.Format(time.RFC3339),
					string(m.Direction), m.SenderID, m.SenderName, m.Staff, m.Kind, m.Lang, m.Text, m.PhotoHash,
					v.model, v.prob, v.staff, m.Error); err != nil {
					return err
				}
			}
			if len(recs) < 500 {
				return nil
			}
			after = recs[len(recs)-1].Seq
		}
	})
	if cw.Flush(); err == nil {
		err = cw.Error()
	}
	if err != nil {
		s.abort(r, "messages export", fmt.Errorf("after %d rows: %w", rows, err))
	}
	s.log.Info("dashboard: messages exported", "staff", sess.name, "rows", rows)
}
