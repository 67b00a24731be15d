package apierr

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// Languages a message is worded in.
const (
	English = "en"
	Chinese = "zh-CN"
)

// catalogText holds one message a line: code, the English format (the
// string the code passes to New or puts into a FieldError) and its
// zh-CN format, separated by tabs. The zh-CN format has the same verbs;
// %[2]s-style indexes reorder them. Lines starting with # are comments.
//
//go:embed catalog.tsv
var catalogText string

// Lang picks the language of an Accept-Language header: zh-CN for the
// first acceptable language that is Chinese, English otherwise.
func Lang(acceptLanguage string) string {
	best, bestQ := English, 0.0
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		tag = strings.ToLower(strings.TrimSpace(tag))
		var lang string
		switch {
		case tag == "zh" || strings.HasPrefix(tag, "zh-"):
			lang = Chinese
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			lang = English
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = lang, q
		}
	}
	return best
}

// Localize returns err's code and its message in lang. An error made by
// New whose format is in the catalog gets the format's code; a message
// that matches a catalog format gets that entry; any other gets the code
// of its kind (KindCode) and its English text.
func Localize(err error, lang string) (code, text string) {
	var ke *kindError
	if errors.As(err, &ke) && ke.msg == err.Error() {
		if code, text, ok := Format(lang, ke.format, ke.args...); ok {
			return code, text
		}
	}
	if code, text, ok := Translate(err.Error(), lang); ok {
		return code, text
	}
	return KindCode(err), err.Error()
}

// Format renders format with a in lang. ok is false when the catalog has
// no entry for format (text is then the English rendering).
func Format(lang, format string, a ...any) (code, text string, ok bool) {
	e := loadCatalog().byFormat[format]
	if e == nil {
		return "", fmt.Sprintf(format, a...), false
	}
	if lang != Chinese {
		return e.code, fmt.Sprintf(format, a...), true
	}
	pieces := make(map[int]string, len(e.verbs))
	for _, v := range e.verbs {
		if v.index >= len(a) {
			return e.code, fmt.Sprintf(format, a...), true
		}
		arg := a[v.index]
		switch x := arg.(type) {
		case error:
			if v.verb == 's' || v.verb == 'v' || v.verb == 'w' {
				_, pieces[v.index] = Localize(x, lang)
				continue
			}
		case string:
			if v.verb == 's' || v.verb == 'v' {
				pieces[v.index] = translateOrKeep(x, lang, 0)
				continue
			}
		}
		spec := v.spec
		if v.verb == 'w' {
			spec = "%v"
		}
		pieces[v.index] = fmt.Sprintf(spec, arg)
	}
	return e.code, e.zh.render(pieces), true
}

// Translate finds the catalog entry whose English format produced msg and
// returns msg in lang (its %s and %v parts translated too where the
// catalog knows them).
func Translate(msg, lang string) (code, text string, ok bool) {
	return translate(msg, lang, 0)
}

func translate(msg, lang string, depth int) (code, text string, ok bool) {
	for _, e := range loadCatalog().ordered {
		m := e.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		if lang != Chinese {
			return e.code, msg, true
		}
		pieces := make(map[int]string, len(e.verbs))
		for i, v := range e.verbs {
			s := m[i+1]
			if v.verb == 's' || v.verb == 'v' || v.verb == 'w' {
				s = translateOrKeep(s, lang, depth+1)
			}
			if old, seen := pieces[v.index]; !seen || old == "" {
				pieces[v.index] = s
			}
		}
		return e.code, e.zh.render(pieces), true
	}
	return "", msg, false
}

// Words returns msg in lang where the catalog knows it (also a list of
// messages joined by "; " and a message followed by its cause in
// parentheses), msg otherwise.
func Words(msg, lang string) string {
	if lang != Chinese {
		return msg
	}
	return translateOrKeep(msg, lang, 0)
}

func translateOrKeep(s, lang string, depth int) string {
	if depth > 3 || s == "" {
		return s
	}
	if _, t, ok := translate(s, lang, depth); ok {
		return t
	}
	if strings.HasSuffix(s, ")") { // a message with its cause: "... (cause)"
		for i := strings.LastIndex(s, " ("); i > 0; i = strings.LastIndex(s[:i], " (") {
			if _, t, ok := translate(s[:i], lang, depth+1); ok {
				return t + "（" + s[i+2:len(s)-1] + "）"
			}
		}
	}
	if parts := strings.Split(s, "; "); len(parts) > 1 { // a list of messages
		for i, p := range parts {
			parts[i] = translateOrKeep(p, lang, depth+1)
		}
		return strings.Join(parts, "；")
	}
	return s
}

type entry struct {
	code    string
	en      string
	zh      segments
	verbs   []verb // of the English format, in order
	re      *regexp.Regexp
	literal int // characters outside verbs: the more, the more specific
}

type catalog struct {
	byFormat map[string]*entry
	ordered  []*entry // most specific first
}

// loadCatalog is a variable so that tests can put a catalog of their own.
var loadCatalog = loadEmbedded

var loadEmbedded = sync.OnceValue(func() *catalog {
	c, err := parseCatalog(catalogText)
	if err != nil {
		panic("apierr: catalog.tsv: " + err.Error()) // TestCatalog keeps this from happening
	}
	return c
})

var codeRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`)

func parseCatalog(text string) (*catalog, error) {
	c := &catalog{byFormat: map[string]*entry{}}
	codes := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: %d tab-separated fields, want 3 (code, English, zh-CN)", n, len(f))
		}
		e, err := newEntry(f[0], f[1], f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if c.byFormat[e.en] != nil {
			return nil, fmt.Errorf("line %d: %q is already in the catalog", n, e.en)
		}
		if prev, ok := codes[e.code]; ok {
			return nil, fmt.Errorf("line %d: code %s is also the code of %q", n, e.code, prev)
		}
		codes[e.code] = e.en
		c.byFormat[e.en] = e
		c.ordered = append(c.ordered, e)
	}
	sort.SliceStable(c.ordered, func(i, j int) bool { return c.ordered[i].literal > c.ordered[j].literal })
	return c, nil
}

func newEntry(code, en, zh string) (*entry, error) {
	if !codeRE.MatchString(code) {
		return nil, fmt.Errorf("code %q is not like camera.invalid_url", code)
	}
	enSegs, err := parseFormat(en)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", en, err)
	}
	zhSegs, err := parseFormat(zh)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", zh, err)
	}
	e := &entry{code: code, en: en, zh: zhSegs}
	var re strings.Builder
	re.WriteString("^")
	verbOf := map[int]byte{}
	words := false
	for _, s := range enSegs {
		if s.verb == nil {
			re.WriteString(regexp.QuoteMeta(s.text))
			e.literal += len(strings.TrimSpace(s.text))
			words = words || strings.IndexFunc(s.text, unicode.IsLetter) >= 0
			continue
		}
		e.verbs = append(e.verbs, *s.verb)
		verbOf[s.verb.index] = s.verb.verb
		switch s.verb.verb {
		case 'q':
			re.WriteString(`("(?:[^"\\]|\\.)*")`)
		case 'd':
			re.WriteString(`([-+]?\d+)`)
		default:
			re.WriteString(`(.*?)`)
		}
	}
	re.WriteString("$")
	if !words {
		return nil, fmt.Errorf("%q has no words of its own: leave it out", en)
	}
	e.re, err = regexp.Compile(re.String())
	if err != nil {
		return nil, err
	}
	zhVerbs := map[int]byte{}
	for _, s := range zhSegs {
		if s.verb != nil {
			zhVerbs[s.verb.index] = s.verb.verb
		}
	}
	if len(zhVerbs) != len(verbOf) {
		return nil, fmt.Errorf("%q and %q do not use the same arguments", en, zh)
	}
	for i, v := range verbOf {
		if zhVerbs[i] != v {
			return nil, fmt.Errorf("argument %d is %%%c in %q but not in %q", i+1, v, en, zh)
		}
	}
	return e, nil
}

// A format is literal text and verbs.
type segments []segment

// HasWords tells whether a format has letters outside its verbs: "%s: %v"
// only passes other messages on and needs no entry of its own.
func HasWords(format string) bool {
	ss, err := parseFormat(format)
	if err != nil {
		return true
	}
	for _, s := range ss {
		if s.verb == nil && strings.IndexFunc(s.text, unicode.IsLetter) >= 0 {
			return true
		}
	}
	return false
}

type segment struct {
	text string
	verb *verb
}

type verb struct {
	index int    // of the argument, from 0
	verb  byte   // s, q, d, v, ...
	spec  string // the verb without its index, e.g. %.1f
}

func (ss segments) render(pieces map[int]string) string {
	var b strings.Builder
	for _, s := range ss {
		if s.verb == nil {
			b.WriteString(s.text)
		} else {
			b.WriteString(pieces[s.verb.index])
		}
	}
	return b.String()
}

var verbRE = regexp.MustCompile(`^%(?:\[(\d+)\])?([-+# 0]*\d*(?:\.\d*)?)([a-zA-Z])`)

func parseFormat(f string) (segments, error) {
	var ss segments
	var lit strings.Builder
	next := 0
	for i := 0; i < len(f); {
		if f[i] != '%' {
			lit.WriteByte(f[i])
			i++
			continue
		}
		if strings.HasPrefix(f[i:], "%%") {
			lit.WriteByte('%')
			i += 2
			continue
		}
		m := verbRE.FindStringSubmatch(f[i:])
		if m == nil {
			return nil, fmt.Errorf("bad verb at %q", f[i:])
		}
		if lit.Len() > 0 {
			ss = append(ss, segment{text: lit.String()})
			lit.Reset()
		}
		idx := next
		if m[1] != "" {
			n, _ := strconv.Atoi(m[1])
			if n < 1 {
				return nil, fmt.Errorf("bad index in %q", m[0])
			}
			idx = n - 1
		}
		next = idx + 1
		ss = append(ss, segment{verb: &verb{index: idx, verb: m[3][0], spec: "%" + m[2] + m[3]}})
		i += len(m[0])
	}
	if lit.Len() > 0 {
		ss = append(ss, segment{text: lit.String()})
	}
	return ss, nil
}
