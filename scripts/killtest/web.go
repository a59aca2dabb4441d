package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// entry is a line of the web chat as its API returns it.
type entry struct {
	Seq  int64     `json:"seq"`
	From string    `json:"from"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// epoch is one run of the server: its number and when it was started. An answer read while the
// number did not change came from that process; its entries older than the start were restored
// from the store (GET /), the others were sent by that process.
type epoch struct {
	n     int
	start time.Time
}

// webMsg is one web chat message being sent, and what its client saw.
type webMsg struct {
	item     webItem
	clientID string
	client   *http.Client // its own cookie jar: its own chat
	sentAt   time.Time

	mu         sync.Mutex
	answeredAt time.Time         // first reply seen
	live       map[[2]int64]bool // replies sent by a process as its outbox showed them: epoch, seq
	attempts   int               // POSTs made
	ambiguous  int               // POSTs that failed after the request may have reached the server
	given      bool              // a POST was answered 200
	gaveUp     bool              // stopped without a 200 (a failure it must not retry)
	final      []entry           // the chat as a fresh process restores it from the store (the end)
	err        string
}

func newWebMsg(it webItem) (*webMsg, error) {
	c, err := newClient()
	if err != nil {
		return nil, err
	}
	var raw [12]byte
	_, _ = rand.Read(raw[:])
	return &webMsg{item: it, clientID: "kt-" + hex.EncodeToString(raw[:]), client: c}, nil
}

// newClient is a browser: its own cookie jar, so its own chat.
func newClient() (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &http.Client{Jar: jar, Timeout: 2 * time.Minute}, nil
}

// chatID is the web chat's id of this message's chat as the server logs it (a hash of the
// cookie, as adapters/webchat computes it), "" before the server set the cookie.
func (m *webMsg) chatID(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	for _, c := range m.client.Jar.Cookies(u) {
		if c.Name == "cropshield_chat" {
			sum := sha256.Sum256([]byte("cropshield-webchat:" + c.Value))
			return "web-" + hex.EncodeToString(sum[:8])
		}
	}
	return ""
}

func bots(es []entry) int {
	n := 0
	for _, e := range es {
		if e.From == "bot" {
			n++
		}
	}
	return n
}

// saw notes what an answer of the server showed: whether the message has a reply, and (if the
// answer came from one known process, from.n == to.n) which replies that process sent.
func (m *webMsg) saw(from, to epoch, es []entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if bots(es) > 0 && m.answeredAt.IsZero() {
		m.answeredAt = time.Now()
	}
	if from.n != to.n {
		return
	}
	for _, e := range es {
		if e.From == "bot" && !e.Time.Before(from.start) {
			if m.live == nil {
				m.live = map[[2]int64]bool{}
			}
			m.live[[2]int64{int64(from.n), e.Seq}] = true
		}
	}
}

// liveReplies counts the replies that processes sent to this chat.
func (m *webMsg) liveReplies() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.live)
}

// body is the message as the page posts it: multipart with "text" and/or a "photo" file, and
// the client's message id in idField (which the server may or may not honour).
func (m *webMsg) body(idField string) (*bytes.Buffer, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if idField != "" {
		if err := mw.WriteField(idField, m.clientID); err != nil {
			return nil, "", err
		}
	}
	if err := mw.WriteField("text", m.item.Text); err != nil {
		return nil, "", err
	}
	if m.item.Photo != nil {
		w, err := mw.CreateFormFile("photo", "leaf.jpg")
		if err != nil {
			return nil, "", err
		}
		if _, err := w.Write(m.item.Photo); err != nil {
			return nil, "", err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return &buf, mw.FormDataContentType(), nil
}

// errNotSent: the request surely never reached the server (no connection): safe to send again.
var errNotSent = errors.New("not sent")

// post sends the message once and returns the entries of the answer.
func (m *webMsg) post(ctx context.Context, base, idField string) (int, []entry, error) {
	body, ctype, err := m.body(idField)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/send?after=0", body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept-Language", "en")
	resp, err := m.client.Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &oe) && oe.Op == "dial" {
			return 0, nil, fmt.Errorf("%w: %w", errNotSent, err)
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, fmt.Errorf("HTTP %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var out struct {
		Entries []entry `json:"entries"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("answer: %w", err)
	}
	return resp.StatusCode, out.Entries, nil
}

// send posts until the server answers 200. A request that surely did not reach the server
// (connection refused, 503 while it starts or stops, 500 "not stored") is sent again. One that
// failed after reaching it (the server was killed meanwhile) is sent again, with the same
// client id, only if the server honours client ids (retrySame); otherwise the client stops and
// the end of the run tells whether the server had it.
func (m *webMsg) send(ctx context.Context, base, idField string, retrySame bool, epochs func() epoch) {
	m.mu.Lock()
	m.sentAt = time.Now()
	m.mu.Unlock()
	// As the page: GET / first, which gives the browser its chat cookie. (A POST without one gets
	// a new chat whose cookie is lost with the answer when the server dies meanwhile.)
	for m.chatID(base) == "" {
		if _, err := m.view(ctx, base); err != nil && ctx.Err() != nil {
			return
		}
		if m.chatID(base) == "" {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	for {
		m.mu.Lock()
		m.attempts++
		m.mu.Unlock()
		from := epochs()
		status, es, err := m.post(ctx, base, idField)
		switch {
		case err == nil:
			m.mu.Lock()
			m.given = true
			m.mu.Unlock()
			m.saw(from, epochs(), es)
			return
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNotSent) || status == http.StatusServiceUnavailable || status == http.StatusInternalServerError:
		case status != 0:
			m.mu.Lock()
			m.err, m.gaveUp = err.Error(), true
			m.mu.Unlock()
			return
		default:
			m.mu.Lock()
			m.ambiguous++
			m.err = err.Error()
			stop := !retrySame
			m.gaveUp = stop
			m.mu.Unlock()
			if stop {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// view reads the chat as the page would after a reload: GET / (which restores a chat the
// process does not hold from the store), then every entry.
func (m *webMsg) view(ctx context.Context, base string) ([]entry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return m.outbox(ctx, base)
}

// watch looks for the reply of a message whose POST gave no reply (killed meanwhile) until it
// comes or ctx ends.
func (m *webMsg) watch(ctx context.Context, base string, epochs func() epoch) {
	for {
		m.mu.Lock()
		answered := !m.answeredAt.IsZero()
		m.mu.Unlock()
		if answered {
			return
		}
		from := epochs()
		if es, err := m.view(ctx, base); err == nil {
			m.saw(from, epochs(), es)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// outbox reads the chat's entries as the process holds them (no restore from the store).
func (m *webMsg) outbox(ctx context.Context, base string) ([]entry, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/messages?after=0", nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("messages: HTTP %s", resp.Status)
	}
	var out struct {
		Entries []entry `json:"entries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.Entries, nil
}

// monitor reads every web chat's outbox again and again until ctx ends, so that a reply a
// process sends to a chat nobody waits on (a message handed in again after a restart and
// answered twice) is seen.
func monitor(ctx context.Context, base string, epochs func() epoch, web []*webMsg) {
	for ctx.Err() == nil {
		start := time.Now()
		for _, m := range web {
			m.mu.Lock()
			sent := !m.sentAt.IsZero()
			m.mu.Unlock()
			if !sent || m.chatID(base) == "" {
				continue
			}
			from := epochs()
			if es, err := m.outbox(ctx, base); err == nil {
				m.saw(from, epochs(), es)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second - time.Since(start)):
		}
	}
}

// probeClientID tells whether the web chat honours a client's message id: the same /help sent
// twice with one id must be answered once.
func probeClientID(ctx context.Context, base, idField string) (bool, error) {
	m, err := newWebMsg(webItem{Kind: "probe", Text: "/help"})
	if err != nil {
		return false, err
	}
	_, first, err := m.post(ctx, base, idField)
	if err != nil {
		return false, fmt.Errorf("web chat probe: %w", err)
	}
	if bots(first) != 1 {
		return false, fmt.Errorf("web chat probe: /help got %d replies, want 1: %+v", bots(first), first)
	}
	_, second, err := m.post(ctx, base, idField)
	if err != nil {
		return false, fmt.Errorf("web chat probe (again): %w", err)
	}
	return bots(second) == 1, nil // the first reply alone: the second post was the same message
}

// webClient sends its messages one after the other, each at its time.
func webClient(ctx context.Context, base, idField string, retrySame bool, epochs func() epoch, msgs []*webMsg, at []time.Time, wg *sync.WaitGroup) {
	for i, m := range msgs {
		if d := time.Until(at[i]); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		m.send(ctx, base, idField, retrySame, epochs)
		m.mu.Lock()
		answered := !m.answeredAt.IsZero()
		m.mu.Unlock()
		if !answered {
			wg.Go(func() { m.watch(ctx, base, epochs) })
		}
	}
}
