package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cropshield/cropshield/store"
)

func TestStaffForgetAFarmerOnRequest(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	path := "/conversations/" + e.convID + "/forget"

	viewer := e.client()
	vtoken := e.login(viewer, "victor", viewerPass)
	if _, body, _ := e.page(viewer, "/conversations/"+e.convID); strings.Contains(body, `id="forget"`) {
		t.Error("a viewer sees the forget form")
	}
	if resp := e.post(viewer, path, url.Values{"csrf": {vtoken}, "confirm": {"yes"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer POST forget: %s, want 403", resp.Status)
	}

	c := e.client()
	token := e.login(c, "alice", agentPass)
	if _, body, _ := e.page(c, "/conversations/"+e.convID); !strings.Contains(body, `id="forget"`) {
		t.Fatal("an agent does not see the forget form")
	}
	// Without the confirmation nothing happens.
	resp := e.post(c, path, url.Values{"csrf": {token}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "done=forget_unconfirmed") {
		t.Fatalf("unconfirmed: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	if _, _, err := e.st.GetPhoto(ctx, e.hash); err != nil {
		t.Fatalf("deleted without confirmation: %v", err)
	}
	resp = e.post(c, path, url.Values{"csrf": {token}, "confirm": {"yes"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "done=forgotten") {
		t.Fatalf("forget: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	if _, _, err := e.st.GetPhoto(ctx, e.hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the farmer's photo: %v", err)
	}
	if msgs, _ := e.st.Messages(ctx, "webchat", "web-1", 0, 10); len(msgs) != 0 {
		t.Errorf("messages left: %+v", msgs)
	}
	sum, err := e.st.GetSummary(ctx, "webchat", "web-1")
	if err != nil || !sum.Forgotten.Equal(e.clock.now()) || sum.LastStaff != "alice" {
		t.Errorf("marker: %+v %v", sum, err)
	}
	_, body, _ := e.page(c, "/conversations/"+e.convID+"?done=forgotten")
	for _, want := range []string{`id="forgotten"`, "by alice at the farmer's request", "settings were deleted."} {
		if !strings.Contains(body, want) {
			t.Errorf("thread page lacks %q:\n%s", want, body)
		}
	}
	for _, gone := range []string{"my tomato is sick", "Amina", e.hash} {
		if strings.Contains(body, gone) {
			t.Errorf("thread page still shows %q", gone)
		}
	}
	_, list, _ := e.page(c, "/conversations")
	if !strings.Contains(list, `class="badge forgotten"`) || strings.Contains(list, "Amina") || strings.Contains(list, "my tomato is sick") {
		t.Errorf("conversation list after forget:\n%s", list)
	}

	// A group is not one farmer.
	if _, err := e.st.AppendMessage(ctx, store.Record{Time: e.clock.now(), Platform: "webchat", ChatID: "grp", Direction: store.Inbound, SenderID: "x", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.TouchChat(ctx, store.Chat{Platform: "webchat", ID: "grp", Kind: "group"}, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AppendMessage(ctx, store.Record{Time: e.clock.now(), Platform: "webchat", ChatID: "grp", Direction: store.Inbound, SenderID: "x", Text: "hi again"}); err != nil {
		t.Fatal(err)
	}
	if resp := e.post(c, "/conversations/"+conversationID("webchat", "grp")+"/forget", url.Values{"csrf": {token}, "confirm": {"yes"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("forget a group: %s", resp.Status)
	}
}

// TestThreadAfterRetentionRemovedThePhoto: a message whose photo the retention sweep removed shows
// that, not a broken image.
func TestThreadAfterRetentionRemovedThePhoto(t *testing.T) {
	e := newEnv(t, nil)
	rep, err := e.st.Sweep(t.Context(), store.RetentionPolicy{Photos: 90 * 24 * time.Hour}, e.clock.now().Add(100*24*time.Hour))
	if err != nil || rep.Photos != 1 {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	c := e.client()
	e.login(c, "victor", viewerPass)
	code, body, _ := e.page(c, "/conversations/"+e.convID)
	if code != http.StatusOK || !strings.Contains(body, `class="muted photo-gone"`) || strings.Contains(body, "/photos/"+e.hash+"/image") {
		t.Errorf("thread after the photo went: %d\n%s", code, body)
	}
	if !strings.Contains(body, "my tomato is sick") {
		t.Error("the message itself is kept")
	}
}
