package web

import (
	"encoding/json"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The app is served under CSP default-src 'self': these checks keep it so,
// and catch a module import or an i18n key that points at nothing.

func readAll(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS, p)
		if err != nil {
			return err
		}
		files[p] = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return files
}

func TestIndexAtRoot(t *testing.T) {
	b, err := fs.ReadFile(FS, "index.html")
	if err != nil {
		t.Fatalf("index.html: %v", err)
	}
	html := string(b)
	for _, ref := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if _, err := fs.Stat(FS, ref[1]); err != nil {
			t.Errorf("index.html refers to %q: %v", ref[1], err)
		}
	}
}

var (
	inlineHandlerRE = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
	inlineStyleRE   = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)
	inlineScriptRE  = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`)
	outsideURLRE    = regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?(?:https?:)?//`)
	importRE        = regexp.MustCompile(`(?m)(?:^import\s[^'"]*|^export\s[^'"]*\sfrom\s|import\()\s*['"]([^'"]+)['"]`)
	tCallRE         = regexp.MustCompile(`\bt\('([a-zA-Z0-9_.]+)'`)
	placeholderRE   = regexp.MustCompile(`\{(\w+)\}`)
)

func TestNothingCSPForbids(t *testing.T) {
	for name, src := range readAll(t) {
		switch path.Ext(name) {
		case ".html":
			if inlineHandlerRE.MatchString(src) {
				t.Errorf("%s: inline event handler", name)
			}
			if inlineStyleRE.MatchString(src) {
				t.Errorf("%s: inline style attribute", name)
			}
			if inlineScriptRE.MatchString(src) {
				t.Errorf("%s: inline script", name)
			}
			if outsideURLRE.MatchString(src) {
				t.Errorf("%s: refers to another host (the app must work offline)", name)
			}
		case ".js":
			for _, bad := range []string{"eval(", "new Function(", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "setAttribute('style'", "http://", "https://"} {
				if strings.Contains(src, bad) {
					t.Errorf("%s: uses %q", name, bad)
				}
			}
		case ".css":
			if strings.Contains(src, "@import") || strings.Contains(src, "url(http") || strings.Contains(src, "url(//") {
				t.Errorf("%s: loads from outside", name)
			}
		}
	}
}

func TestModuleImportsResolve(t *testing.T) {
	files := readAll(t)
	seen := 0
	for name, src := range files {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(src, -1) {
			seen++
			spec := m[1]
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") {
				t.Errorf("%s: import %q is not a relative path (no bundler, no bare specifiers)", name, spec)
				continue
			}
			target := path.Join(path.Dir(name), spec)
			if _, ok := files[target]; !ok {
				t.Errorf("%s: import %q: no file %s", name, spec, target)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("found only %d imports: the import pattern is broken", seen)
	}
}

func loadDict(t *testing.T, lang string) map[string]string {
	t.Helper()
	b, err := fs.ReadFile(FS, "i18n/"+lang+".json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]string
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s.json: %v", lang, err)
	}
	return d
}

func TestDictionariesMatch(t *testing.T) {
	en, zh := loadDict(t, "en"), loadDict(t, "zh-CN")
	for k, v := range en {
		z, ok := zh[k]
		if !ok {
			t.Errorf("zh-CN lacks %q", k)
			continue
		}
		if strings.TrimSpace(z) == "" || strings.TrimSpace(v) == "" {
			t.Errorf("%q is empty in a dictionary", k)
		}
		pe, pz := placeholderRE.FindAllString(v, -1), placeholderRE.FindAllString(z, -1)
		slices.Sort(pe)
		slices.Sort(pz)
		if !slices.Equal(pe, pz) {
			t.Errorf("%q: placeholders differ: en %v, zh-CN %v", k, pe, pz)
		}
	}
	for k := range zh {
		if _, ok := en[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
}

// Every literal key passed to t() exists. Keys built at run time
// (state.*, role.*, ...) are checked against the values the code builds.
func TestEveryKeyTranslated(t *testing.T) {
	en := loadDict(t, "en")
	used := 0
	for name, src := range readAll(t) {
		if path.Ext(name) != ".js" {
			continue
		}
		for _, m := range tCallRE.FindAllStringSubmatch(src, -1) {
			key := m[1]
			if strings.HasSuffix(key, ".") {
				continue // prefix of a built key
			}
			used++
			if _, ok := en[key]; !ok {
				t.Errorf("%s: t(%q) has no translation", name, key)
			}
		}
	}
	if used < 100 {
		t.Fatalf("found only %d keys: the pattern is broken", used)
	}
	var built []string
	for _, s := range []string{"online", "connecting", "offline", "disabled", "unknown", "idle"} {
		built = append(built, "state."+s)
	}
	for _, r := range []string{"admin", "operator", "responder", "viewer"} {
		built = append(built, "role."+r)
	}
	for _, v := range []string{"auto", "tcp", "udp"} {
		built = append(built, "cameras.transport."+v)
	}
	for _, z := range []string{"week", "day", "hours6", "hour", "min10", "min1"} {
		built = append(built, "timeline."+z)
	}
	for _, n := range []string{"wall", "playback", "incidents", "reports", "audit", "cameras", "departments", "users", "logout"} {
		built = append(built, "nav."+n)
	}
	for _, k := range built {
		if _, ok := en[k]; !ok {
			t.Errorf("built key %q has no translation", k)
		}
	}
}
