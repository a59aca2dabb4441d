package locales

import "strings"

// callingCodes maps international calling codes to the language most farmers there read. Only
// the supported languages are listed; anywhere else falls back to the default.
var callingCodes = map[string]string{
	// Swahili: Kenya, Tanzania, Uganda, DR Congo (east).
	"254": "sw", "255": "sw", "256": "sw",
	// Hausa: Nigeria and Niger (Hausa is the most widely spoken language of the north and of Niger).
	"234": "ha", "227": "ha",
	// Amharic: Ethiopia.
	"251": "am",
	// Hindi: India. Bengali: Bangladesh. Indonesian: Indonesia.
	"91": "hi", "880": "bn", "62": "id",
	// Spanish: Spain and Latin America.
	"34": "es", "52": "es", "53": "es", "54": "es", "56": "es", "57": "es", "58": "es", "51": "es",
	"591": "es", "593": "es", "595": "es", "598": "es", "502": "es", "503": "es", "504": "es", "505": "es", "506": "es", "507": "es",
	// French: France and francophone Africa, Haiti.
	"33": "fr", "221": "fr", "223": "fr", "224": "fr", "225": "fr", "226": "fr", "228": "fr", "229": "fr",
	"235": "fr", "236": "fr", "237": "fr", "241": "fr", "242": "fr", "243": "fr", "250": "fr", "257": "fr", "261": "fr", "509": "fr",
	// Portuguese: Brazil, Portugal, Mozambique, Angola, Guinea-Bissau, Cape Verde.
	"55": "pt", "351": "pt", "258": "pt", "244": "pt", "245": "pt", "238": "pt",
}

// languageOfPhone returns the language of an E.164 phone number ("+254712345678"), or "".
func languageOfPhone(phone string) string {
	digits, ok := strings.CutPrefix(strings.TrimSpace(phone), "+")
	if !ok {
		return ""
	}
	for n := 3; n >= 1; n-- {
		if len(digits) > n {
			if lang, ok := callingCodes[digits[:n]]; ok {
				return lang
			}
		}
	}
	return ""
}
