package telegram_test

import (
	"strings"
	"testing"

	"github.com/cropshield/cropshield/locales"
)

// TestCropQuestionButtons: a photo the model is unsure between crops of gets the question with
// inline keyboard buttons; after a restart, the farmer taps "maize": the callback query is
// answered and the same photo is answered from the cache with a maize top-3, once (a second tap
// gets nothing more); the stored conversation holds the stated crop.
func TestCropQuestionButtons(t *testing.T) {
	e := newEnv(t, nil)
	e.cfg.ClearCropShare = 0.66
	e.start()
	chat, amina := privateChat(31), farmer(31)
	e.api.push(e.photo(chat, amina, "", e.onePhotoSize(3)))
	asked := e.untilHelp(chat, amina)
	if len(asked) != 1 || asked[0].Method != "sendMessage" || len(asked[0].Buttons) < 2 {
		t.Fatalf("want the crop question with buttons, got %+v", asked)
	}
	maize := e.loc.CropName("en", "corn")
	var data string
	for _, b := range asked[0].Buttons {
		if b.Text == maize {
			data = *b.CallbackData
		}
		if !strings.Contains(asked[0].Text, ". "+b.Text) {
			t.Errorf("button %q is not in the numbered question:\n%s", b.Text, asked[0].Text)
		}
	}
	if data == "" {
		t.Fatalf("no %q button in %+v", maize, asked[0].Buttons)
	}
	downloads := e.api.downloadCount()

	e.restart()
	e.api.tap(chat, amina, 5001, data)
	answer := e.untilHelp(chat, amina)
	if len(answer) == 0 || answer[0].Method != "sendPhoto" {
		t.Fatalf("after the tap: %+v, want the diagnosis with its overlay", answer)
	}
	stated := e.loc.T("en", "crop.stated", "crop", maize)
	if !strings.HasPrefix(answer[0].Text, stated) {
		t.Errorf("caption does not start with %q:\n%s", stated, answer[0].Text)
	}
	for _, class := range e.loc.Classes() {
		d, _ := e.loc.Disease("en", class)
		if locales.CropOf(class) != "corn" && strings.Contains(answer[0].Text, d.Crop+": "+d.Name) {
			t.Errorf("the maize top-3 names %s:\n%s", class, answer[0].Text)
		}
	}
	if got := e.api.answeredCallbacks(); len(got) != 1 {
		t.Errorf("callback queries answered: %v, want the tap's", got)
	}
	if n := e.api.downloadCount(); n != downloads {
		t.Errorf("the answer downloaded the photo again (%d downloads, was %d)", n, downloads)
	}

	// A second tap of the answered question: answered (no spinner), nothing sent.
	e.api.tap(chat, amina, 5001, data)
	if again := e.untilHelp(chat, amina); len(again) != 0 {
		t.Errorf("a second tap got %+v, want nothing", again)
	}
	if got := e.api.answeredCallbacks(); len(got) != 2 {
		t.Errorf("callback queries answered: %v, want both taps", got)
	}
	recs, err := e.st.RecentMessages(t.Context(), "telegram", "31", 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Direction == "in" && r.Crop == "corn" && r.Text == maize {
			found = true
		}
	}
	if !found {
		t.Errorf("no inbound record of the tap with the crop: %+v", recs)
	}
}
