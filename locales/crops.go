package locales

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// crops.json: crop names and common synonyms by crop id (the part of a class id before "__") and
// language, under "any" the words that clear a chat's crop, and under "other" the words that
// answer "which crop?" with "another crop" (one the model does not know).
//
//go:embed crops.json
var cropsJSON []byte

// AnyCrop is the pseudo crop of the words that clear a chat's crop ("/crop any").
const AnyCrop = "any"

// OtherCrop is the pseudo crop of the words that answer "which crop is this?" with "another
// crop" ("other", "zao jingine", "autre culture"): a crop the model does not know.
const OtherCrop = "other"

// pseudoCrop: AnyCrop and OtherCrop are words of the conversation, not crops; a caption naming
// them names no crop.
func pseudoCrop(crop string) bool { return crop == AnyCrop || crop == OtherCrop }

// cropName is one name of a crop as words, normalized.
type cropName struct {
	crop  string
	words []string
}

type cropTable struct {
	names map[string]map[string][]string // crop → language → names as written
	index []cropName                     // every name, most words first
}

var crops = func() cropTable {
	t, err := parseCrops(cropsJSON)
	if err != nil {
		panic(err) // an embedded file: TestCrops reads it
	}
	return t
}()

func parseCrops(raw []byte) (cropTable, error) {
	t := cropTable{names: map[string]map[string][]string{}}
	if err := json.Unmarshal(raw, &t.names); err != nil {
		return cropTable{}, fmt.Errorf("%w: crops.json: %w", ErrCatalog, err)
	}
	owner := map[string]string{}
	for crop, langs := range t.names {
		for lang, names := range langs {
			for _, n := range names {
				w := cropWords(n)
				if len(w) == 0 {
					return cropTable{}, fmt.Errorf("%w: crops.json: empty %s name of %s", ErrCatalog, lang, crop)
				}
				key := strings.Join(w, " ")
				if o, ok := owner[key]; ok && o != crop {
					return cropTable{}, fmt.Errorf("%w: crops.json: %q names both %s and %s", ErrCatalog, n, o, crop)
				}
				if _, ok := owner[key]; !ok {
					owner[key] = crop
					t.index = append(t.index, cropName{crop: crop, words: w})
				}
			}
		}
		// The crop id itself ("corn", as in the class ids) is a name too.
		if _, ok := owner[crop]; !ok && !pseudoCrop(crop) {
			owner[crop] = crop
			t.index = append(t.index, cropName{crop: crop, words: []string{crop}})
		}
	}
	slices.SortFunc(t.index, func(a, b cropName) int {
		if d := len(b.words) - len(a.words); d != 0 {
			return d
		}
		return strings.Compare(strings.Join(a.words, " "), strings.Join(b.words, " "))
	})
	return t, nil
}

// cropWords folds s for matching (lower case, Latin accents removed: "Maïs" → "mais") and cuts
// it into words: runs of letters, marks and digits.
func cropWords(s string) []string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		if r >= 0x300 && r <= 0x36f { // combining diacritical marks (accents of Latin letters)
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	folded := norm.NFC.String(b.String())
	return strings.FieldsFunc(folded, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsDigit(r)
	})
}

// CropOf is the crop of a class id: "corn" for "corn__common_rust".
func CropOf(class string) string {
	crop, _, _ := strings.Cut(class, "__")
	return crop
}

// ParseCrop understands what a farmer types after /crop or as the answer to "which crop?": one
// crop's name or synonym in any supported language ("maize", "Mahindi", "मक्का", "MAÏS"), or
// the crop id. AnyCrop is returned for the words that clear the choice ("any", "yoyote"),
// OtherCrop for "another crop" ("other", "nyingine"). Failing an exact name, a text that names
// exactly one crop among other words is that crop: the names the bot itself shows ("Corn
// (maize)", "Orange (citrus)"), copied back from a question.
func (b *Bundle) ParseCrop(input string) (string, bool) {
	w := cropWords(input)
	if len(w) == 0 {
		return "", false
	}
	for _, n := range crops.index {
		if slices.Equal(n.words, w) {
			return n.crop, true
		}
	}
	return b.FindCrop(input)
}

// FindCrop looks for crop names in a text (a photo's caption) as whole words and returns the
// crop when the text names exactly one (a longer name wins over the words in it: "pomme de
// terre" is a potato, not an apple). The words that clear a choice or say "another crop" are
// not looked for ("my other maize field" is maize).
func (b *Bundle) FindCrop(text string) (string, bool) {
	w := cropWords(text)
	found := ""
	for i := 0; i < len(w); {
		n, ok := matchAt(w, i)
		if !ok {
			i++
			continue
		}
		if found != "" && found != n.crop {
			return "", false // two crops named: which one the photo shows is not said
		}
		found = n.crop
		i += len(n.words)
	}
	return found, found != ""
}

func matchAt(w []string, i int) (cropName, bool) {
	for _, n := range crops.index {
		if !pseudoCrop(n.crop) && i+len(n.words) <= len(w) && slices.Equal(w[i:i+len(n.words)], n.words) {
			return n, true
		}
	}
	return cropName{}, false
}

// CropName is a crop's name in lang as the disease texts write it ("Mahindi"), the crop id if no
// class of the crop has texts.
func (b *Bundle) CropName(lang, crop string) string {
	c, ok := b.langs[lang]
	if !ok {
		c = b.langs[Default]
	}
	for _, class := range slices.Sorted(maps.Keys(c.diseases)) {
		if CropOf(class) == crop {
			return c.diseases[class].Crop
		}
	}
	return crop
}

// CheckCrops reports crops of the classes without names in crops.json in some language, so that
// a farmer can name every crop the model knows.
func (b *Bundle) CheckCrops(classes []string) error {
	var errs []error
	seen := map[string]bool{}
	for _, class := range classes {
		crop := CropOf(class)
		if seen[crop] {
			continue
		}
		seen[crop] = true
		for _, code := range b.order {
			if len(crops.names[crop][code]) == 0 {
				errs = append(errs, fmt.Errorf("%w: crops.json has no %s name of crop %q", ErrMissing, code, crop))
			}
		}
	}
	return errors.Join(errs...)
}
