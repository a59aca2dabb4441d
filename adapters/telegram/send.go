package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/cropshield/cropshield/bot"
)

// Telegram's limits, in UTF-16 code units (how Telegram counts characters).
const (
	maxCaption    = 1024
	maxText       = 4096
	maxMediaGroup = 10
)

// Send delivers a reply: an image with its caption (sendPhoto), several images as an album
// (sendMediaGroup, the caption on the first), then the text as messages (sendMessage); a reply
// without images is its full text. Text beyond Telegram's limits (1024 characters for a caption,
// 4096 for a message) follows in further messages, cut at line breaks. In groups every part
// quotes the farmer's message. A 429 is waited out and retried until ctx ends; a group that
// became a supergroup is followed to its new id; no part is sent twice.
func (a *Adapter) Send(ctx context.Context, r bot.Reply) error {
	chat, err := chatID(r.Chat)
	if err != nil {
		return err
	}
	replyTo := 0
	if r.Chat.Kind == bot.Group && r.ReplyTo != "" {
		replyTo, _ = strconv.Atoi(r.ReplyTo) // not a Telegram message id: no quote
	}
	images := r.Images
	if r.Image != nil {
		images = append([][]byte{r.Image}, r.Images...)
	}
	var rest string
	if len(images) > 0 {
		caption, more := splitText(strings.TrimSpace(r.Caption), maxCaption)
		rest = joinText(more, strings.TrimSpace(r.Text))
		if caption == "" { // no caption of its own: the text begins in it
			caption, rest = splitText(rest, maxCaption)
		}
		if err := a.sendImages(ctx, &chat, replyTo, images, caption); err != nil {
			return err
		}
	} else {
		rest = strings.TrimSpace(r.FullText())
	}
	for rest != "" {
		var part string
		part, rest = splitText(rest, maxText)
		var keyboard *tgbotapi.InlineKeyboardMarkup
		if rest == "" {
			keyboard = inlineKeyboard(r.Choices) // under the last part
		}
		if err := a.sendText(ctx, &chat, replyTo, part, keyboard); err != nil {
			return err
		}
	}
	return nil
}

// inlineKeyboard shows choices as inline keyboard buttons, one per row; nil for none.
func inlineKeyboard(choices []bot.Choice) *tgbotapi.InlineKeyboardMarkup {
	if len(choices) == 0 {
		return nil
	}
	rows := make([][]tgbotapi.InlineKeyboardButton, len(choices))
	for i, c := range choices {
		rows[i] = tgbotapi.NewInlineKeyboardRow(tgbotapi.NewInlineKeyboardButtonData(c.Label, c.Data))
	}
	kb := tgbotapi.NewInlineKeyboardMarkup(rows...)
	return &kb
}

// answerCallback answers a callback query (stops the tapped button's spinner): one attempt.
func (a *Adapter) answerCallback(ctx context.Context, id string) error {
	rctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	if _, err := a.api(rctx).Request(tgbotapi.NewCallback(id, "")); err != nil {
		return fmt.Errorf("telegram answerCallbackQuery: %w", redact(err, a.opts.Token))
	}
	return nil
}

func joinText(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n\n" + b
}

func (a *Adapter) sendText(ctx context.Context, chat *int64, replyTo int, text string, keyboard *tgbotapi.InlineKeyboardMarkup) error {
	return a.send(ctx, chat, "sendMessage", func(api *tgbotapi.BotAPI, chat int64) (*tgbotapi.APIResponse, error) {
		cfg := tgbotapi.NewMessage(chat, text)
		cfg.ReplyToMessageID, cfg.AllowSendingWithoutReply = replyTo, replyTo != 0
		cfg.DisableWebPagePreview = true
		if keyboard != nil {
			cfg.ReplyMarkup = *keyboard
		}
		return api.Request(cfg)
	})
}

func (a *Adapter) sendPhoto(ctx context.Context, chat *int64, replyTo int, img []byte, caption string) error {
	return a.send(ctx, chat, "sendPhoto", func(api *tgbotapi.BotAPI, chat int64) (*tgbotapi.APIResponse, error) {
		cfg := tgbotapi.NewPhoto(chat, tgbotapi.FileBytes{Name: "cropshield.jpg", Bytes: img})
		cfg.Caption = caption
		cfg.ReplyToMessageID, cfg.AllowSendingWithoutReply = replyTo, replyTo != 0
		return api.Request(cfg)
	})
}

// inputPhoto is an InputMediaPhoto as sendMediaGroup takes it. (The library's type always
// sends caption_entities, and its MediaGroupConfig has no allow_sending_without_reply.)
type inputPhoto struct {
	Type    string `json:"type"`
	Media   string `json:"media"`
	Caption string `json:"caption,omitempty"`
}

// sendImages sends one image with sendPhoto, more as albums of up to ten; the caption goes on
// the first.
func (a *Adapter) sendImages(ctx context.Context, chat *int64, replyTo int, images [][]byte, caption string) error {
	for start := 0; start < len(images); start += maxMediaGroup {
		chunk := images[start:min(start+maxMediaGroup, len(images))]
		if len(chunk) == 1 {
			if err := a.sendPhoto(ctx, chat, replyTo, chunk[0], caption); err != nil {
				return err
			}
			caption = ""
			continue
		}
		media := make([]inputPhoto, len(chunk))
		files := make([]tgbotapi.RequestFile, len(chunk))
		for i, img := range chunk {
			name := "photo" + strconv.Itoa(i)
			media[i] = inputPhoto{Type: "photo", Media: "attach://" + name}
			files[i] = tgbotapi.RequestFile{Name: name, Data: tgbotapi.FileBytes{Name: name + ".jpg", Bytes: img}}
		}
		media[0].Caption, caption = caption, ""
		mj, err := json.Marshal(media)
		if err != nil {
			return fmt.Errorf("telegram sendMediaGroup: %w", err)
		}
		params := tgbotapi.Params{"media": string(mj)}
		if replyTo != 0 {
			params["reply_to_message_id"] = strconv.Itoa(replyTo)
			params["allow_sending_without_reply"] = "true"
		}
		err = a.send(ctx, chat, "sendMediaGroup", func(api *tgbotapi.BotAPI, chat int64) (*tgbotapi.APIResponse, error) {
			params["chat_id"] = strconv.FormatInt(chat, 10)
			return api.UploadFiles("sendMediaGroup", params, files)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Typing shows "sending a photo…" in the chat (sendChatAction upload_photo). It is best effort:
// one attempt, skipped while the chat is under flood control.
func (a *Adapter) Typing(ctx context.Context, c bot.ChatRef) error {
	chat, err := chatID(c)
	if err != nil {
		return err
	}
	if a.flood.paused(chat) {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
	defer cancel()
	_, err = a.api(rctx).Request(tgbotapi.NewChatAction(chat, tgbotapi.ChatUploadPhoto))
	if err == nil {
		return nil
	}
	err = redact(err, a.opts.Token)
	var te *tgbotapi.Error
	if errors.As(err, &te) && (te.Code == http.StatusTooManyRequests || te.RetryAfter > 0) {
		a.flood.pause(chat, retryAfter(te))
	}
	return fmt.Errorf("telegram sendChatAction: %w", err)
}

// utf16Len counts a string as Telegram does.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// splitText cuts s so that head fits limit UTF-16 units: at the last line break that fits, else
// the last space, else between two characters. head is s and rest "" when s fits.
func splitText(s string, limit int) (head, rest string) {
	if utf16Len(s) <= limit {
		return s, ""
	}
	cut, units := 0, 0
	for i, r := range s {
		n := utf16.RuneLen(r)
		if n < 0 {
			n = 1
		}
		if units+n > limit {
			break
		}
		units += n
		cut = i + utf8.RuneLen(r)
	}
	if cut == 0 { // limit below one character: take one anyway, or we would never end
		_, size := utf8.DecodeRuneInString(s)
		cut = size
	}
	at := strings.LastIndexByte(s[:cut], '\n')
	if at <= 0 {
		at = strings.LastIndexByte(s[:cut], ' ')
	}
	if at <= 0 {
		at = cut
	}
	head = strings.TrimRight(s[:at], " \n")
	rest = strings.TrimLeft(s[at:], " \n")
	if head == "" { // only blanks before the cut
		head, rest = s[:cut], strings.TrimLeft(s[cut:], " \n")
	}
	return head, rest
}
