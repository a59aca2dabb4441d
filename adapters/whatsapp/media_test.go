package whatsapp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/cbcutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/inference"
)

// encryptMedia encrypts plaintext as WhatsApp does for a file of the type: the body its media
// servers serve (AES-CBC, then the first 10 bytes of the HMAC), and the media key.
func encryptMedia(t testing.TB, plaintext []byte, typ whatsmeow.MediaType) (body, mediaKey []byte) {
	t.Helper()
	mediaKey = bytes.Repeat([]byte{5}, 32)
	keys := hkdfutil.SHA256(mediaKey, nil, []byte(typ), 112)
	iv, cipherKey, macKey := keys[:16], keys[16:48], keys[48:80]
	ciphertext, err := cbcutil.Encrypt(cipherKey, iv, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, macKey)
	mac.Write(iv)
	mac.Write(ciphertext)
	return append(ciphertext, mac.Sum(nil)[:10]...), mediaKey
}

// mediaServer is WhatsApp's media server on 127.0.0.1: it serves body in 32 KiB writes and
// reports how many bytes it got out before the client went away (-1 if it sent them all).
func mediaServer(t *testing.T, body []byte) (url string, sent <-chan int) {
	t.Helper()
	out := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rc := http.NewResponseController(w)
		for n := 0; n < len(body); {
			c := body[n:min(n+32<<10, len(body))]
			_, err := w.Write(c)
			if err == nil {
				err = rc.Flush()
			}
			if err != nil {
				out <- n
				return
			}
			n += len(c)
		}
		out <- -1
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("media server at %s", srv.URL)
	}
	return srv.URL, out
}

// servedPhoto is an image message whose file the media server serves, declaring fileLength.
func servedPhoto(url string, body, mediaKey, plaintext []byte, fileLength uint64) *waE2E.ImageMessage {
	enc, sum := sha256.Sum256(body), sha256.Sum256(plaintext)
	return &waE2E.ImageMessage{
		URL: proto.String(url + "/v/t62/photo"), DirectPath: proto.String("/v/t62/photo"), Mimetype: proto.String("image/jpeg"),
		FileSHA256: sum[:], FileEncSHA256: enc[:], FileLength: proto.Uint64(fileLength), MediaKey: mediaKey,
	}
}

// TestDownloadStopsAtTheSizeLimit: a crafted document declares a small length while its file is
// far larger than the photo limit. The download, through whatsmeow's own streaming code, stops
// once it passes the limit (the server sees the client go away long before its end) and the
// handler learns the photo is too large. A photo within the limit still downloads and decrypts
// through the same path, whatever length it declares.
func TestDownloadStopsAtTheSizeLimit(t *testing.T) {
	const limit = 1 << 20
	opts := testOptions()
	opts.MaxPhotoBytes = limit

	t.Run("oversized document", func(t *testing.T) {
		huge := bytes.Repeat([]byte("not a photo "), 64<<20/12) // 64 MB
		body, key := encryptMedia(t, huge, whatsmeow.MediaDocument)
		url, sent := mediaServer(t, body)
		h := newScripted(t)
		r := startRig(t, openTestStore(t, ""), h, opts)
		doc := servedPhoto(url, body, key, huge, 48_213) // "48 KB"
		r.client.emit(messageEvent("D1", farmerPN, farmerPN, types.EmptyJID, &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			URL: doc.URL, DirectPath: doc.DirectPath, Mimetype: doc.Mimetype, FileSHA256: doc.FileSHA256,
			FileEncSHA256: doc.FileEncSHA256, FileLength: doc.FileLength, MediaKey: doc.MediaKey, FileName: proto.String("leaf.jpg"),
		}}))
		c := h.next(t)
		var pe *inference.PhotoError
		if !errors.Is(c.fetchErr, inference.ErrTooLarge) || !errors.As(c.fetchErr, &pe) || pe.Limit.MaxBytes != limit {
			t.Fatalf("fetch: %d bytes, %v; want too large (limit %d)", len(c.photo), c.fetchErr, limit)
		}
		if n := <-sent; n < 0 {
			t.Errorf("the whole %d MB file was downloaded", len(body)>>20)
		} else {
			t.Logf("the media server got %d KB out of %d MB before the download stopped", n>>10, len(body)>>20)
		}
	})

	t.Run("within the limit", func(t *testing.T) {
		leaf := testJPEG(t, 320, 240, 4)
		body, key := encryptMedia(t, leaf, whatsmeow.MediaImage)
		url, sent := mediaServer(t, body)
		h := newScripted(t)
		r := startRig(t, openTestStore(t, ""), h, opts)
		r.client.emit(imageEvent("P1", farmerPN, farmerPN, types.EmptyJID, servedPhoto(url, body, key, leaf, 100)))
		c := h.next(t)
		if c.fetchErr != nil || !bytes.Equal(c.photo, leaf) {
			t.Fatalf("fetch: %d bytes (want %d), %v", len(c.photo), len(leaf), c.fetchErr)
		}
		if n := <-sent; n >= 0 {
			t.Errorf("the server saw the client leave after %d bytes", n)
		}
	})
}

// TestMemFile: the download buffer as whatsmeow uses it (write, read back, truncate), and its
// refusal to grow past the limit.
func TestMemFile(t *testing.T) {
	over := 0
	f := &memFile{limit: 10, over: func() { over++ }}
	if n, err := f.Write([]byte("abcdef")); n != 6 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("XY"), 1); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if n, err := f.ReadAt(got, 2); n != 4 || err != nil || string(got) != "Ydef" {
		t.Fatalf("ReadAt: %q, %d, %v", got, n, err)
	}
	if err := f.Truncate(3); err != nil || string(f.buf) != "aXY" {
		t.Fatalf("truncate: %q, %v", f.buf, err)
	}
	if info, _ := f.Stat(); info.Size() != 3 {
		t.Errorf("size %d", info.Size())
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil || b.String() != "aXY" {
		t.Fatalf("read: %q, %v", b.String(), err)
	}
	if _, err := f.Write(bytes.Repeat([]byte{1}, 8)); !errors.Is(err, errFileLimit) || over != 1 || !f.exceeded {
		t.Fatalf("write past the limit: %v, over called %d times", err, over)
	}
	if len(f.buf) > 10 || cap(f.buf) > 10 {
		t.Errorf("the buffer grew to %d (capacity %d) past the limit", len(f.buf), cap(f.buf))
	}
}
