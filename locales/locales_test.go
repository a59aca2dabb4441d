package locales

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func TestEmbeddedCatalogsAreComplete(t *testing.T) {
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	// Every class of the shipped model has complete texts in every language.
	raw, err := os.ReadFile(filepath.Join("..", "models", "contract", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Classes []string }
	if err := json.Unmarshal(raw, &ref); err != nil || len(ref.Classes) == 0 {
		t.Fatalf("classes of the contract model: %v", err)
	}
	if err := b.CheckClasses(ref.Classes); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckClasses([]string{"banana__black_sigatoka"}); !errors.Is(err, ErrMissing) {
		t.Errorf("a class without texts: %v, want ErrMissing", err)
	}
	for _, l := range b.Languages() {
		if l.Name == "" || l.EnglishName == "" {
			t.Errorf("language %s lacks its names", l.Code)
		}
	}
}

func catalogFS(messages map[string]string, diseases string) fstest.MapFS {
	fs := fstest.MapFS{}
	for code, m := range messages {
		fs["messages/"+code+".json"] = &fstest.MapFile{Data: []byte(m)}
		fs["diseases/"+code+".json"] = &fstest.MapFile{Data: []byte(diseases)}
	}
	return fs
}

// TestCatalogChecks proves the checks fail: a missing key, different placeholders, an extra key,
// a language without disease texts.
func TestCatalogChecks(t *testing.T) {
	en := `{"language.name":"English","language.english_name":"English","hi":"Hello {name}"}`
	for _, tc := range []struct {
		name    string
		fs      fstest.MapFS
		wantErr error
		mention string
	}{
		{"complete", catalogFS(map[string]string{"en": en, "sw": `{"language.name":"Kiswahili","language.english_name":"Swahili","hi":"Habari {name}"}`}, `{}`), nil, ""},
		{"missing key", catalogFS(map[string]string{"en": en, "sw": `{"language.name":"Kiswahili","language.english_name":"Swahili"}`}, `{}`), ErrMissing, `sw lacks message "hi"`},
		{"placeholder differs", catalogFS(map[string]string{"en": en, "sw": `{"language.name":"Kiswahili","language.english_name":"Swahili","hi":"Habari {jina}"}`}, `{}`), ErrCatalog, "placeholders [{jina}]"},
		{"extra key", catalogFS(map[string]string{"en": en, "sw": `{"language.name":"Kiswahili","language.english_name":"Swahili","hi":"Habari {name}","x":"y"}`}, `{}`), ErrCatalog, `sw has message "x"`},
		{"no default", catalogFS(map[string]string{"sw": en}, `{}`), ErrCatalog, "no en catalog"},
		{"bad json", catalogFS(map[string]string{"en": `{"hi":`}, `{}`), ErrCatalog, "messages/en.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.fs)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %v, want %v mentioning %q", err, tc.wantErr, tc.mention)
			}
		})
	}
	fs := catalogFS(map[string]string{"en": en}, `{}`)
	delete(fs, "diseases/en.json")
	if _, err := load(fs); !errors.Is(err, ErrCatalog) {
		t.Errorf("language without disease texts: %v", err)
	}
}

func TestMatchParseAndT(t *testing.T) {
	en := `{"language.name":"English","language.english_name":"English","hi":"Hello {name}, {name}!"}`
	sw := `{"language.name":"Kiswahili","language.english_name":"Swahili","hi":"Habari {name}, {name}!"}`
	pt := `{"language.name":"Português","language.english_name":"Portuguese","hi":"Olá {name}, {name}!"}`
	b, err := load(catalogFS(map[string]string{"en": en, "sw": sw, "pt": pt}, `{"tomato__late_blight":{"name":"Late blight","crop":"Tomato","symptoms":["s"],"advice":["a"],"urgency":"u","call_expert":"c"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hint, want string
		ok         bool
	}{
		{"sw", "sw", true}, {"sw-KE", "sw", true}, {"pt-BR", "pt", true}, {"fr-FR,sw;q=0.8", "sw", true},
		{"de", "en", false}, {"", "en", false}, {"!!", "en", false},
		{"+254712345678", "sw", true}, {"+5511987654321", "pt", true}, {"+4915112345678", "en", false}, {"+919812345678", "en", false},
	} {
		if got, ok := b.Match(tc.hint); got != tc.want || ok != tc.ok {
			t.Errorf("Match(%q) = %s %v, want %s %v", tc.hint, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"sw", "sw", true}, {"Kiswahili", "sw", true}, {"SWAHILI", "sw", true}, {" pt ", "pt", true},
		{"português", "pt", true}, {"klingon", "", false}, {"", "", false},
	} {
		if got, ok := b.Parse(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("Parse(%q) = %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if got := b.T("sw", "hi", "name", "Amina"); got != "Habari Amina, Amina!" {
		t.Errorf("T = %q", got)
	}
	if got := b.T("xx", "hi", "name", "Ann"); got != "Hello Ann, Ann!" {
		t.Errorf("unknown language falls back to English: %q", got)
	}
	if got := b.T("en", "no.such.key"); got != "no.such.key" {
		t.Errorf("unknown key: %q", got)
	}
	if d, err := b.Disease("sw", "tomato__late_blight"); err != nil || d.Name != "Late blight" {
		t.Errorf("Disease: %+v %v", d, err)
	}
	if _, err := b.Disease("en", "nope"); !errors.Is(err, ErrUnknownClass) {
		t.Errorf("unknown class: %v", err)
	}
}

func TestPhoneHints(t *testing.T) {
	for _, tc := range []struct{ phone, want string }{
		{"+254712345678", "sw"}, {"+255754000000", "sw"}, {"+2348031234567", "ha"}, {"+251911000000", "am"},
		{"+919812345678", "hi"}, {"+8801712345678", "bn"}, {"+6281234567890", "id"}, {"+5511987654321", "pt"},
		{"+258841234567", "pt"}, {"+221771234567", "fr"}, {"+5215512345678", "es"},
		{"+4915112345678", ""}, {"254712345678", ""}, {"+", ""},
	} {
		if got := languageOfPhone(tc.phone); got != tc.want {
			t.Errorf("languageOfPhone(%q) = %q, want %q", tc.phone, got, tc.want)
		}
	}
}
