// Package locales holds CropShield's user-facing texts: one embedded message catalog per language
// (messages/CODE.json) and one disease catalog per language (diseases/CODE.json) with each model
// class's name, crop, symptoms and advice. It matches a platform's language hint to a supported
// language with golang.org/x/text/language.
//
// Messages use named placeholders such as {name}; Bundle.T fills them.
package locales

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"golang.org/x/text/language"
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
	messages map[string]string
	diseases map[string]Disease
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
	c.lang = Language{Code: code, Name: c.messages["language.name"], EnglishName: c.messages["language.english_name"]}
	return c, nil
}

// checkMessages compares every language with the default one.
func (b *Bundle) checkMessages() error {
	ref := b.langs[Default].messages
	var errs []error
	for _, code := range b.order {
		msgs := b.langs[code].messages
		for key, want := range ref {
			got, ok := msgs[key]
			if !ok || strings.TrimSpace(got) == "" {
				errs = append(errs, fmt.Errorf("%w: %s lacks message %q", ErrMissing, code, key))
				continue
			}
			if !slices.Equal(Placeholders(got), Placeholders(want)) {
				errs = append(errs, fmt.Errorf("%w: %s message %q has placeholders %v, %s has %v",
					ErrCatalog, code, key, Placeholders(got), Default, Placeholders(want)))
			}
		}
		for key := range msgs {
			if _, ok := ref[key]; !ok {
				errs = append(errs, fmt.Errorf("%w: %s has message %q that %s lacks", ErrCatalog, code, key, Default))
			}
		}
	}
	return errors.Join(errs...)
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

// Match maps a platform hint such as "pt-BR" or "sw" to a supported language. ok is false when
// nothing matched with confidence; code is then Default.
func (b *Bundle) Match(hint string) (code string, ok bool) {
	if strings.TrimSpace(hint) == "" {
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
	c, ok := b.langs[lang]
	if !ok {
		c = b.langs[Default]
	}
	msg, ok := c.messages[key]
	if !ok {
		msg, ok = b.langs[Default].messages[key]
		if !ok {
			return key
		}
	}
	if len(args) == 0 {
		return msg
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs = append(pairs, "{"+args[i]+"}", args[i+1])
	}
	return strings.NewReplacer(pairs...).Replace(msg)
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
