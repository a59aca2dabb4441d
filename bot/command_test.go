package bot_test

import (
	"testing"

	"github.com/cropshield/cropshield/bot"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bot.Command
		ok   bool
	}{
		{"/language sw", bot.Command{Name: "language", Arg: "sw"}, true},
		{"/language\nsw", bot.Command{Name: "language", Arg: "sw"}, true},
		{"/language\tsw ", bot.Command{Name: "language", Arg: "sw"}, true},
		{"/language@OtherBot sw", bot.Command{Name: "language", Arg: "sw", Bot: "OtherBot"}, true},
		{"/language@CropShieldBot\nsw", bot.Command{Name: "language", Arg: "sw", Bot: "CropShieldBot"}, true},
		{"   /help", bot.Command{Name: "help"}, true},
		{"\n/start", bot.Command{Name: "start"}, true},
		{"/HELP", bot.Command{Name: "help"}, true},
		{"/Language@Bot SW", bot.Command{Name: "language", Arg: "SW", Bot: "Bot"}, true},
		{"/crop maize and beans", bot.Command{Name: "crop", Arg: "maize and beans"}, true},
		{"/diagnose", bot.Command{Name: "diagnose"}, true},
		{"/", bot.Command{}, false},
		{"//comment", bot.Command{}, false},
		{"/ help", bot.Command{}, false},
		{"help", bot.Command{}, false},
		{"", bot.Command{}, false},
		{"my leaf /help", bot.Command{}, false},
		{"/ñ", bot.Command{}, false},
	} {
		got, ok := bot.ParseCommand(tc.text)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
}
