package apierr

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	if _, err := parseCatalog(catalogText); err != nil {
		t.Fatal(err)
	}
}

func TestParseCatalogRefuses(t *testing.T) {
	for _, line := range []string{
		"camera.x\tis empty",                              // two fields
		"Camera\tis empty\t为空",                            // code not dotted lower case
		"camera.x\t%s\t%s",                                // no words
		"camera.x\t%q is taken\t已被占用",                     // verb missing in zh
		"camera.x\t%q is taken\t%[1]d 已被占用",               // other verb
		"camera.x\tis empty\t为空\ncamera.x\tis full\t已满",   // code twice
		"camera.x\tis empty\t为空\ncamera.y\tis empty\t为空的", // format twice
	} {
		if _, err := parseCatalog(line); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}

func TestLang(t *testing.T) {
	for h, want := range map[string]string{
		"":                           English,
		"zh-CN":                      Chinese,
		"zh":                         Chinese,
		"zh-Hans-CN,zh;q=0.9":        Chinese,
		"en-US,en;q=0.9,zh-CN;q=0.8": English,
		"fr,zh-CN;q=0.5":             Chinese,
		"de":                         English,
		"zh-CN;q=0.2,en;q=0.7":       English,
	} {
		if got := Lang(h); got != want {
			t.Errorf("Lang(%q) = %s, want %s", h, got, want)
		}
	}
}

func testCatalog(t *testing.T) {
	t.Helper()
	c, err := parseCatalog("t.taken\tcamera %q already exists\t摄像机 %q 已存在\n" +
		"t.order\t%d of %s done\t%[2]s 已完成 %[1]d 项\n" +
		"t.empty\tis empty\t为空\n" +
		"t.tag\ttag %q %s\t标签 %q %s\n" +
		"t.wrap\tcannot save: %v\t无法保存：%v\n")
	if err != nil {
		t.Fatal(err)
	}
	loadCatalog = func() *catalog { return c }
	t.Cleanup(func() { loadCatalog = loadEmbedded })
}

func TestLocalize(t *testing.T) {
	testCatalog(t)
	for _, tc := range []struct {
		err        error
		lang       string
		code, text string
	}{
		{New(ErrConflict, "camera %q already exists", "gate-1"), Chinese, "t.taken", `摄像机 "gate-1" 已存在`},
		{New(ErrConflict, "camera %q already exists", "gate-1"), English, "t.taken", `camera "gate-1" already exists`},
		{New(ErrInvalid, "%d of %s done", 3, "export"), Chinese, "t.order", "export 已完成 3 项"},
		{New(ErrInvalid, "cannot save: %v", New(ErrInvalid, "is empty")), Chinese, "t.wrap", "无法保存：为空"},
		{New(ErrInvalid, "cannot save: %v", errors.New("disk full")), Chinese, "t.wrap", "无法保存：disk full"},
		{New(ErrNotFound, "no such thing %q", "x"), Chinese, "not_found", `no such thing "x"`},
		{New(ErrInvalid, "%s", "is empty"), Chinese, "t.empty", "为空"},
		{New(ErrInvalid, "cannot save: %v", errors.New(`tag "a" is empty (read tcp: i/o timeout)`)), Chinese, "t.wrap", `无法保存：标签 "a" 为空（read tcp: i/o timeout）`},
		{New(ErrInvalid, "cannot save: %s", "is empty; tag \"a\" is empty; odd"), Chinese, "t.wrap", `无法保存：为空；标签 "a" 为空；odd`},
		{fmt.Errorf("cannot save: %w", New(ErrInvalid, "is empty")), Chinese, "t.wrap", "无法保存：为空"},
		{errors.New("boom"), Chinese, "internal", "boom"},
	} {
		code, text := Localize(tc.err, tc.lang)
		if code != tc.code || text != tc.text {
			t.Errorf("Localize(%q, %s) = %s %q, want %s %q", tc.err, tc.lang, code, text, tc.code, tc.text)
		}
	}
}

func TestTranslate(t *testing.T) {
	testCatalog(t)
	for msg, want := range map[string]string{
		`camera "a \"b\"" already exists`: `摄像机 "a \"b\"" 已存在`,
		`tag "x" is empty`:                `标签 "x" 为空`,
		`7 of the work done`:              `the work 已完成 7 项`,
		`is empty!`:                       ``,
	} {
		_, got, ok := Translate(msg, Chinese)
		if want == "" {
			if ok {
				t.Errorf("Translate(%q) = %q, want no match", msg, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("Translate(%q) = %q %v, want %q", msg, got, ok, want)
		}
	}
}

// TestEveryMessageInCatalog walks the module's source: every literal
// format given to apierr.New or errStatus, put in a FieldError's Message,
// given to ValidateCamera's add, appended to a list named msgs or returned
// by the registry's field checkers, or put in a PullError's Msg or a
// StreamStatus's LastError must have a line in catalog.tsv (code, English, zh-CN).
func TestEveryMessageInCatalog(t *testing.T) {
	root := moduleRoot(t)
	c := loadCatalog()
	missing := map[string][]string{}
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, m := range messageFormats(f) {
			n++
			if c.byFormat[m.format] == nil && HasWords(m.format) {
				rel, _ := filepath.Rel(root, fset.Position(m.pos).Filename)
				missing[m.format] = append(missing[m.format], fmt.Sprintf("%s:%d", rel, fset.Position(m.pos).Line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("found only %d messages in %s: the walk is broken", n, root)
	}
	keys := make([]string, 0, len(missing))
	for k := range missing {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Errorf("%s: %q has no line in internal/apierr/catalog.tsv (code<TAB>English<TAB>zh-CN)", strings.Join(missing[k], ", "), k)
	}
}

type message struct {
	pos    token.Pos
	format string
}

// checkers are the registry's functions that return a field's message.
var checkers = map[string]bool{"checkText": true, "checkRTSPURL": true, "setCSVField": true, "skewText": true}

func messageFormats(f *ast.File) []message {
	var out []message
	lit := func(e ast.Expr) {
		if s, ok := stringLit(e); ok {
			out = append(out, message{e.Pos(), s})
		} else if call, ok := e.(*ast.CallExpr); ok && isSel(call.Fun, "fmt", "Sprintf") && len(call.Args) > 0 {
			if s, ok := stringLit(call.Args[0]); ok {
				out = append(out, message{e.Pos(), s})
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.FuncDecl:
			if checkers[x.Name.Name] && x.Body != nil {
				ast.Inspect(x.Body, func(n ast.Node) bool {
					if r, ok := n.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
						lit(r.Results[0])
					}
					return true
				})
			}
		case *ast.CallExpr:
			switch {
			case isSel(x.Fun, "apierr", "New") && len(x.Args) > 1:
				lit(x.Args[1])
			case isIdent(x.Fun, "errStatus") && len(x.Args) > 1:
				lit(x.Args[1])
			case isIdent(x.Fun, "add") && f.Name.Name == "registry" && len(x.Args) > 1:
				lit(x.Args[1])
			case isIdent(x.Fun, "append") && len(x.Args) > 1 && isIdent(x.Args[0], "msgs"):
				for _, a := range x.Args[1:] { // msgs: the parts of a "user: %s"
					lit(a)
				}
			}
		case *ast.CompositeLit:
			// The types whose field holds a message: FieldError.Message and
			// ingest's PullError.Msg (a camera's error shown by Test connection).
			fieldErr := func(e ast.Expr) bool {
				return isIdent(e, "FieldError") || isSel(e, "registry", "FieldError") || isIdent(e, "PullError") || isSel(e, "ingest", "PullError")
			}
			var elems []*ast.CompositeLit
			if fieldErr(x.Type) || isIdent(x.Type, "StreamStatus") || isSel(x.Type, "ingest", "StreamStatus") {
				elems = append(elems, x)
			} else if at, ok := x.Type.(*ast.ArrayType); ok && fieldErr(at.Elt) {
				for _, el := range x.Elts { // []FieldError{{...}}: the type is elided
					if cl, ok := el.(*ast.CompositeLit); ok && cl.Type == nil {
						elems = append(elems, cl)
					}
				}
			}
			for _, cl := range elems {
				for _, el := range cl.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok && (isIdent(kv.Key, "Message") || isIdent(kv.Key, "Msg") || isIdent(kv.Key, "LastError")) {
						lit(kv.Value)
					}
				}
			}
		}
		return true
	})
	return out
}

func stringLit(e ast.Expr) (string, bool) {
	if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.ADD { // "..." + "..."
		x, ok1 := stringLit(b.X)
		y, ok2 := stringLit(b.Y)
		return x + y, ok1 && ok2
	}
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(b.Value)
	return s, err == nil && s != ""
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isSel(e ast.Expr, pkg, name string) bool {
	s, ok := e.(*ast.SelectorExpr)
	return ok && s.Sel.Name == name && isIdent(s.X, pkg)
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// Every entry's English text, with any arguments, is found again as that
// entry: no other format swallows it (Translate picks the most specific).
func TestEveryEntryTranslatesBack(t *testing.T) {
	c := loadCatalog()
	for _, e := range c.ordered {
		args := make([]any, 0, len(e.verbs))
		for i, v := range e.verbs {
			switch v.verb {
			case 'd':
				args = append(args, 7+i)
			case 'q':
				args = append(args, fmt.Sprintf("arg-%d", i))
			default:
				args = append(args, fmt.Sprintf("thing%d", i))
			}
		}
		msg := fmt.Sprintf(e.en, args...)
		code, zh, ok := Translate(msg, Chinese)
		if !ok || code != e.code {
			t.Errorf("%q (%s) translates as %s %q", msg, e.code, code, zh)
			continue
		}
		if code, text := Localize(New(ErrInvalid, e.en, args...), Chinese); code != e.code || text != zh {
			t.Errorf("%q: Localize %s %q, Translate %q", msg, code, text, zh)
		}
	}
}

func FuzzTranslate(f *testing.F) {
	for _, e := range loadCatalog().ordered {
		f.Add(e.en)
	}
	f.Add(`camera "a" already exists (x (y))`)
	f.Fuzz(func(t *testing.T, msg string) {
		code, text, ok := Translate(msg, Chinese)
		if ok != (code != "") || (!ok && text != msg) {
			t.Fatalf("Translate(%q) = %q %q %v", msg, code, text, ok)
		}
	})
}
