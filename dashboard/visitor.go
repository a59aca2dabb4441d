package dashboard

import (
	"strings"

	"github.com/cropshield/cropshield/bot"
	"github.com/cropshield/cropshield/store"
)

// legacyWebName is the name the web chat gave every visitor before visitors could give theirs.
const legacyWebName = "Web visitor"

// webVisitor names a web chat conversation: the name the visitor gave (or "Web visitor") and a
// short form of the chat's id, so that staff tell visitors apart. ok is false for other channels.
func webVisitor(s store.Summary) (name string, ok bool) {
	if s.Platform != string(bot.WebChat) || s.Title != "" {
		return "", false
	}
	name = s.Name
	if name == "" {
		name = legacyWebName
	}
	short := strings.TrimPrefix(s.ChatID, "web-")
	if len(short) > 6 {
		short = short[:6]
	}
	return name + " · " + short, true
}
