package whatsapp

import (
	"context"
	"crypto/aes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/cropshield/cropshield/bot"
)

// retryWaiters hands events.MediaRetry, which arrive on whatsmeow's event goroutine, to the
// downloads waiting for them.
type retryWaiters struct {
	mu      sync.Mutex
	waiting map[types.MessageID]chan *events.MediaRetry
}

func (w *retryWaiters) add(id types.MessageID) chan *events.MediaRetry {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == nil {
		w.waiting = map[types.MessageID]chan *events.MediaRetry{}
	}
	ch := make(chan *events.MediaRetry, 1)
	w.waiting[id] = ch
	return ch
}

func (w *retryWaiters) remove(id types.MessageID, ch chan *events.MediaRetry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting[id] == ch {
		delete(w.waiting, id)
	}
}

// deliver passes the event to its waiter, if any; it never blocks.
func (w *retryWaiters) deliver(evt *events.MediaRetry) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.waiting[evt.MessageID]
	if !ok {
		return false
	}
	select {
	case ch <- evt:
	default:
	}
	return true
}

// media is a downloadable attachment: *waE2E.ImageMessage or *waE2E.DocumentMessage.
type media interface {
	whatsmeow.DownloadableMessage
	proto.Message
}

// withDirectPath returns a copy of m that downloads from a new direct path.
func withDirectPath(m media, path string) media {
	switch c := proto.Clone(m).(type) {
	case *waE2E.ImageMessage:
		c.DirectPath, c.URL = proto.String(path), nil
		return c
	case *waE2E.DocumentMessage:
		c.DirectPath, c.URL = proto.String(path), nil
		return c
	}
	return m
}

// expired tells the download errors that mean the file left WhatsApp's servers: the sender's
// phone can upload it again.
func expired(err error) bool {
	return errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith403) ||
		errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404) ||
		errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410)
}

// download fetches and decrypts an attachment. When WhatsApp no longer has the file it asks the
// sender's phone to upload it again (a media retry receipt) and downloads from the new path when
// the phone answers; without an answer within MediaRetryTimeout the photo is lost and the error
// makes the handler ask the farmer to send it again.
func (a *Adapter) download(ctx context.Context, info *types.MessageInfo, m media) ([]byte, error) {
	data, err := a.downloadOnce(ctx, info.ID, m)
	if err == nil || !expired(err) {
		return data, err
	}
	a.log.Info("photo no longer on WhatsApp's servers; asking the sender's phone to upload it again", "chat", info.Chat, "msg", info.ID, "err", err)
	ch := a.retries.add(info.ID)
	defer a.retries.remove(info.ID, ch)
	if err := a.client.SendMediaRetryReceipt(ctx, info, m.GetMediaKey()); err != nil {
		return nil, fmt.Errorf("%w: request a new upload: %w", ErrMediaExpired, err)
	}
	t := time.NewTimer(a.opts.MediaRetryTimeout)
	defer t.Stop()
	var evt *events.MediaRetry
	select {
	case evt = <-ch:
	case <-t.C:
		return nil, fmt.Errorf("%w: the sender's phone did not upload it again within %s", ErrMediaExpired, a.opts.MediaRetryTimeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for the sender's phone: %w", ErrMediaExpired, ctx.Err())
	}
	notif, err := whatsmeow.DecryptMediaRetryNotification(evt, m.GetMediaKey())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMediaExpired, err)
	}
	if notif.GetResult() != waMmsRetry.MediaRetryNotification_SUCCESS || notif.GetDirectPath() == "" {
		return nil, fmt.Errorf("%w: the phone answered %s", ErrMediaExpired, notif.GetResult())
	}
	return a.downloadOnce(ctx, info.ID, withDirectPath(m, notif.GetDirectPath()))
}

// downloadOnce downloads into memory, at most MaxPhotoBytes of photo: whatsmeow streams the
// body into a memFile that refuses to grow past that (the declared FileLength is the sender's
// word, not a bound), and the download stops there. A size or plaintext-hash mismatch is only a
// warning (WhatsApp's own hash is not always right, and the handler hashes the bytes itself).
func (a *Adapter) downloadOnce(ctx context.Context, id types.MessageID, m media) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := &memFile{limit: a.opts.MaxPhotoBytes + encryptionOverhead, over: cancel}
	err := a.client.DownloadToFile(ctx, m, f)
	if f.exceeded {
		var declared uint64
		if l, ok := m.(interface{ GetFileLength() uint64 }); ok {
			declared = l.GetFileLength()
		}
		a.log.Warn("photo download stopped at the size limit", "msg", id, "declared_bytes", declared, "limit", a.opts.MaxPhotoBytes)
		return nil, bot.PhotoTooLarge(a.opts.MaxPhotoBytes+1, a.opts.MaxPhotoBytes)
	}
	if err != nil && len(f.buf) > 0 && (errors.Is(err, whatsmeow.ErrInvalidMediaSHA256) || errors.Is(err, whatsmeow.ErrFileLengthMismatch)) {
		a.log.Warn("downloaded photo does not match WhatsApp's hash or length; using it", "msg", id, "err", err)
		return f.buf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("whatsapp download: %w", err)
	}
	return f.buf, nil
}

// encryptionOverhead is what WhatsApp's encryption adds to a file: up to a block of padding and
// the 10-byte MAC.
const encryptionOverhead = aes.BlockSize + 10

// memFile is a whatsmeow.File in memory that never holds more than limit bytes: a write past
// the limit fails, and over is called (it cancels the download, so that whatsmeow neither
// retries nor tries another host).
type memFile struct {
	buf      []byte
	pos      int64
	limit    int64
	exceeded bool
	over     func()
}

var _ whatsmeow.File = (*memFile)(nil)

// grow makes the file at least n bytes long (zeros), within the limit.
func (f *memFile) grow(n int64) error {
	if n > f.limit {
		if !f.exceeded {
			f.exceeded = true
			f.over()
		}
		return errFileLimit
	}
	if n <= int64(len(f.buf)) {
		return nil
	}
	if n > int64(cap(f.buf)) {
		c := min(max(2*int64(cap(f.buf)), n, 64<<10), f.limit)
		buf := make([]byte, len(f.buf), c)
		copy(buf, f.buf)
		f.buf = buf
	}
	f.buf = f.buf[:n]
	return nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("memFile: negative offset %d", off)
	}
	if err := f.grow(off + int64(len(p))); err != nil {
		return 0, err
	}
	return copy(f.buf[off:], p), nil
}

func (f *memFile) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("memFile: negative offset %d", off)
	}
	if off >= int64(len(f.buf)) {
		return 0, io.EOF
	}
	n := copy(p, f.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += int64(len(f.buf))
	default:
		return 0, fmt.Errorf("memFile: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("memFile: negative position %d", offset)
	}
	f.pos = offset
	return offset, nil
}

func (f *memFile) Truncate(size int64) error {
	if size < 0 {
		return fmt.Errorf("memFile: negative size %d", size)
	}
	if size <= int64(len(f.buf)) {
		f.buf = f.buf[:size]
		return nil
	}
	return f.grow(size)
}

func (f *memFile) Stat() (os.FileInfo, error) { return memFileInfo(len(f.buf)), nil }

// memFileInfo is a memFile's size as an os.FileInfo.
type memFileInfo int64

func (s memFileInfo) Name() string       { return "whatsapp-download" }
func (s memFileInfo) Size() int64        { return int64(s) }
func (s memFileInfo) Mode() os.FileMode  { return 0o600 }
func (s memFileInfo) ModTime() time.Time { return time.Time{} }
func (s memFileInfo) IsDir() bool        { return false }
func (s memFileInfo) Sys() any           { return nil }
