package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"
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

// downloadOnce downloads; a size or plaintext-hash mismatch is only a warning (WhatsApp's own
// hash is not always right, and the handler hashes the bytes itself).
func (a *Adapter) downloadOnce(ctx context.Context, id types.MessageID, m media) ([]byte, error) {
	data, err := a.client.Download(ctx, m)
	if err != nil && len(data) > 0 && (errors.Is(err, whatsmeow.ErrInvalidMediaSHA256) || errors.Is(err, whatsmeow.ErrFileLengthMismatch)) {
		a.log.Warn("downloaded photo does not match WhatsApp's hash or length; using it", "msg", id, "err", err)
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("whatsapp download: %w", err)
	}
	return data, nil
}
