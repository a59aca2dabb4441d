package dashboard

import (
	"testing"

	"github.com/cropshield/cropshield/store"
)

// TestTitleTellsWebVisitorsApart: web chat conversations are named by the visitor's name, or
// "Web visitor", and a short id, so that staff tell them apart (every one was "Web visitor").
func TestTitleTellsWebVisitorsApart(t *testing.T) {
	tests := []struct {
		s    store.Summary
		want string
	}{
		{store.Summary{Platform: "webchat", ChatID: "web-3f9a2c51d0e4b7a8"}, "Web visitor · 3f9a2c"},
		{store.Summary{Platform: "webchat", ChatID: "web-77aa01d0e4b7a8c2", Name: "Web visitor"}, "Web visitor · 77aa01"},
		{store.Summary{Platform: "webchat", ChatID: "web-0b1c2d3e4f506172", Name: "Amina"}, "Amina · 0b1c2d"},
		{store.Summary{Platform: "telegram", ChatID: "42", Name: "Juma"}, "Juma"},
		{store.Summary{Platform: "telegram", ChatID: "-100", Title: "Coop growers", Name: "Juma"}, "Coop growers"},
		{store.Summary{Platform: "whatsapp", ChatID: "255700000001"}, "255700000001"},
	}
	for _, tt := range tests {
		if got := title(tt.s); got != tt.want {
			t.Errorf("title(%s %s %q) = %q, want %q", tt.s.Platform, tt.s.ChatID, tt.s.Name, got, tt.want)
		}
	}
}
