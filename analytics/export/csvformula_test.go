package export

import (
	"bytes"
	"encoding/csv"
	"regexp"
	"strings"
	"testing"
)

var csvFormulaCases = []struct{ in, want string }{
	{"openssl", "openssl"},
	{"=cmd|' /C calc'!A0", `'=cmd|' /C calc'!A0`},
	{"+SUM(1,2)", `"'+SUM(1,2)"`},
	{"-2+3+cmd|' /C calc'!A0", `'-2+3+cmd|' /C calc'!A0`},
	{"@SUM(A1)", "'@SUM(A1)"},
	{"\t=1+1", "'\t=1+1"},
	{"\r=1+1", "\"'\r=1+1\""},
	{"=HYPERLINK(\"http://x\",\"y\")", `"'=HYPERLINK(""http://x"",""y"")"`},
	{"-1.5", "-1.5"},
	{"+3e2", "+3e2"},
	{"-.5", "-.5"},
	{"-", "'-"},
	{"-1.5e", "'-1.5e"},
	{"-0x10", "'-0x10"},
	{"a=b", "a=b"},
	{"", ""},
}

// Cells a spreadsheet would evaluate are written with a leading
// apostrophe; plain numbers and ordinary text are left alone.
func TestCSVFormulaNeutralised(t *testing.T) {
	for _, c := range csvFormulaCases {
		if got := string(appendCSVField(nil, c.in)); got != c.want {
			t.Errorf("appendCSVField(%q) = %s, want %s", c.in, got, c.want)
		}
		// The encoding/csv form of the same cell.
		var b bytes.Buffer
		w := csv.NewWriter(&b)
		w.Write([]string{NeutralizeCSVCell(c.in)})
		w.Flush()
		if got := strings.TrimSuffix(b.String(), "\n"); got != c.want {
			t.Errorf("csv.Writer(NeutralizeCSVCell(%q)) = %s, want %s", c.in, got, c.want)
		}
	}
	lists := []struct {
		in   []string
		want string
	}{
		{[]string{"=1+1"}, "'=1+1"},
		{[]string{"-1"}, "-1"},
		{[]string{"-1", "2"}, "'-1;2"},
		{[]string{"CVE-1", "=x"}, "CVE-1;=x"},
		{[]string{"", "=x"}, ";=x"},
	}
	for _, c := range lists {
		if got := string(appendCSVList(nil, c.in)); got != c.want {
			t.Errorf("appendCSVList(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	// Through a whole export, read back by a CSV reader: the cell holds the
	// apostrophe and the text, nothing else.
	cols := []Column{{Name: "package", Kind: String}, {Name: "aliases", Kind: StringList}, {Name: "n", Kind: Int64}}
	b := NewBatch(cols, 1)
	b.Vecs[0].Str = append(b.Vecs[0].Str, "=HYPERLINK(\"http://evil\")")
	b.Vecs[1].Lists = append(b.Vecs[1].Lists, []string{"@x", "y"})
	b.Vecs[2].I64 = append(b.Vecs[2].I64, -5)
	b.Len = 1
	var out bytes.Buffer
	w, _ := NewWriter("csv", &out, cols)
	if err := w.WriteBatch(b); err != nil {
		t.Fatal(err)
	}
	w.Close()
	recs, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(recs[1], "|"); got != `'=HYPERLINK("http://evil")|'@x;y|-5` {
		t.Errorf("row read back: %s", got)
	}
}

// isPlainNumber is csvNumberRE (the pattern the engine path uses) without
// a regexp, and csvFormula is csvFormulaRE minus those numbers.
func FuzzCSVFormula(f *testing.F) {
	for _, c := range csvFormulaCases {
		f.Add(c.in)
	}
	sqlLiteral := strings.NewReplacer(`\\`, `\`)
	number := regexp.MustCompile(sqlLiteral.Replace(csvNumberRE))
	formula := regexp.MustCompile(sqlLiteral.Replace(csvFormulaRE))
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isPlainNumber(s), number.MatchString(s); got != want {
			t.Fatalf("isPlainNumber(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := csvFormula(s), formula.MatchString(s) && !number.MatchString(s); got != want {
			t.Fatalf("csvFormula(%q) = %v, regexps say %v", s, got, want)
		}
		// A neutralised field never starts with a formula character.
		if f := appendCSVField(nil, s); len(f) > 0 && csvFormulaStart(f[0]) && !isPlainNumber(s) {
			t.Fatalf("appendCSVField(%q) = %q", s, f)
		}
	})
}
