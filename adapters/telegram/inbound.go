package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/bot"
)

// imageMIME lists the document types handed over as photos.
var imageMIME = []string{"image/jpeg", "image/png", "image/webp"}

// update is one received update and its message. A tapped inline keyboard button (callback
// query) has cb set and msg made from it: its chat, its sender.
type update struct {
	id  int64
	msg *tgbotapi.Message
	cb  *tgbotapi.CallbackQuery
}

// callbackMessage is the message a callback query stands for: the chat of the message whose
// button was tapped, the user who tapped it. nil for a callback without its message (an inline
// message, or one too old for Telegram to include).
func callbackMessage(cb *tgbotapi.CallbackQuery) *tgbotapi.Message {
	if cb == nil || cb.Message == nil || cb.Message.Chat == nil || cb.From == nil {
		return nil
	}
	return &tgbotapi.Message{Chat: cb.Message.Chat, From: cb.From, Date: cb.Message.Date}
}

// isGroup tells group chats (basic and super) apart.
func isGroup(c *tgbotapi.Chat) bool {
	return c != nil && (c.Type == "group" || c.Type == "supergroup")
}

// imageOf returns the message's image: the photo sizes or an image document.
func imageOf(m *tgbotapi.Message) (sizes []tgbotapi.PhotoSize, doc *tgbotapi.Document) {
	if len(m.Photo) > 0 {
		return m.Photo, nil
	}
	if d := m.Document; d != nil && slices.Contains(imageMIME, strings.ToLower(d.MimeType)) {
		return nil, d
	}
	return nil, nil
}

func hasImage(m *tgbotapi.Message) bool {
	sizes, doc := imageOf(m)
	return sizes != nil || doc != nil
}

// wanted decides, from the message alone, whether an update is kept: everything in private
// chats; in groups, photos addressed to the bot (or all, if so configured), the photos of
// albums (decided as a whole when the album is complete), commands for this bot, texts replying
// to one of the bot's messages (the answer to "which crop?"), and the notice that the group moved
// to a new chat id. Channels, edits and other update kinds are not kept.
func (a *Adapter) wanted(m *tgbotapi.Message) bool {
	if m == nil || m.Chat == nil {
		return false
	}
	switch {
	case m.Chat.Type == "private":
		return true
	case !isGroup(m.Chat):
		return false
	case isMigration(m):
		return true
	case hasImage(m):
		return m.MediaGroupID != "" || a.opts.GroupPhotos == GroupPhotosAll || a.addressed(m)
	default:
		return a.commandForMe(m.Text) || (m.Text != "" && a.repliesToMe(m))
	}
}

// addressed tells whether a group photo is meant for the bot: a caption starting with /diagnose
// (for this bot), a caption mentioning @botname, or a reply to one of the bot's messages.
func (a *Adapter) addressed(m *tgbotapi.Message) bool {
	me := a.self.Load()
	if me == nil {
		return false
	}
	if c, ok := bot.ParseCommand(m.Caption); ok && c.Name == "diagnose" && a.commandForMe(m.Caption) {
		return true
	}
	if mentions(m.Caption, me.UserName) {
		return true
	}
	return a.repliesToMe(m)
}

// repliesToMe tells whether m replies to one of the bot's messages.
func (a *Adapter) repliesToMe(m *tgbotapi.Message) bool {
	me := a.self.Load()
	r := m.ReplyToMessage
	return me != nil && r != nil && r.From != nil && r.From.ID == me.ID
}

// commandForMe: a command without @ (which the bot sees only if privacy mode lets it) or with
// @ this bot's name.
func (a *Adapter) commandForMe(text string) bool {
	c, ok := bot.ParseCommand(text)
	if !ok {
		return false
	}
	if c.Bot == "" {
		return true
	}
	me := a.self.Load()
	return me != nil && strings.EqualFold(c.Bot, me.UserName)
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// mentions reports whether text holds @name as a whole word (Telegram usernames are
// case-insensitive).
func mentions(text, name string) bool {
	if name == "" {
		return false
	}
	lt, at := strings.ToLower(text), "@"+strings.ToLower(name)
	for i := 0; ; {
		j := strings.Index(lt[i:], at)
		if j < 0 {
			return false
		}
		end := i + j + len(at)
		if end == len(lt) || !isWordByte(lt[end]) {
			return true
		}
		i = end
	}
}

// choosePhoto picks the smallest size whose shorter side reaches minSide, else the largest.
func choosePhoto(sizes []tgbotapi.PhotoSize, minSide int) tgbotapi.PhotoSize {
	area := func(p tgbotapi.PhotoSize) int { return p.Width * p.Height }
	var best, largest *tgbotapi.PhotoSize
	for i := range sizes {
		p := &sizes[i]
		if largest == nil || area(*p) > area(*largest) {
			largest = p
		}
		if min(p.Width, p.Height) >= minSide && (best == nil || area(*p) < area(*best)) {
			best = p
		}
	}
	if best != nil {
		return *best
	}
	if largest != nil {
		return *largest
	}
	return tgbotapi.PhotoSize{}
}

// chatRef builds the handler's view of a chat.
func chatRef(c *tgbotapi.Chat) bot.ChatRef {
	r := bot.ChatRef{Platform: bot.Telegram, ID: strconv.FormatInt(c.ID, 10), Kind: bot.Private}
	if isGroup(c) {
		r.Kind, r.Title = bot.Group, c.Title
	}
	return r
}

// sender builds the handler's view of who wrote m. An anonymous group admin writes as the group
// itself (sender_chat = the chat) and is an admin by definition.
func sender(m *tgbotapi.Message) bot.Sender {
	if c := m.SenderChat; c != nil {
		return bot.Sender{ID: strconv.FormatInt(c.ID, 10), Name: c.Title, IsAdmin: m.Chat != nil && c.ID == m.Chat.ID}
	}
	u := m.From
	if u == nil {
		return bot.Sender{}
	}
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" {
		name = u.UserName
	}
	return bot.Sender{ID: strconv.FormatInt(u.ID, 10), Name: name, LangHint: u.LanguageCode}
}

// message translates one Telegram message (no album) into the handler's Message.
func (a *Adapter) message(m *tgbotapi.Message) bot.Message {
	text := m.Text
	if text == "" {
		text = m.Caption
	}
	return bot.Message{
		ID:     strconv.Itoa(m.MessageID),
		Chat:   chatRef(m.Chat),
		Sender: sender(m),
		Text:   text,
		Photo:  a.photo(m),
		Time:   time.Unix(int64(m.Date), 0),
	}
}

// photo is the message's image as the handler sees it, nil if it has none: its Ref is the file
// id, which FetchPhoto downloads.
func (a *Adapter) photo(m *tgbotapi.Message) *bot.Photo {
	sizes, doc := imageOf(m)
	var fileID, uniqueID, mime string
	var size int
	switch {
	case sizes != nil:
		p := choosePhoto(sizes, a.opts.MinPhotoSide)
		fileID, uniqueID, size, mime = p.FileID, p.FileUniqueID, p.FileSize, "image/jpeg"
	case doc != nil:
		fileID, uniqueID, size, mime = doc.FileID, doc.FileUniqueID, doc.FileSize, strings.ToLower(doc.MimeType)
	default:
		return nil
	}
	return &bot.Photo{ContentID: uniqueID, Size: int64(size), MIME: mime, Ref: fileID}
}

// download gets a file: getFile for its path, then the bytes from the file URL built from the
// configured endpoint (File.Link would ignore it), reading at most limit bytes (a larger file is
// bot.PhotoTooLarge).
func (a *Adapter) download(ctx context.Context, fileID string, limit int64) ([]byte, error) {
	tooLarge := func(size int64) error { return bot.PhotoTooLarge(size, limit) }
	resp, err := a.call(ctx, 0, "getFile", retryIdempotent, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
		return api.Request(tgbotapi.FileConfig{FileID: fileID})
	})
	if err != nil {
		if errors.Is(err, ErrFileTooBig) {
			return nil, tooLarge(max(limit+1, MaxDownloadBytes+1))
		}
		return nil, err
	}
	var f tgbotapi.File
	if err := decodeResult(resp, &f); err != nil {
		return nil, fmt.Errorf("%w: getFile: %w", ErrAPI, err)
	}
	if int64(f.FileSize) > limit {
		return nil, tooLarge(int64(f.FileSize))
	}
	if f.FilePath == "" {
		return nil, fmt.Errorf("%w: getFile returned no file path", ErrAPI)
	}
	var data []byte
	err = a.retry(ctx, "download", func(ctx context.Context) (bool, error) {
		var transient bool
		data, transient, err = a.fetchFile(ctx, f.FilePath, limit, tooLarge)
		return transient, err
	})
	if err != nil {
		return nil, err
	}
	a.log.Debug("telegram: photo downloaded", "bytes", len(data))
	return data, nil
}

// fetchFile downloads one file; transient tells a failure worth retrying.
func (a *Adapter) fetchFile(ctx context.Context, filePath string, limit int64, tooLarge func(int64) error) (data []byte, transient bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	u := a.opts.APIEndpoint + "/file/bot" + a.opts.Token + "/" + strings.TrimLeft(filePath, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("telegram download: %w", redact(err, a.opts.Token))
	}
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("telegram download: %w", redact(err, a.opts.Token))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, resp.StatusCode >= 500, fmt.Errorf("%w: download: HTTP %s", ErrAPI, resp.Status)
	}
	if resp.ContentLength > limit {
		return nil, false, tooLarge(resp.ContentLength)
	}
	data, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, true, fmt.Errorf("telegram download: %w", redact(err, a.opts.Token))
	}
	if int64(len(data)) > limit {
		return nil, false, tooLarge(int64(len(data)))
	}
	return data, false, nil
}

// retry runs fn until it succeeds, fails for good, or has failed Options.Retries times.
func (a *Adapter) retry(ctx context.Context, what string, fn func(context.Context) (transient bool, err error)) error {
	for failures := 0; ; failures++ {
		transient, err := fn(ctx)
		if err == nil || !transient || failures >= a.opts.Retries || ctx.Err() != nil {
			return err
		}
		delay := min(a.opts.RetryDelay<<failures, 30*time.Second)
		a.log.Warn("telegram: "+what+" failed, retrying", "attempt", failures+1, "in", delay, "err", err)
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("telegram %s: %w", what, err)
		}
	}
}

// isAdmin asks Telegram whether user is the creator or an administrator of the group.
func (a *Adapter) isAdmin(ctx context.Context, chat, user int64) (bool, error) {
	resp, err := a.call(ctx, chat, "getChatMember", retryIdempotent, func(api *tgbotapi.BotAPI) (*tgbotapi.APIResponse, error) {
		return api.Request(tgbotapi.GetChatMemberConfig{ChatConfigWithUser: tgbotapi.ChatConfigWithUser{ChatID: chat, UserID: user}})
	})
	if err != nil {
		return false, err
	}
	var cm tgbotapi.ChatMember
	if err := decodeResult(resp, &cm); err != nil {
		return false, fmt.Errorf("%w: getChatMember: %w", ErrAPI, err)
	}
	return cm.Status == "creator" || cm.Status == "administrator", nil
}
