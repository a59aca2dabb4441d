package locales

import (
	"errors"
	"testing"
)

func TestParseCrop(t *testing.T) {
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"maize", "corn", true},
		{"Corn", "corn", true},
		{"MAHINDI", "corn", true},
		{"masara", "corn", true},
		{"मक्का", "corn", true},
		{"milho", "corn", true},
		{"maïs", "corn", true},
		{"MAIS", "corn", true},
		{"maíz", "corn", true},
		{"jagung", "corn", true},
		{"ভুট্টা", "corn", true},
		{"በቆሎ", "corn", true},
		{"  tomatoes. ", "tomato", true},
		{"nyanya", "tomato", true},
		{"pomme de terre", "potato", true},
		{"Pomme", "apple", true},
		{"maharage", "bean", true},
		{"feijão", "bean", true},
		{"FEIJAO", "bean", true},
		{"any", AnyCrop, true},
		{"yoyote", AnyCrop, true},
		{"other", OtherCrop, true},
		{"Another crop", OtherCrop, true},
		{"zao jingine", OtherCrop, true},
		{"Autre culture", OtherCrop, true},
		{"दूसरी फ़सल", OtherCrop, true},
		{"cassava", "", false},
		{"maize tomato", "", false},
		{"cornflakes", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := b.ParseCrop(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseCrop(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestFindCrop(t *testing.T) {
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		caption string
		want    string
		wantOK  bool
	}{
		{"my maize is sick", "corn", true},
		{"Mahindi yangu yana madoa", "corn", true},
		{"/diagnose masara", "corn", true},
		{"मेरी मक्का की पत्ती", "corn", true},
		{"Folha de MILHO!", "corn", true},
		{"feuille de pomme de terre", "potato", true},
		{"ganda la nyanya, nyanya yangu", "tomato", true},
		{"maize or tomato?", "", false},
		{"cornflakes", "", false},
		{"look at this leaf", "", false},
		{"any idea?", "", false},               // the words that clear a choice are no crop
		{"my other maize field", "corn", true}, // nor are the words of "another crop"
		{"another crop", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.caption, func(t *testing.T) {
			got, ok := b.FindCrop(tt.caption)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("FindCrop(%q) = %q, %v; want %q, %v", tt.caption, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestCrops: every crop of the disease catalogs can be named in every language, its name in the
// disease texts is understood, and no name belongs to two crops (parseCrops refuses that).
func TestCrops(t *testing.T) {
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseCrops(cropsJSON); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckCrops(b.Classes()); err != nil {
		t.Error(err)
	}
	if err := b.CheckCrops([]string{"cassava__mosaic"}); !errors.Is(err, ErrMissing) {
		t.Errorf("CheckCrops of a crop without names: %v, want ErrMissing", err)
	}
	if _, err := parseCrops([]byte(`{"corn": {"en": ["maize"]}, "tomato": {"en": ["Maize"]}}`)); !errors.Is(err, ErrCatalog) {
		t.Errorf("a name of two crops: %v, want ErrCatalog", err)
	}
	for _, l := range b.Languages() {
		for _, class := range b.Classes() {
			crop := CropOf(class)
			name := b.CropName(l.Code, crop)
			if got, ok := b.FindCrop(name); !ok || got != crop {
				t.Errorf("%s: the disease texts' crop name %q of %s is read as %q, %v", l.Code, name, class, got, ok)
			}
		}
	}
	for _, l := range b.Languages() {
		// The "another crop" button's label, typed, is the same answer.
		label := b.T(l.Code, "crop.another")
		if got, ok := b.ParseCrop(label); !ok || got != OtherCrop {
			t.Errorf("%s: the label %q of the \"another crop\" choice is read as %q, %v", l.Code, label, got, ok)
		}
	}
	if got := b.CropName("sw", "corn"); got != "Mahindi" {
		t.Errorf(`CropName("sw", "corn") = %q, want "Mahindi"`, got)
	}
}

// TestShownCropNamesParseBack: every crop name the bot shows (in a question's choices, in the
// list of crops it knows), in every language, is understood when a farmer types it back.
func TestShownCropNamesParseBack(t *testing.T) {
	b, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range b.order {
		for class := range b.langs[code].diseases {
			crop := CropOf(class)
			name := b.CropName(code, crop)
			if got, ok := b.ParseCrop(name); !ok || got != crop {
				t.Errorf("%s: %q (crop %s) parses as %q, %v", code, name, crop, got, ok)
			}
		}
	}
}
