package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func assertAnalysis(t *testing.T, got, want Analysis) {
	t.Helper()
	if got.PhotoHash != want.PhotoHash || got.ModelVersion != want.ModelVersion ||
		got.InferenceMS != want.InferenceMS || got.NotLeaf != want.NotLeaf || got.Rejected != want.Rejected || !got.CreatedAt.Equal(want.CreatedAt) ||
		got.UnknownCrop != want.UnknownCrop || got.OtherCrop != want.OtherCrop ||
		!reflect.DeepEqual(got.Top, want.Top) || !bytes.Equal(got.Overlay, want.Overlay) {
		t.Errorf("analysis = %+v (overlay %d bytes), want %+v (overlay %d bytes)",
			withoutOverlay(got), len(got.Overlay), withoutOverlay(want), len(want.Overlay))
	}
}

func withoutOverlay(a Analysis) Analysis {
	a.Overlay = nil
	return a
}

func TestAnalysisRoundTrip(t *testing.T) {
	paris := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name string
		a    Analysis
	}{
		{"full", Analysis{
			PhotoHash: "h1", ModelVersion: "v1",
			Top:         []Candidate{{"Tomato___Late_blight", 0.9}, {"Tomato___healthy", 0.1}},
			Overlay:     []byte{0xff, 0xd8, 0xff, 0xd9},
			InferenceMS: 12.25, CreatedAt: testTime,
		}},
		{"no overlay", Analysis{
			PhotoHash: "h2", ModelVersion: "v1",
			Top: []Candidate{{"Potato___healthy", 1}}, CreatedAt: testTime,
		}},
		{"no candidates", Analysis{PhotoHash: "h3", ModelVersion: "v1", Top: []Candidate{}}},
		{"rejected as not a leaf", Analysis{
			PhotoHash: "h5", ModelVersion: "v1", Top: []Candidate{{"apple__scab", 0.3}},
			NotLeaf: 0.97, Rejected: true, CreatedAt: testTime,
		}},
		{"leaf of a crop the model does not know", Analysis{
			PhotoHash: "h6", ModelVersion: "v1", Top: []Candidate{{"tomato__healthy", 0.6}},
			NotLeaf: 0.1, UnknownCrop: 0.93, OtherCrop: true, CreatedAt: testTime,
		}},
		{"known crop with its score", Analysis{
			PhotoHash: "h7", ModelVersion: "v1", Top: []Candidate{{"tomato__healthy", 0.6}},
			UnknownCrop: 0.2, CreatedAt: testTime,
		}},
		{"local time zone", Analysis{
			PhotoHash: "h4", ModelVersion: "v1", Top: []Candidate{}, CreatedAt: testTime.In(paris),
		}},
	}
	s := newTestStore(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.PutAnalysis(t.Context(), tt.a, nil, ""); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetAnalysis(t.Context(), tt.a.PhotoHash, tt.a.ModelVersion)
			if err != nil {
				t.Fatal(err)
			}
			assertAnalysis(t, got, tt.a)
			stored, err := s.StoredAnalysis(t.Context(), tt.a.PhotoHash)
			if err != nil {
				t.Fatal(err)
			}
			assertAnalysis(t, stored, withoutOverlay(tt.a))
		})
	}
	if n, err := s.CountAnalyses(t.Context()); err != nil || n != len(tests) {
		t.Errorf("CountAnalyses = %d, %v; want %d", n, err, len(tests))
	}
}

func TestAnalysisReplaceRemovesOverlay(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	a := Analysis{PhotoHash: "h", ModelVersion: "v1", Overlay: []byte("jpeg")}
	if err := s.PutAnalysis(ctx, a, nil, ""); err != nil {
		t.Fatal(err)
	}
	a.Overlay = nil
	if err := s.PutAnalysis(ctx, a, nil, ""); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAnalysis(ctx, "h", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Overlay != nil {
		t.Errorf("overlay = %q after replacing with none", got.Overlay)
	}
	if n, err := s.CountAnalyses(ctx); err != nil || n != 1 {
		t.Errorf("CountAnalyses = %d, %v; want 1", n, err)
	}
}

func TestAnalysisModelVersion(t *testing.T) {
	tests := []struct {
		name    string
		puts    []string // model versions put in order
		get     string
		wantErr error
	}{
		{"same version", []string{"v1"}, "v1", nil},
		{"put v1 get v2", []string{"v1"}, "v2", ErrNotFound},
		{"put v1 then v2, get v1", []string{"v1", "v2"}, "v1", ErrNotFound},
		{"put v1 then v2, get v2", []string{"v1", "v2"}, "v2", nil},
		{"nothing stored", nil, "v1", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, "")
			for i, v := range tt.puts {
				a := Analysis{PhotoHash: "h", ModelVersion: v, Top: []Candidate{{v, float64(i)}}}
				if err := s.PutAnalysis(t.Context(), a, nil, ""); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.GetAnalysis(t.Context(), "h", tt.get)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetAnalysis(%s) error = %v, want %v", tt.get, err, tt.wantErr)
			}
			if err == nil && got.ModelVersion != tt.get {
				t.Errorf("ModelVersion = %q, want %q", got.ModelVersion, tt.get)
			}
		})
	}
}

func TestPhoto(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	if _, _, err := s.GetPhoto(ctx, "h"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetPhoto of a missing photo: %v, want ErrNotFound", err)
	}
	tests := []struct {
		name     string
		data     []byte
		mime     string
		wantData []byte
		wantMIME string
	}{
		{"first copy", []byte("first"), "image/jpeg", []byte("first"), "image/jpeg"},
		{"second copy is ignored", []byte("second"), "image/png", []byte("first"), "image/jpeg"},
		{"an analysis without photo keeps it", nil, "", []byte("first"), "image/jpeg"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			version := fmt.Sprintf("v%d", i)
			if err := s.PutAnalysis(ctx, Analysis{PhotoHash: "h", ModelVersion: version}, tt.data, tt.mime); err != nil {
				t.Fatal(err)
			}
			data, mime, err := s.GetPhoto(ctx, "h")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, tt.wantData) || mime != tt.wantMIME {
				t.Errorf("GetPhoto = %q, %q; want %q, %q", data, mime, tt.wantData, tt.wantMIME)
			}
			if _, err := s.GetAnalysis(ctx, "h", version); err != nil {
				t.Errorf("the analysis stored with the photo: %v", err)
			}
		})
	}
}

func TestContentID(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	puts := []struct{ platform, id, hash string }{
		{"telegram", "AQAD1", "h1"},
		{"whatsapp", "AQAD1", "h2"}, // same id on another platform is another key
		{"telegram", "AQAD2", "h3"},
		{"telegram", "AQAD2", "h4"}, // a later mapping replaces
	}
	for _, p := range puts {
		if err := s.PutContentID(ctx, p.platform, p.id, p.hash); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		platform, id string
		want         string
		wantErr      error
	}{
		{"telegram", "AQAD1", "h1", nil},
		{"whatsapp", "AQAD1", "h2", nil},
		{"telegram", "AQAD2", "h4", nil},
		{"whatsapp", "AQAD2", "", ErrNotFound},
		{"telegram", "AQAD", "", ErrNotFound},
		{"telegra", "m\x01AQAD1", "", ErrNotFound},
	}
	for _, tt := range tests {
		got, err := s.LookupContentID(ctx, tt.platform, tt.id)
		if got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("LookupContentID(%q, %q) = %q, %v; want %q, %v", tt.platform, tt.id, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestReturnedBytesAreCopies checks that slices returned by the store do not
// alias bbolt's memory map nor the caller's input: mutating them changes
// nothing stored, and they stay intact after later writes grow and remap
// the file.
func TestReturnedBytesAreCopies(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	photo := []byte("original photo bytes")
	overlay := []byte("original overlay bytes")
	if err := s.PutAnalysis(ctx, Analysis{PhotoHash: "h", ModelVersion: "v1", Overlay: overlay}, photo, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	wantPhoto, wantOverlay := bytes.Clone(photo), bytes.Clone(overlay)
	photo[0], overlay[0] = 'X', 'X' // the caller reuses its buffers

	gotPhoto, _, err := s.GetPhoto(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.GetAnalysis(ctx, "h", "v1")
	if err != nil {
		t.Fatal(err)
	}
	gotOverlay := a.Overlay
	if !bytes.Equal(gotPhoto, wantPhoto) || !bytes.Equal(gotOverlay, wantOverlay) {
		t.Fatalf("stored bytes changed with the caller's buffers: %q, %q", gotPhoto, gotOverlay)
	}

	// Mutate the returned slices and read again.
	for i := range gotPhoto {
		gotPhoto[i] = 0
	}
	for i := range gotOverlay {
		gotOverlay[i] = 0
	}
	again, _, err := s.GetPhoto(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	a, err = s.GetAnalysis(ctx, "h", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, wantPhoto) || !bytes.Equal(a.Overlay, wantOverlay) {
		t.Fatalf("mutating a returned slice changed the store: %q, %q", again, a.Overlay)
	}

	// Grow the file well past its initial mapping so bbolt remaps it; slices
	// aliasing the old map would now fault or read garbage.
	big := bytes.Repeat([]byte{7}, 8<<20)
	if err := s.PutAnalysis(ctx, Analysis{PhotoHash: "big", ModelVersion: "v1"}, big, "image/jpeg"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, wantPhoto) || !bytes.Equal(a.Overlay, wantOverlay) {
		t.Fatalf("returned slices changed after a remap: %q, %q", again, a.Overlay)
	}
}

// TestAnalysisOldRecordDecodes: records written before a field existed read as its zero value,
// and zero values are not written (old readers and old records stay compatible).
func TestAnalysisOldRecordDecodes(t *testing.T) {
	s := newTestStore(t, "")
	ctx := t.Context()
	old := `{"model_version":"v1","top":[{"class":"apple__scab","prob":0.8}],"inference_ms":3,"created_at":"2024-06-01T10:00:00Z"}`
	if err := s.eng.update(context.Background(), func(tx Tx) error {
		b, err := bucket(tx, bucketAnalyses)
		if err != nil {
			return err
		}
		return b.Put([]byte("old"), []byte(old))
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAnalysis(ctx, "old", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.OtherCrop || got.UnknownCrop != 0 || got.Rejected || got.NotLeaf != 0 || len(got.Top) != 1 || got.Top[0].Prob != 0.8 {
		t.Errorf("old record = %+v", got)
	}
	if err := s.PutAnalysis(ctx, Analysis{PhotoHash: "new", ModelVersion: "v1", Top: []Candidate{}}, nil, ""); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := s.eng.view(context.Background(), func(tx Tx) error {
		raw = bytes.Clone(tx.Bucket([]byte(bucketAnalyses)).Get([]byte("new")))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"unknown_crop", "other_crop", "not_leaf", "rejected"} {
		if bytes.Contains(raw, []byte(key)) {
			t.Errorf("record %s holds the zero %s", raw, key)
		}
	}
}
