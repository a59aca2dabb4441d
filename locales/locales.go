// Package locales holds CropShield's user-facing texts: one embedded message catalog per language
// (messages/CODE.json) and one disease catalog per language (diseases/CODE.json) with each model
// class's name, crop, symptoms and advice. It matches a platform's language hint to a supported
// language with golang.org/x/text/language.
//
// Messages use named placeholders such as {name}; Bundle.T fills them. A message whose wording
// depends on a number is a JSON object of CLDR plural forms ("one", "few", "other", ...) and is
// filled with Bundle.TN, which picks the form by golang.org/x/text/feature/plural's rules and
// writes the number in the language's own digits.
package locales

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	msgprinter "golang.org/x/text/message"
	"golang.org/x/text/number"
)

//go:embed messages/*.json diseases/*.json
var files embed.FS

// Default is the language used when nothing else matches.
const Default = "en"

// Errors of this package.
var (
	ErrMissing      = errors.New("locales: missing text")
	ErrCatalog      = errors.New("locales: bad catalog")
	ErrUnknownClass = errors.New("locales: unknown class")
)

var placeholderRegex = regexp.MustCompile(`\{[a-z_]+\}`)

// Disease is what a farmer reads about one model class.
type Disease struct {
	Name       string   `json:"name"`
	Crop       string   `json:"crop"`
	Healthy    bool     `json:"healthy"`
	Cause      string   `json:"cause"`
	Symptoms   []string `json:"symptoms"`
	Advice     []string `json:"advice"`
	Urgency    string   `json:"urgency"`
	CallExpert string   `json:"call_expert"`
}

// Language is a supported language.
type Language struct {
	Code        string // BCP 47, e.g. "sw"
	Name        string // its own name, e.g. "Kiswahili"
	EnglishName string // e.g. "Swahili"
}

type catalog struct {
	lang     Language
	tag      language.Tag
	messages map[string]message
	diseases map[string]Disease
}

// message is one catalog entry: plain text, or plural forms by CLDR category.
type message struct {
	text  string
	forms map[string]string
}

func (m *message) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &m.text); err == nil {
		return nil
	}
	if err := json.Unmarshal(b, &m.forms); err != nil {
		return fmt.Errorf("a message is a string or an object of plural forms: %w", err)
	}
	for f := range m.forms {
		if _, ok := pluralForms[f]; !ok {
			return fmt.Errorf("unknown plural form %q (want zero, one, two, few, many or other)", f)
		}
	}
	if _, ok := m.forms["other"]; !ok {
		return errors.New(`plural forms need "other"`)
	}
	return nil
}

// main is the text, or the "other" plural form.
func (m message) main() string {
	if m.forms == nil {
		return m.text
	}
	return m.forms["other"]
}

// variants lists the texts of a message: the text, or every plural form.
func (m message) variants() []string {
	if m.forms == nil {
		return []string{m.text}
	}
	return slices.Sorted(maps.Values(m.forms))
}

var pluralForms = map[string]plural.Form{
	"other": plural.Other, "zero": plural.Zero, "one": plural.One, "two": plural.Two, "few": plural.Few, "many": plural.Many,
}

// Bundle is every embedded language. It is read-only after Load and safe for concurrent use.
type Bundle struct {
	langs   map[string]*catalog
	order   []string // codes, Default first, then alphabetical
	matcher language.Matcher
}

// Load parses the embedded catalogs and checks that every language has every message key with
// the same placeholders as the default language.
func Load() (*Bundle, error) {
	return load(files)
}

func load(fsys fs.FS) (*Bundle, error) {
	entries, err := fs.ReadDir(fsys, "messages")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCatalog, err)
	}
	b := &Bundle{langs: map[string]*catalog{}}
	for _, e := range entries {
		code, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		c, err := readCatalog(fsys, code)
		if err != nil {
			return nil, err
		}
		b.langs[code] = c
		b.order = append(b.order, code)
	}
	if _, ok := b.langs[Default]; !ok {
		return nil, fmt.Errorf("%w: no %s catalog", ErrCatalog, Default)
	}
	slices.SortFunc(b.order, func(x, y string) int {
		switch {
		case x == Default:
			return -1
		case y == Default:
			return 1
		}
		return strings.Compare(x, y)
	})
	tags := make([]language.Tag, len(b.order))
	for i, code := range b.order {
		tags[i] = language.Make(code)
	}
	b.matcher = language.NewMatcher(tags)
	return b, b.checkMessages()
}

func readCatalog(fsys fs.FS, code string) (*catalog, error) {
	if _, err := language.Parse(code); err != nil {
		return nil, fmt.Errorf("%w: file name %q is not a language code: %w", ErrCatalog, code, err)
	}
	c := &catalog{}
	raw, err := fs.ReadFile(fsys, path.Join("messages", code+".json"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCatalog, err)
	}
	if err := json.Unmarshal(raw, &c.messages); err != nil {
		return nil, fmt.Errorf("%w: messages/%s.json: %w", ErrCatalog, code, err)
	}
	raw, err = fs.ReadFile(fsys, path.Join("diseases", code+".json"))
	if err != nil {
		return nil, fmt.Errorf("%w: language %s has messages but no diseases/%s.json: %w", ErrCatalog, code, code, err)
	}
	if err := json.Unmarshal(raw, &c.diseases); err != nil {
		return nil, fmt.Errorf("%w: diseases/%s.json: %w", ErrCatalog, code, err)
	}
	c.lang = Language{Code: code, Name: c.messages["language.name"].text, EnglishName: c.messages["language.english_name"].text}
	c.tag = language.Make(code)
	return c, nil
}

// checkMessages compares every language with the default one: the same keys, the same
// placeholders in every variant, plural forms where the default has them, and every plural form
// the language's rules can ask for.
func (b *Bundle) checkMessages() error {
	ref := b.langs[Default].messages
	var errs []error
	for _, code := range b.order {
		c := b.langs[code]
		for key, want := range ref {
			got, ok := c.messages[key]
			if !ok || strings.TrimSpace(strings.Join(got.variants(), "")) == "" {
				errs = append(errs, fmt.Errorf("%w: %s lacks message %q", ErrMissing, code, key))
				continue
			}
			if (got.forms == nil) != (want.forms == nil) {
				errs = append(errs, fmt.Errorf("%w: %s message %q must be %s like in %s", ErrCatalog, code, key, kindOf(want), Default))
				continue
			}
			// The main text ("other" for plurals) has exactly the default's placeholders; other
			// plural forms may leave some out ("one photo" needs no {count}), never add one.
			wantPh := Placeholders(want.main())
			if ph := Placeholders(got.main()); !slices.Equal(ph, wantPh) {
				errs = append(errs, fmt.Errorf("%w: %s message %q has placeholders %v, %s has %v", ErrCatalog, code, key, ph, Default, wantPh))
			}
			for _, v := range got.variants() {
				for _, ph := range Placeholders(v) {
					if !slices.Contains(wantPh, ph) {
						errs = append(errs, fmt.Errorf("%w: %s message %q has placeholder %s that %s lacks", ErrCatalog, code, key, ph, Default))
					}
				}
			}
			if got.forms != nil {
				for _, f := range neededForms(c.tag) {
					if _, ok := got.forms[f]; !ok {
						errs = append(errs, fmt.Errorf("%w: %s message %q lacks the plural form %q", ErrMissing, code, key, f))
					}
				}
			}
		}
		for key := range c.messages {
			if _, ok := ref[key]; !ok {
				errs = append(errs, fmt.Errorf("%w: %s has message %q that %s lacks", ErrCatalog, code, key, Default))
			}
		}
	}
	return errors.Join(errs...)
}

func kindOf(m message) string {
	if m.forms == nil {
		return "a plain string"
	}
	return "an object of plural forms"
}

// neededForms lists the plural forms a language's rules pick for the counts a farmer may see.
func neededForms(tag language.Tag) []string {
	seen := map[string]bool{}
	for n := range 1001 {
		f := plural.Cardinal.MatchPlural(tag, n, 0, 0, 0, 0)
		for name, form := range pluralForms {
			if form == f {
				seen[name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Placeholders lists the distinct {placeholders} of a message, sorted.
func Placeholders(msg string) []string {
	ph := placeholderRegex.FindAllString(msg, -1)
	slices.Sort(ph)
	return slices.Compact(ph)
}

// CheckClasses reports every class that lacks a complete disease text in any language: a model
// whose classes we cannot explain must not start.
func (b *Bundle) CheckClasses(classes []string) error {
	var errs []error
	for _, code := range b.order {
		for _, class := range classes {
			d, ok := b.langs[code].diseases[class]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%w: %s has no text for class %q", ErrMissing, code, class))
			case d.Name == "" || d.Crop == "" || len(d.Symptoms) == 0 || len(d.Advice) == 0:
				errs = append(errs, fmt.Errorf("%w: %s text for class %q lacks a name, crop, symptoms or advice", ErrMissing, code, class))
			case !d.Healthy && (d.Urgency == "" || d.CallExpert == ""):
				errs = append(errs, fmt.Errorf("%w: %s text for class %q lacks urgency or call_expert", ErrMissing, code, class))
			}
		}
	}
	return errors.Join(errs...)
}

// Classes lists the class ids the default language has disease texts for, sorted.
func (b *Bundle) Classes() []string {
	return slices.Sorted(maps.Keys(b.langs[Default].diseases))
}

// Languages lists the supported languages, the default first.
func (b *Bundle) Languages() []Language {
	out := make([]Language, len(b.order))
	for i, code := range b.order {
		out[i] = b.langs[code].lang
	}
	return out
}

// Has reports whether code is a supported language.
func (b *Bundle) Has(code string) bool {
	_, ok := b.langs[code]
	return ok
}

// Match maps a platform hint to a supported language: a language tag or an Accept-Language list
// ("pt-BR", "fr-FR,sw;q=0.8"), or a phone number in E.164 form ("+254712345678", WhatsApp's
// only hint), read by its country calling code. ok is false when nothing matched with
// confidence; code is then Default.
func (b *Bundle) Match(hint string) (code string, ok bool) {
	if strings.TrimSpace(hint) == "" {
		return Default, false
	}
	if strings.HasPrefix(strings.TrimSpace(hint), "+") {
		if lang := languageOfPhone(hint); b.Has(lang) {
			return lang, true
		}
		return Default, false
	}
	tags, _, err := language.ParseAcceptLanguage(hint)
	if err != nil || len(tags) == 0 {
		return Default, false
	}
	_, idx, conf := b.matcher.Match(tags...)
	if conf < language.High {
		return Default, false
	}
	return b.order[idx], true
}

// Parse understands what a user types after /language: a code ("sw"), the language's own name
// ("Kiswahili") or its English name ("Swahili"), in any case.
func (b *Bundle) Parse(input string) (string, bool) {
	in := strings.ToLower(strings.TrimSpace(input))
	if in == "" {
		return "", false
	}
	for _, code := range b.order {
		l := b.langs[code].lang
		if in == strings.ToLower(code) || in == strings.ToLower(l.Name) || in == strings.ToLower(l.EnglishName) {
			return code, true
		}
	}
	if code, ok := b.Match(in); ok {
		if tag, err := language.Parse(in); err == nil && tag.String() == in {
			return code, true
		}
	}
	return "", false
}

// T returns message key in language lang (falling back to Default) with {placeholders} replaced
// by args, given as name, value pairs: T("sw", "start", "name", "Amina").
func (b *Bundle) T(lang, key string, args ...string) string {
	_, m, ok := b.lookup(lang, key)
	if !ok {
		return key
	}
	text := m.text
	if m.forms != nil {
		text = m.forms["other"]
	}
	return fill(text, args)
}

// TN is T for a message with plural forms: it picks the form for count by the language's plural
// rules and sets {count} to the number in the language's digits.
func (b *Bundle) TN(lang, key string, count int, args ...string) string {
	c, m, ok := b.lookup(lang, key)
	if !ok {
		return key
	}
	text := m.text
	if m.forms != nil {
		f := plural.Cardinal.MatchPlural(c.tag, count, 0, 0, 0, 0)
		text = m.forms["other"]
		for name, form := range pluralForms {
			if form == f && m.forms[name] != "" {
				text = m.forms[name]
			}
		}
	}
	return fill(text, append([]string{"count", b.Number(c.lang.Code, count)}, args...))
}

func (b *Bundle) lookup(lang, key string) (*catalog, message, bool) {
	c, ok := b.langs[lang]
	if !ok {
		c = b.langs[Default]
	}
	if m, ok := c.messages[key]; ok {
		return c, m, true
	}
	c = b.langs[Default]
	m, ok := c.messages[key]
	return c, m, ok
}

func fill(text string, args []string) string {
	if len(args) == 0 {
		return text
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs = append(pairs, "{"+args[i]+"}", args[i+1])
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// Number writes n in the language's digits ("৩" in Bengali).
func (b *Bundle) Number(lang string, n int) string {
	return b.printer(lang).Sprint(number.Decimal(n))
}

// Percent writes a probability as a whole percentage the way the language does ("87 %" in
// French), honestly at the ends: never "100 %" or "0 %" for a model's guess, but "<1 %" and
// ">99 %".
func (b *Bundle) Percent(lang string, p float64) string {
	pr := b.printer(lang)
	pct := func(v float64) string { return pr.Sprint(number.Percent(v, number.MaxFractionDigits(0))) }
	switch {
	case p < 0.01:
		return "<" + pct(0.01)
	case p > 0.99:
		return ">" + pct(0.99)
	}
	return pct(math.Round(p*100) / 100)
}

func (b *Bundle) printer(lang string) *msgprinter.Printer {
	c, ok := b.langs[lang]
	if !ok {
		c = b.langs[Default]
	}
	return msgprinter.NewPrinter(c.tag)
}

// Disease returns the texts of a class in lang, falling back to Default.
func (b *Bundle) Disease(lang, class string) (Disease, error) {
	if c, ok := b.langs[lang]; ok {
		if d, ok := c.diseases[class]; ok {
			return d, nil
		}
	}
	if d, ok := b.langs[Default].diseases[class]; ok {
		return d, nil
	}
	return Disease{}, fmt.Errorf("%w: %q", ErrUnknownClass, class)
}
