package dashboard

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/store"
)

// queuedItemRegexp matches a queued staff reply in a thread page.
var queuedItemRegexp = regexp.MustCompile(`(?s)<li[^>]*class="item staff queued">.*?</li>`)

const queuedMark = "Queued — goes out when WhatsApp is connected"

// queuedItems returns the queued staff replies the conversation's page shows, as HTML.
func (e *env) queuedItems(c *http.Client, conv string) []string {
	e.t.Helper()
	code, body, _ := e.page(c, "/conversations/"+conv)
	if code != http.StatusOK {
		e.t.Fatalf("thread %s: %d", conv, code)
	}
	return queuedItemRegexp.FindAllString(body, -1)
}

// TestThreadShowsQueuedStaffReplies: a staff reply waiting in the staff outbox (written on a
// replica where WhatsApp does not run) shows in its conversation, after the logged messages,
// marked queued, with its author and time and its text escaped; not in another chat's. Once
// delivered it is no longer queued: it shows as the logged staff reply.
func TestThreadShowsQueuedStaffReplies(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	now := e.clock.now()
	const farmer, other = "254712345678", "254700000001"
	for _, chat := range []string{farmer, other} {
		if _, err := e.st.AppendMessage(ctx, store.Record{Time: now, Platform: "whatsapp", ChatID: chat, Direction: store.Inbound,
			SenderID: chat, Text: "My maize has brown spots", Lang: "en"}); err != nil {
			t.Fatal(err)
		}
	}
	const text = `Spray copper <script>alert(1)</script> in the evening. — Support`
	queuedAt := now.Add(5 * time.Minute)
	id, err := e.st.EnqueueStaffReply(ctx, store.StaffReply{Platform: "whatsapp", ChatID: farmer, ChatKind: "private",
		Text: text, Staff: "bob", Queued: queuedAt})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.EnqueueStaffReply(ctx, store.StaffReply{Platform: "whatsapp", ChatID: other, ChatKind: "private",
		Text: "For the other farmer only.", Staff: "bob", Queued: queuedAt}); err != nil {
		t.Fatal(err)
	}
	conv, otherConv := conversationID("whatsapp", farmer), conversationID("whatsapp", other)
	c := e.client()
	e.login(c, "victor", viewerPass) // a viewer sees them too

	_, body, _ := e.page(c, "/conversations/"+conv)
	items := e.queuedItems(c, conv)
	if len(items) != 1 {
		t.Fatalf("thread shows %d queued replies, want 1:\n%s", len(items), body)
	}
	item := items[0]
	for _, want := range []string{queuedMark, "staff: bob", "2025-06-01 12:05 UTC",
		"Spray copper &lt;script&gt;alert(1)&lt;/script&gt; in the evening."} {
		if !strings.Contains(item, want) {
			t.Errorf("queued reply lacks %q:\n%s", want, item)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Errorf("the staff's text is not escaped:\n%s", item)
	}
	if strings.Contains(body, "For the other farmer only.") {
		t.Errorf("the thread shows another chat's queued reply")
	}
	if !strings.Contains(item, `id="latest"`) || strings.Index(body, "My maize has brown spots") > strings.Index(body, queuedMark) {
		t.Errorf("the queued reply is not the thread's latest item, after the logged messages:\n%s", body)
	}
	if items := e.queuedItems(c, otherConv); len(items) != 1 || !strings.Contains(items[0], "For the other farmer only.") {
		t.Errorf("the other chat's thread shows %q, want its own queued reply", items)
	}

	// Being sent (claimed by the replica running WhatsApp): still not logged, still queued.
	if _, err := e.st.ClaimStaffReply(ctx, "whatsapp", id, queuedAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if items := e.queuedItems(c, conv); len(items) != 1 {
		t.Fatalf("while being sent the thread shows %d queued replies, want 1", len(items))
	}
	// Delivered and logged: shown once, as the staff reply it now is.
	if _, err := e.st.FinishStaffReply(ctx, "whatsapp", id, store.Record{Time: queuedAt.Add(time.Minute), Platform: "whatsapp",
		ChatID: farmer, Direction: store.Outbound, Text: text, Kind: "staff", Staff: "bob"}); err != nil {
		t.Fatal(err)
	}
	_, body, _ = e.page(c, "/conversations/"+conv)
	if strings.Contains(body, queuedMark) {
		t.Errorf("a delivered reply still shows as queued:\n%s", body)
	}
	if n := strings.Count(body, "Spray copper &lt;script&gt;"); n != 1 {
		t.Errorf("the delivered reply shows %d times, want once", n)
	}
	if !regexp.MustCompile(`(?s)class="item staff">\s*<div class="meta">[^<]*staff: bob</div>\s*<p class="text">Spray copper &lt;script&gt;`).MatchString(body) {
		t.Errorf("the delivered reply does not show as the logged staff reply:\n%s", body)
	}
}

// TestMovedThreadShowsQueuedStaffReplies: the thread of a chat that moved (a Telegram group that
// became a supergroup) shows the replies queued for the chat it continues in, where reply sends
// them.
func TestMovedThreadShowsQueuedStaffReplies(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	const from, to = "-4001", "-1004001"
	now := e.clock.now()
	in := store.Record{Time: now, Platform: "telegram", ChatID: from, Direction: store.Inbound, SenderID: "31",
		SenderName: "Amina", MessageID: "7", Text: "hello"}
	if _, err := e.st.RecordInbound(ctx, in, &store.Chat{Platform: "telegram", ID: from, Kind: "group", Title: "Mbeya growers"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.MigrateChat(ctx, "telegram", from, to, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.EnqueueStaffReply(ctx, store.StaffReply{Platform: "telegram", ChatID: to, ChatKind: "group",
		Text: "Spray in the evening.", Staff: "alice", Queued: now.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	e.login(c, "alice", agentPass)
	for _, conv := range []string{conversationID("telegram", from), conversationID("telegram", to)} {
		if items := e.queuedItems(c, conv); len(items) != 1 || !strings.Contains(items[0], "Spray in the evening.") {
			t.Errorf("thread %s shows %q, want the reply queued for %s", conv, items, to)
		}
	}
}
