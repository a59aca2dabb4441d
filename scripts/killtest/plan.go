package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// tgItem is one thing a Telegram user does: a message, or an album (several updates released
// together). Expect says whether the bot must answer it (once); a reply quotes it in groups
// (reply_to_message_id is one of IDs) and is the only traffic of its chat in private chats (each
// private chat has one item, because the bot quotes nothing there).
type tgItem struct {
	Kind   string
	Chat   int64
	Group  bool
	IDs    []int
	Expect bool
	Msgs   []tgbotapi.Message
}

// webItem is one web chat message: a text or a photo, in a chat of its own (a fresh cookie).
type webItem struct {
	Kind  string
	Text  string
	Photo []byte
}

// planner draws the load from one seeded generator.
type planner struct {
	rng    *rand.Rand
	photos *photoSet
	fake   *fakeBot
	nextN  int // next distinct photo
	nextID int // next Telegram message id
	user   int64
	seen   []tgPhoto // photos sent so far, for repeats
}

type tgPhoto struct {
	fileID, uniqueID string
	data             []byte
}

// photo returns a new distinct photo (registered with the fake), or with repeat set one sent
// before: forwarded (same file_unique_id, new file_id) or uploaded again (same bytes, new ids).
func (p *planner) photo(repeat bool) tgPhoto {
	p.nextN++
	id := "f" + strconv.Itoa(p.nextN)
	if repeat && len(p.seen) > 0 {
		old := p.seen[p.rng.IntN(len(p.seen))]
		ph := tgPhoto{fileID: id, uniqueID: "u" + id, data: old.data}
		if p.rng.IntN(2) == 0 {
			ph.uniqueID = old.uniqueID // a forward
		}
		p.fake.addFile(id, ph.data)
		return ph
	}
	data := p.photos.distinct(p.nextN)
	ph := tgPhoto{fileID: id, uniqueID: "u" + contentID(data), data: data}
	p.fake.addFile(id, data)
	p.seen = append(p.seen, ph)
	return ph
}

func (p *planner) message(chat *tgbotapi.Chat, from *tgbotapi.User) tgbotapi.Message {
	p.nextID++
	return tgbotapi.Message{MessageID: p.nextID, From: from, Chat: chat}
}

func (p *planner) withPhoto(m tgbotapi.Message, ph tgPhoto, asDocument bool) tgbotapi.Message {
	if asDocument {
		m.Document = &tgbotapi.Document{FileID: ph.fileID, FileUniqueID: ph.uniqueID, FileName: "leaf.jpg",
			MimeType: "image/jpeg", FileSize: len(ph.data)}
		return m
	}
	m.Photo = []tgbotapi.PhotoSize{
		{FileID: ph.fileID + "-thumb", FileUniqueID: ph.uniqueID + "-thumb", Width: 90, Height: 68, FileSize: 1500},
		{FileID: ph.fileID, FileUniqueID: ph.uniqueID, Width: photoW, Height: photoH, FileSize: len(ph.data)},
	}
	return m
}

func (p *planner) newUser() *tgbotapi.User {
	p.user++
	langs := []string{"en", "sw", "fr", "hi", "es", "pt", ""}
	return &tgbotapi.User{ID: 500000 + p.user, FirstName: "Farmer", LastName: strconv.FormatInt(p.user, 10),
		LanguageCode: langs[p.rng.IntN(len(langs))]}
}

// album returns n photo messages with one media_group_id; caption on the first.
func (p *planner) album(chat *tgbotapi.Chat, from *tgbotapi.User, n int, caption string) []tgbotapi.Message {
	group := "album" + strconv.Itoa(p.nextID+1)
	var out []tgbotapi.Message
	for i := range n {
		m := p.withPhoto(p.message(chat, from), p.photo(false), false)
		m.MediaGroupID = group
		if i == 0 {
			m.Caption = caption
		}
		out = append(out, m)
	}
	return out
}

func item(kind string, chat *tgbotapi.Chat, expect bool, msgs ...tgbotapi.Message) tgItem {
	it := tgItem{Kind: kind, Chat: chat.ID, Group: chat.Type != "private", Expect: expect, Msgs: msgs}
	for _, m := range msgs {
		it.IDs = append(it.IDs, m.MessageID)
	}
	return it
}

// maxGroupAnswered bounds the answered messages per group: the bot's rate limit (10 at once,
// then one per 3 s per chat) would otherwise answer some with "slow down" and drop others.
const maxGroupAnswered = 8

// telegram plans about n updates: most private chats send one photo (new, forwarded, uploaded
// again, as a file) and some a command, a text or an album; groups mix photos addressed to the
// bot (a /diagnose caption, an @mention), photos and chatter that are not, /help, and albums.
func (p *planner) telegram(n int) []tgItem {
	var items []tgItem
	updates := 0
	var group *tgbotapi.Chat
	var members []*tgbotapi.User
	answered := 0
	groups := int64(0)
	for updates < n {
		r := p.rng.IntN(100)
		if r < 62 { // a private chat with one item
			u := p.newUser()
			chat := &tgbotapi.Chat{ID: u.ID, Type: "private", FirstName: u.FirstName}
			var it tgItem
			switch k := p.rng.IntN(100); {
			case k < 55:
				it = item("private photo", chat, true, p.withPhoto(p.message(chat, u), p.photo(false), false))
			case k < 70:
				it = item("private repeat photo", chat, true, p.withPhoto(p.message(chat, u), p.photo(true), false))
			case k < 75:
				it = item("private photo as file", chat, true, p.withPhoto(p.message(chat, u), p.photo(false), true))
			case k < 80:
				m := p.withPhoto(p.message(chat, u), p.photo(false), false)
				m.Caption = []string{"tomato", "maize", "potato"}[p.rng.IntN(3)]
				it = item("private photo with crop", chat, true, m)
			case k < 86:
				m := p.message(chat, u)
				m.Text = []string{"/help", "/start"}[p.rng.IntN(2)]
				m.Entities = []tgbotapi.MessageEntity{{Type: "bot_command", Offset: 0, Length: len(m.Text)}}
				it = item("private command", chat, true, m)
			case k < 93:
				m := p.message(chat, u)
				m.Text = "hello, can you help me?"
				it = item("private text", chat, true, m)
			default:
				it = item("private album", chat, true, p.album(chat, u, 2+p.rng.IntN(2), "")...)
			}
			items = append(items, it)
			updates += len(it.Msgs)
			continue
		}
		if group == nil || answered >= maxGroupAnswered {
			groups++
			typ := "group"
			if groups%2 == 0 {
				typ = "supergroup"
			}
			group = &tgbotapi.Chat{ID: -1000000 - groups, Type: typ, Title: "Farmers " + strconv.FormatInt(groups, 10)}
			members = []*tgbotapi.User{p.newUser(), p.newUser(), p.newUser()}
			answered = 0
		}
		u := members[p.rng.IntN(len(members))]
		var it tgItem
		switch k := p.rng.IntN(100); {
		case k < 35:
			m := p.withPhoto(p.message(group, u), p.photo(p.rng.IntN(5) == 0), false)
			m.Caption = "/diagnose"
			if p.rng.IntN(3) == 0 {
				m.Caption = "/diagnose@" + fakeBotName
			}
			it = item("group /diagnose photo", group, true, m)
		case k < 45:
			m := p.withPhoto(p.message(group, u), p.photo(false), false)
			m.Caption = "@" + fakeBotName + " what is wrong with it?"
			it = item("group @mention photo", group, true, m)
		case k < 60:
			it = item("group photo, not addressed", group, false, p.withPhoto(p.message(group, u), p.photo(false), false))
		case k < 70:
			m := p.message(group, u)
			m.Text = "/help"
			m.Entities = []tgbotapi.MessageEntity{{Type: "bot_command", Offset: 0, Length: 5}}
			it = item("group /help", group, true, m)
		case k < 75:
			m := p.message(group, u)
			m.Text = "/help@SomeOtherBot"
			m.Entities = []tgbotapi.MessageEntity{{Type: "bot_command", Offset: 0, Length: len(m.Text)}}
			it = item("group command for another bot", group, false, m)
		case k < 90:
			m := p.message(group, u)
			m.Text = fmt.Sprintf("rain tomorrow in field %d?", p.rng.IntN(100))
			it = item("group chatter", group, false, m)
		default:
			it = item("group /diagnose album", group, true, p.album(group, u, 2+p.rng.IntN(2), "/diagnose")...)
		}
		if it.Expect {
			answered++
		}
		items = append(items, it)
		updates += len(it.Msgs)
	}
	return items
}

// web plans one client's n messages: mostly photos (new, or the bytes of an earlier one), and
// commands and texts.
func (p *planner) web(client, n int) []webItem {
	var out []webItem
	for i := range n {
		switch k := p.rng.IntN(100); {
		case k < 55:
			p.nextN++
			out = append(out, webItem{Kind: "web photo", Photo: p.photos.distinct(p.nextN)})
		case k < 70:
			if len(p.seen) == 0 {
				p.nextN++
				out = append(out, webItem{Kind: "web photo", Photo: p.photos.distinct(p.nextN)})
				continue
			}
			out = append(out, webItem{Kind: "web repeat photo", Photo: p.seen[p.rng.IntN(len(p.seen))].data})
		case k < 85:
			out = append(out, webItem{Kind: "web command", Text: []string{"/help", "/start"}[p.rng.IntN(2)]})
		default:
			out = append(out, webItem{Kind: "web text", Text: fmt.Sprintf("hello from client %d, message %d", client, i)})
		}
	}
	return out
}
