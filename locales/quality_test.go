package locales

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"
)

// The quality checks below read what a farmer reads: a translation left in English, a text in
// the wrong script, an empty bullet, a disease without a cause, fewer advice bullets than in
// English, a {{name}} placeholder that is never filled, and a label doubled where a message
// template meets a disease text ("How urgent: Act today: ...").

// latinNames are written in Latin script in every language: scientific names of pathogens and
// biological products, acronyms and file formats. They are left out of the script check and may
// make up a text that is the same as in English.
var latinNames = []string{
	"Venturia inaequalis", "Botryosphaeria obtusa", "Gymnosporangium juniperi-virginianae",
	"Cercospora zeae-maydis", "Cercospora", "Puccinia sorghi", "Exserohilum turcicum",
	"Guignardia bidwellii", "Phaeomoniella", "Phaeoacremonium", "Pseudocercospora vitis",
	"Pseudocercospora griseola", "Phaeoisariopsis griseola", "Isariopsis", "Candidatus Liberibacter",
	"Liberibacter", "Alternaria solani", "Phytophthora infestans", "Diplocarpon earlianum",
	"Passalora fulva", "Fulvia fulva", "Septoria lycopersici", "Septoria", "Uromyces appendiculatus",
	"Bacillus subtilis", "Bacillus amyloliquefaciens", "Bacillus", "Trichoderma", "Beauveria bassiana",
	"Beauveria", "Huanglongbing", "HLB", "TYLCV", "FRAC", "DMI", "CropShield", "JPEG", "PNG", "WebP",
}

// activeIngredients keep their international names in Latin-script languages, so a text that is
// only such a name may equal the English one; Ethiopic, Devanagari and Bengali texts transliterate
// them (the Latin name may follow in parentheses).
var activeIngredients = []string{
	"captan", "mancozeb", "chlorothalonil", "copper hydroxide", "copper oxychloride", "azoxystrobin",
	"pyraclostrobin", "trifloxystrobin", "kresoxim-methyl", "tebuconazole", "difenoconazole",
	"propiconazole", "myclobutanil", "metalaxyl-M", "cymoxanil", "propamocarb", "dimethomorph",
}

// scripts is the script each language is written in.
var scripts = map[string]*unicode.RangeTable{
	"am": unicode.Ethiopic, "hi": unicode.Devanagari, "bn": unicode.Bengali,
}

func scriptOf(code string) (*unicode.RangeTable, string) {
	if t, ok := scripts[code]; ok {
		return t, map[string]string{"am": "Ethiopic", "hi": "Devanagari", "bn": "Bengali"}[code]
	}
	return unicode.Latin, "Latin"
}

// minScriptShare is the least share of a text's letters (outside parentheses, placeholders,
// commands and Latin names) that must be in the language's script.
const minScriptShare = 0.9

var (
	commandRegex     = regexp.MustCompile(`/[a-z_]+`)
	parenthesesRegex = regexp.MustCompile(`\([^()]*\)`)
	latinNamesRegex  = wordsRegex(latinNames)
	allNamesRegex    = wordsRegex(append(slices.Clone(latinNames), activeIngredients...))
	// englishWords are words that have no place in a translation into another Latin-script
	// language; Hausa texts kept some of them.
	englishWords = wordsRegex([]string{"the", "and", "with", "leaf", "leaves", "spray", "fungus",
		"fungicide", "greenhouse", "scab", "juniper", "cedar", "psyllid", "psyllids", "whitefly",
		"whiteflies", "blight", "mould", "mold", "weather"})
	// seasons differ by hemisphere and climate: the texts name the crop's stage instead ("when new
	// leaves open", "after harvest"). Checked in English, which every translation follows.
	seasons = wordsRegex([]string{"spring", "summer", "autumn", "winter"})
	// loanwords are English words a language has taken in.
	loanwords = map[string][]string{"id": {"juniper"}}
)

func wordsRegex(words []string) *regexp.Regexp {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = regexp.QuoteMeta(w)
	}
	// Longest first, so "Bacillus subtilis" goes before "Bacillus".
	slices.SortFunc(quoted, func(a, b string) int { return len(b) - len(a) })
	return regexp.MustCompile(`(?i)(^|[^\pL])(` + strings.Join(quoted, "|") + `)($|[^\pL])`)
}

// stripNames removes the given names, placeholders and /commands from a text.
func stripNames(re *regexp.Regexp, s string) string {
	s = placeholderRegex.ReplaceAllString(s, " ")
	s = commandRegex.ReplaceAllString(s, " ")
	// Twice: the separator between two adjacent names is consumed by the first match.
	for range 2 {
		s = re.ReplaceAllString(s, "$1 $3")
	}
	return s
}

func hasLetter(s string) bool { return strings.IndexFunc(s, unicode.IsLetter) >= 0 }

// text is one value a farmer may read, with where it comes from.
type text struct{ where, value string }

// messageTexts lists a catalog's messages by key, plural forms included.
func messageTexts(c *catalog) map[string]string {
	out := map[string]string{}
	for key, m := range c.messages {
		if m.forms == nil {
			out["messages "+key] = m.text
			continue
		}
		for f, v := range m.forms {
			out["messages "+key+"."+f] = v
		}
	}
	return out
}

// diseaseTexts lists a catalog's disease texts by class and field.
func diseaseTexts(c *catalog) map[string]string {
	out := map[string]string{}
	for class, d := range c.diseases {
		p := "diseases " + class + "."
		out[p+"name"], out[p+"crop"], out[p+"cause"] = d.Name, d.Crop, d.Cause
		out[p+"urgency"], out[p+"call_expert"] = d.Urgency, d.CallExpert
		for i, s := range d.Symptoms {
			out[p+"symptoms["+strconv.Itoa(i)+"]"] = s
		}
		for i, s := range d.Advice {
			out[p+"advice["+strconv.Itoa(i)+"]"] = s
		}
	}
	return out
}

func allTexts(c *catalog) []text {
	m := messageTexts(c)
	for k, v := range diseaseTexts(c) {
		m[k] = v
	}
	out := make([]text, 0, len(m))
	for k, v := range m {
		out = append(out, text{k, v})
	}
	slices.SortFunc(out, func(a, b text) int { return strings.Compare(a.where, b.where) })
	return out
}

// qualityProblems lists what a farmer would stumble on in the bundle's catalogs.
func qualityProblems(b *Bundle) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	en := b.langs[Default]
	enTexts := messageTexts(en)
	for k, v := range diseaseTexts(en) {
		enTexts[k] = v
	}
	for _, code := range b.order {
		c := b.langs[code]
		script, scriptName := scriptOf(code)
		for _, t := range allTexts(c) {
			if t.where == "messages language.english_name" {
				continue // English by design
			}
			// Placeholders are {name}; a brace outside one is a template of another tool.
			if rest := placeholderRegex.ReplaceAllString(t.value, ""); strings.ContainsAny(rest, "{}") {
				add("%s %s: a brace outside a {placeholder}: %q", code, t.where, t.value)
			}
			if strings.HasPrefix(t.where, "diseases ") && len(Placeholders(t.value)) > 0 {
				add("%s %s: disease texts are not filled, so they cannot have placeholders: %q", code, t.where, t.value)
			}
			if code != Default {
				if ref, ok := enTexts[t.where]; ok && ref == t.value && hasLetter(stripNames(allNamesRegex, t.value)) {
					add("%s %s: the same as in English: %q", code, t.where, t.value)
				}
			}
			if code != Default && script == unicode.Latin {
				for _, m := range englishWords.FindAllStringSubmatch(t.value, -1) {
					if !slices.Contains(loanwords[code], strings.ToLower(m[2])) {
						add("%s %s: English word %q left in: %q", code, t.where, m[2], t.value)
					}
				}
			}
			if code == Default {
				if m := seasons.FindStringSubmatch(t.value); m != nil {
					add("%s %s: a season (%q) instead of the crop's stage: %q", code, t.where, m[2], t.value)
				}
			}
			var in, all int
			for _, r := range parenthesesRegex.ReplaceAllString(stripNames(latinNamesRegex, t.value), " ") {
				if unicode.IsLetter(r) {
					all++
					if unicode.Is(script, r) {
						in++
					}
				}
			}
			if all > 0 && float64(in) < minScriptShare*float64(all) {
				add("%s %s: only %d of %d letters in %s script: %q", code, t.where, in, all, scriptName, t.value)
			}
		}
		for _, class := range slices.Sorted(maps.Keys(en.diseases)) {
			ref := en.diseases[class]
			d, ok := c.diseases[class]
			if !ok {
				add("%s lacks disease %s", code, class)
				continue
			}
			if d.Healthy != ref.Healthy {
				add("%s %s: healthy is %v, %s has %v", code, class, d.Healthy, Default, ref.Healthy)
			}
			if !d.Healthy && strings.TrimSpace(d.Cause) == "" {
				add("%s %s: blank cause", code, class)
			}
			for field, items := range map[string][]string{"symptoms": d.Symptoms, "advice": d.Advice} {
				for i, s := range items {
					if strings.TrimSpace(s) == "" {
						add("%s %s: empty %s bullet %d", code, class, field, i+1)
					}
				}
			}
			if len(d.Advice) < len(ref.Advice) {
				add("%s %s: %d advice bullets, %s has %d", code, class, len(d.Advice), Default, len(ref.Advice))
			}
			if !d.Healthy {
				probs = append(probs, doubledLabels(b, code, class, d)...)
			}
		}
	}
	return probs
}

// doubledLabels finds a disease text that repeats the label of the message that shows it: a
// colon after the template's own ("How urgent: Act today: ...") or, for whom to call, a word of
// the label again ("Call an expert: Call the extension officer ...").
func doubledLabels(b *Bundle, code, class string, d Disease) []string {
	var probs []string
	for key, value := range map[string]string{"diagnosis.urgency": d.Urgency, "diagnosis.call_expert": d.CallExpert} {
		m, ok := b.langs[code].messages[key]
		if !ok {
			continue
		}
		if strings.ContainsAny(value, ":：፦") {
			probs = append(probs, fmt.Sprintf("%s %s: %s text has a colon after the label's: %q", code, class, key, b.T(code, key, "text", value)))
		}
		if key != "diagnosis.call_expert" {
			continue // "How urgent: act now, it spreads fast" may say "fast" twice
		}
		label, _, _ := strings.Cut(m.text, "{text}")
		text := strings.ToLower(value)
		for _, w := range strings.FieldsFunc(strings.ToLower(label), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.Is(unicode.Mn, r) && !unicode.Is(unicode.Mc, r)
		}) {
			if len([]rune(w)) >= 3 && slices.Contains(strings.FieldsFunc(text, func(r rune) bool {
				return !unicode.IsLetter(r) && !unicode.Is(unicode.Mn, r) && !unicode.Is(unicode.Mc, r)
			}), w) {
				probs = append(probs, fmt.Sprintf("%s %s: %s repeats the label's word %q: %q", code, class, key, w, b.T(code, key, "text", value)))
			}
		}
	}
	return probs
}

func TestShippedCatalogQuality(t *testing.T) {
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range qualityProblems(b) {
		t.Error(p)
	}
}

// TestQualityChecksCatch plants each fault in an otherwise clean pair of catalogs and expects the
// checks to name it, and the clean pair to pass.
func TestQualityChecksCatch(t *testing.T) {
	const (
		enMsg = `{"language.name":"English","language.english_name":"English","hi":"Hello {name}, send /help",
			"diagnosis.urgency":"How urgent: {text}","diagnosis.call_expert":"When to get help: {text}"}`
		swMsg = `{"language.name":"Kiswahili","language.english_name":"Swahili","hi":"Habari {name}, tuma /help",
			"diagnosis.urgency":"Ni haraka kiasi gani: {text}","diagnosis.call_expert":"Wakati wa kutafuta msaada: {text}"}`
		amMsg = `{"language.name":"አማርኛ","language.english_name":"Amharic","hi":"ሰላም {name}፣ /help ይላኩ",
			"diagnosis.urgency":"ምን ያህል አስቸኳይ ነው፦ {text}","diagnosis.call_expert":"እርዳታ መቼ እንደሚፈልጉ፦ {text}"}`
	)
	enDis := disease("Late blight", "Potato", "Oomycete Phytophthora infestans", []string{"Dark patches."},
		[]string{"Remove sick plants.", "Spray mancozeb with cymoxanil (FRAC 27)."}, "Act today, it spreads fast.", "Call the extension officer if it spreads.")
	swDis := disease("Baa chelewa", "Viazi", "Ukungu wa maji Phytophthora infestans", []string{"Mabaka meusi."},
		[]string{"Ng'oa mimea yenye ugonjwa.", "Nyunyizia mancozeb pamoja na cymoxanil (FRAC 27)."}, "Chukua hatua leo, huenea haraka.", "Mwite afisa ugani ukiona unaenea.")
	amDis := disease("ዘግይቶ የሚመጣ ዋግ", "ድንች", "የውሃ ሻጋታ Phytophthora infestans", []string{"ጥቁር ቦታዎች።"},
		[]string{"የታመሙ ተክሎችን ይንቀሉ።", "ማንኮዜብ (mancozeb) ከሳይሞክሳኒል (cymoxanil) ጋር ይርጩ (FRAC 27)።"}, "ዛሬውኑ እርምጃ ይውሰዱ፤ በፍጥነት ይስፋፋል።", "ከተስፋፋ የግብርና ባለሙያ ያማክሩ።")
	// plant replaces old by new in one file of the clean catalogs.
	type plant struct{ file, old, new string }
	for _, tc := range []struct {
		name  string
		plant plant  // the fault; none for the clean catalogs
		want  string // a problem that must be named; "" for none at all
	}{
		{"clean", plant{}, ""},
		{"English leftover", plant{"diseases/sw.json", "Ng'oa mimea yenye ugonjwa.", "Remove sick plants."},
			`sw diseases potato__late_blight.advice[0]: the same as in English`},
		{"English cause", plant{"diseases/sw.json", "Ukungu wa maji", "Oomycete"},
			`sw diseases potato__late_blight.cause: the same as in English`},
		{"English word in a translation", plant{"diseases/sw.json", "Mabaka meusi.", "Mabaka meusi ya blight."},
			`sw diseases potato__late_blight.symptoms[0]: English word "blight"`},
		{"wrong script", plant{"diseases/am.json", "ጥቁር ቦታዎች።", "Dark patches."},
			`am diseases potato__late_blight.symptoms[0]: only 0 of 11 letters in Ethiopic script`},
		{"active ingredient in Latin script", plant{"diseases/am.json", "ማንኮዜብ (mancozeb)", "mancozeb"},
			`am diseases potato__late_blight.advice[1]: only`},
		{"Ethiopic in a Latin-script language", plant{"diseases/sw.json", "Viazi", "ድንች"},
			`sw diseases potato__late_blight.crop: only 0 of 3 letters in Latin script`},
		{"empty bullet", plant{"diseases/sw.json", `"Mabaka meusi."`, `" "`},
			`sw potato__late_blight: empty symptoms bullet 1`},
		{"blank cause", plant{"diseases/am.json", "የውሃ ሻጋታ Phytophthora infestans", ""},
			`am potato__late_blight: blank cause`},
		{"fewer advice bullets", plant{"diseases/sw.json", `"Ng'oa mimea yenye ugonjwa.",`, ""},
			`sw potato__late_blight: 1 advice bullets, en has 2`},
		{"double braces", plant{"diseases/sw.json", "Viazi", "{{crop}}"},
			`sw diseases potato__late_blight.crop: a brace outside a {placeholder}`},
		// {{name}} passes the same-placeholders check ({name} is inside) but not this one.
		{"double braces in a message", plant{"messages/sw.json", "Habari {name}", "Habari {{name}}"},
			`sw messages hi: a brace outside a {placeholder}`},
		{"placeholder in a disease text", plant{"diseases/sw.json", "Viazi", "{crop}"},
			`sw diseases potato__late_blight.crop: disease texts are not filled`},
		{"double colon", plant{"diseases/sw.json", "Chukua hatua leo, huenea", "Chukua hatua leo: huenea"},
			`sw potato__late_blight: diagnosis.urgency text has a colon after the label's: "Ni haraka kiasi gani: Chukua hatua leo: huenea haraka."`},
		{"label repeated", plant{"diseases/sw.json", "Mwite afisa ugani", "Tafuta msaada wa afisa ugani"},
			`sw potato__late_blight: diagnosis.call_expert repeats the label's word "msaada"`},
		{"season", plant{"diseases/en.json", "Act today, it spreads fast.", "Act in spring, it spreads fast."},
			`en diseases potato__late_blight.urgency: a season ("spring")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				"messages/en.json": enMsg, "diseases/en.json": enDis,
				"messages/sw.json": swMsg, "diseases/sw.json": swDis,
				"messages/am.json": amMsg, "diseases/am.json": amDis,
			}
			if tc.plant.file != "" {
				if !strings.Contains(files[tc.plant.file], tc.plant.old) {
					t.Fatalf("%s has no %q to replace", tc.plant.file, tc.plant.old)
				}
				files[tc.plant.file] = strings.Replace(files[tc.plant.file], tc.plant.old, tc.plant.new, 1)
			}
			fsys := fstest.MapFS{}
			for name, data := range files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			b, err := load(fsys)
			if err != nil {
				t.Fatal(err)
			}
			probs := qualityProblems(b)
			if tc.want == "" {
				if len(probs) > 0 {
					t.Errorf("clean catalogs: %q", probs)
				}
				return
			}
			if !slices.ContainsFunc(probs, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems %q, want one mentioning %q", probs, tc.want)
			}
		})
	}
}

func disease(name, crop, cause string, symptoms, advice []string, urgency, callExpert string) string {
	q := func(s string) string { return strconv.Quote(s) }
	list := func(items []string) string {
		out := make([]string, len(items))
		for i, s := range items {
			out[i] = q(s)
		}
		return "[" + strings.Join(out, ",") + "]"
	}
	return `{"potato__late_blight":{"name":` + q(name) + `,"crop":` + q(crop) + `,"healthy":false,"cause":` + q(cause) +
		`,"symptoms":` + list(symptoms) + `,"advice":` + list(advice) + `,"urgency":` + q(urgency) + `,"call_expert":` + q(callExpert) + `}}`
}
