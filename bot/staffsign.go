package bot

import (
	"strings"
	"unicode"

	"github.com/cropshield/cropshield/locales"
)

// MaxSignatureRunes bounds the first name a staff member signs a reply with.
const MaxSignatureRunes = 32

// SignStaffReply signs a support staff reply for the farmer, in the chat's language lang, on its
// own line before the text: from the support team ("CropShield support team:") or, if the staff
// member chose to give it, with their first name ("Amina, CropShield support team:"). Every
// channel shows it, since it is part of the text. A blank text stays blank, for SendStaffReply to
// refuse.
func SignStaffReply(loc *locales.Bundle, lang, firstName, text string) string {
	text = strings.TrimSpace(text)
	if text == "" {
		return ""
	}
	from := loc.T(lang, "staff.from")
	if name := signatureName(firstName); name != "" {
		from = loc.T(lang, "staff.from_named", "name", name)
	}
	return from + "\n" + text
}

// signatureName is the first word of a name, without control characters, at most
// MaxSignatureRunes long.
func signatureName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	r := []rune(f[0])
	if len(r) > MaxSignatureRunes {
		r = r[:MaxSignatureRunes]
	}
	return string(r)
}
