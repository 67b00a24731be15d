package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openTest opens a registry on a new database of the engine the tests run
// on (VIGIL_TEST_DATABASE).
func openTest(t testing.TB) *Registry {
	t.Helper()
	r, err := Open(context.Background(), testdb.OpenDB(t))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// openWithOperator opens a registry that has one operator, "op" with
// password "password1".
func openWithOperator(t *testing.T) (context.Context, *Registry) {
	t.Helper()
	ctx := context.Background()
	r := openTest(t)
	if _, err := r.CreateUser(ctx, User{Username: "op", Role: RoleOperator}, "password1"); err != nil {
		t.Fatal(err)
	}
	return ctx, r
}

// importErrors returns the rows and fields of the validation error err, as
// "row:field,...".
func importErrors(t *testing.T, err error) string {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v", err)
	}
	var got []string
	for _, e := range ve.Errors {
		got = append(got, strconv.Itoa(e.Row)+":"+e.Field)
	}
	return strings.Join(got, ",")
}

func count(t testing.TB, r *Registry, table string) int {
	t.Helper()
	var n int
	if err := r.db.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	if status == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want status %d", status)
	}
	if got := apierr.Status(err); got != status {
		t.Fatalf("status %d (%v), want %d", got, err, status)
	}
}

func goodCamera(id string) ingest.Camera {
	return ingest.Camera{ID: id, Name: "Station Rd / Market St", Department: "police",
		MainURL: "rtsp://user:secret@10.1.2.3:554/Streaming/Channels/101", Transport: "auto",
		Record: true, Enabled: true, RetentionDays: 30, Tags: []string{"river"}}
}

func TestOpenSeedsDepartmentsOnce(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	// A second Open over the same database migrates nothing and seeds nothing.
	r2, err := Open(ctx, r.db)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := r2.Departments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"flood-control": {"水利三防", "Flood control"}, "police": {"公安监控", "Police"},
		"cold-storage": {"冷库监控", "Cold storage"}, "rental-housing": {"出租屋管理", "Rental housing"},
	}
	if len(ds) != len(want) {
		t.Fatalf("departments %v", ds)
	}
	for _, d := range ds {
		if w := want[d.ID]; w != [2]string{d.Name.ZH, d.Name.EN} {
			t.Errorf("department %s: %+v, want %v", d.ID, d.Name, w)
		}
	}
}

func TestDepartments(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	wantStatus(t, r.CreateDepartment(ctx, Department{ID: "fire", Name: DepartmentName{ZH: "消防", EN: "Fire"}}), 0)
	wantStatus(t, r.CreateDepartment(ctx, Department{ID: "fire", Name: DepartmentName{ZH: "消防", EN: "Fire"}}), http.StatusConflict)
	wantStatus(t, r.CreateDepartment(ctx, Department{ID: "Fire!", Name: DepartmentName{ZH: "x", EN: "x"}}), http.StatusBadRequest)
	wantStatus(t, r.CreateDepartment(ctx, Department{ID: "empty", Name: DepartmentName{ZH: "", EN: "x"}}), http.StatusBadRequest)
	wantStatus(t, r.UpdateDepartment(ctx, Department{ID: "nope", Name: DepartmentName{ZH: "x", EN: "x"}}), http.StatusNotFound)
	c := goodCamera("fire-1")
	c.Department = "fire"
	if _, err := r.CreateCamera(ctx, c); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, r.DeleteDepartment(ctx, "fire"), http.StatusConflict)
	if _, err := r.DeleteCamera(ctx, "fire-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateUser(ctx, User{Username: "fireman", Role: RoleViewer, Departments: []string{"fire"}}, "password1"); err != nil {
		t.Fatal(err)
	}
	// Deleting the department would widen the user's scope to everything.
	wantStatus(t, r.DeleteDepartment(ctx, "fire"), http.StatusConflict)
	wantStatus(t, r.DeleteUser(ctx, "fireman"), 0)
	wantStatus(t, r.DeleteDepartment(ctx, "fire"), 0)
	wantStatus(t, r.DeleteDepartment(ctx, "fire"), http.StatusNotFound)
}

// cameraCases feed TestValidateCamera and FuzzValidateCamera.
var cameraCases = []struct {
	name   string
	mutate func(*ingest.Camera)
	field  string // "" = valid
}{
	{"valid", func(c *ingest.Camera) {}, ""},
	{"unicode name", func(c *ingest.Camera) { c.Name = "水利三防 一号闸 🌊" }, ""},
	{"rtsps", func(c *ingest.Camera) { c.MainURL = "rtsps://cam.example:322/live" }, ""},
	{"sub url", func(c *ingest.Camera) { c.SubURL = "rtsp://10.0.0.1/sub" }, ""},
	{"ipv6", func(c *ingest.Camera) { c.MainURL = "rtsp://[fe80::1]:554/x" }, ""},
	{"edge coords", func(c *ingest.Camera) { c.Location = ingest.Location{Lat: -90, Lng: 180} }, ""},
	{"id upper", func(c *ingest.Camera) { c.ID = "Police-1" }, "id"},
	{"id empty", func(c *ingest.Camera) { c.ID = "" }, "id"},
	{"id long", func(c *ingest.Camera) { c.ID = strings.Repeat("a", 65) }, "id"},
	{"id injection", func(c *ingest.Camera) { c.ID = "x'; DROP TABLE cameras;--" }, "id"},
	{"name empty", func(c *ingest.Camera) { c.Name = "  " }, "name"},
	{"name long", func(c *ingest.Camera) { c.Name = strings.Repeat("名", 201) }, "name"},
	{"name control", func(c *ingest.Camera) { c.Name = "a\x00b" }, "name"},
	{"name bad utf8", func(c *ingest.Camera) { c.Name = "a\xffb" }, "name"},
	{"department missing", func(c *ingest.Camera) { c.Department = "fire" }, "department"},
	{"department empty", func(c *ingest.Camera) { c.Department = "" }, "department"},
	{"http url", func(c *ingest.Camera) { c.MainURL = "http://10.0.0.1/x" }, "mainUrl"},
	{"no url", func(c *ingest.Camera) { c.MainURL = "" }, "mainUrl"},
	{"no host", func(c *ingest.Camera) { c.MainURL = "rtsp:///x" }, "mainUrl"},
	{"opaque", func(c *ingest.Camera) { c.MainURL = "rtsp:10.0.0.1" }, "mainUrl"},
	{"bad port", func(c *ingest.Camera) { c.MainURL = "rtsp://h:99999/x" }, "mainUrl"},
	{"space in url", func(c *ingest.Camera) { c.MainURL = "rtsp://h/a b" }, "mainUrl"},
	{"bad sub", func(c *ingest.Camera) { c.SubURL = "file:///etc/passwd" }, "subUrl"},
	{"transport", func(c *ingest.Camera) { c.Transport = "http" }, "transport"},
	{"retention negative", func(c *ingest.Camera) { c.RetentionDays = -1 }, "retentionDays"},
	{"retention big", func(c *ingest.Camera) { c.RetentionDays = 3651 }, "retentionDays"},
	{"lat", func(c *ingest.Camera) { c.Location.Lat = 90.5 }, "location.lat"},
	{"lng", func(c *ingest.Camera) { c.Location.Lng = -181 }, "location.lng"},
	{"too many tags", func(c *ingest.Camera) { c.Tags = make([]string, 33) }, "tags"},
	{"empty tag", func(c *ingest.Camera) { c.Tags = []string{""} }, "tags"},
	{"tag semicolon", func(c *ingest.Camera) { c.Tags = []string{"a;b"} }, "tags"},
	{"dup tag", func(c *ingest.Camera) { c.Tags = []string{"a", "a"} }, "tags"},
}

func deptExists(id string) bool {
	switch id {
	case "police", "flood-control", "cold-storage", "rental-housing":
		return true
	}
	return false
}

func TestValidateCamera(t *testing.T) {
	for _, tc := range cameraCases {
		t.Run(tc.name, func(t *testing.T) {
			c := goodCamera("police-007")
			tc.mutate(&c)
			errs := ValidateCamera(c, deptExists)
			if tc.field == "" {
				if len(errs) > 0 {
					t.Fatalf("errors %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tc.field {
				t.Fatalf("errors %v, want one of field %s", errs, tc.field)
			}
			for _, e := range errs {
				if strings.Contains(e.Message, "secret") {
					t.Fatalf("message leaks the password: %s", e.Message)
				}
			}
		})
	}
}

func FuzzValidateCamera(f *testing.F) {
	for _, tc := range cameraCases {
		c := goodCamera("police-007")
		tc.mutate(&c)
		f.Add(c.ID, c.Name, c.Department, c.MainURL, c.SubURL, c.Transport, c.RetentionDays, c.Location.Lat, strings.Join(c.Tags, ";"))
	}
	f.Fuzz(func(t *testing.T, id, name, dept, mainURL, subURL, transport string, days int, lat float64, tags string) {
		c := ingest.Camera{ID: id, Name: name, Department: dept, MainURL: mainURL, SubURL: subURL,
			Transport: transport, RetentionDays: days, Location: ingest.Location{Lat: lat}, Tags: strings.Split(tags, ",")}
		errs := ValidateCamera(c, deptExists)
		if pw := ingest.URLPassword(mainURL); len(pw) > 3 {
			for _, e := range errs {
				if strings.Contains(e.Message, pw) {
					t.Fatalf("message %q quotes the password", e.Message)
				}
			}
		}
		if len(errs) == 0 {
			// A valid camera is one the ingest can use.
			if !idRE.MatchString(c.ID) || !strings.HasPrefix(c.MainURL, "rtsp") || c.RetentionDays < 0 {
				t.Fatalf("accepted %+v", c)
			}
			if r := RedactCamera(c); ingest.URLPassword(r.MainURL) != "" && ingest.URLPassword(r.MainURL) != RedactedPasswd {
				t.Fatalf("redaction kept a password: %s", r.MainURL)
			}
		}
	})
}

func TestCameraCRUDAndPasswords(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	c := goodCamera("police-007")
	if _, err := r.CreateCamera(ctx, c); err != nil {
		t.Fatal(err)
	}
	_, err := r.CreateCamera(ctx, c)
	wantStatus(t, err, http.StatusConflict)
	bad := goodCamera("police-008")
	bad.Department = "nope"
	_, err = r.CreateCamera(ctx, bad)
	wantStatus(t, err, http.StatusBadRequest)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Errors[0].Field != "department" {
		t.Fatalf("error %v", err)
	}
	if n := count(t, r, "cameras"); n != 1 {
		t.Fatalf("%d cameras", n)
	}

	red := RedactCamera(c)
	if red.MainURL != "rtsp://user:***@10.1.2.3:554/Streaming/Channels/101" {
		t.Fatalf("redacted %s", red.MainURL)
	}
	// Round trip of the redacted form keeps the stored password.
	red.Name = "renamed"
	red.SubURL = "rtsp://user:***@10.1.2.3:554/Streaming/Channels/102"
	now, before, err := r.ReplaceCamera(ctx, red)
	if err != nil {
		t.Fatal(err)
	}
	if before.Name != c.Name || now.MainURL != c.MainURL || now.SubURL != "rtsp://user:secret@10.1.2.3:554/Streaming/Channels/102" {
		t.Fatalf("replaced: %+v before %+v", now, before)
	}
	got, err := r.Camera(ctx, "police-007")
	if err != nil || got.Name != "renamed" || got.MainURL != c.MainURL {
		t.Fatalf("stored %+v %v", got, err)
	}
	// A new password replaces the stored one.
	got.MainURL = "rtsp://user:new@10.1.2.3/x"
	if _, _, err := r.ReplaceCamera(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, _ = r.Camera(ctx, "police-007"); ingest.URLPassword(got.MainURL) != "new" {
		t.Fatalf("password not changed: %s", got.MainURL)
	}
	// *** with nothing stored is refused.
	noPass := goodCamera("police-009")
	noPass.MainURL = "rtsp://10.0.0.9/x"
	if _, err := r.CreateCamera(ctx, noPass); err != nil {
		t.Fatal(err)
	}
	noPass.MainURL = "rtsp://admin:***@10.0.0.9/x"
	_, _, err = r.ReplaceCamera(ctx, noPass)
	wantStatus(t, err, http.StatusBadRequest)
	_, _, err = r.ReplaceCamera(ctx, goodCamera("nope"))
	wantStatus(t, err, http.StatusNotFound)
	if _, err := r.DeleteCamera(ctx, "police-007"); err != nil {
		t.Fatal(err)
	}
	_, err = r.DeleteCamera(ctx, "police-007")
	wantStatus(t, err, http.StatusNotFound)
}

// csvCases feed TestParseCamerasCSV and FuzzParseCamerasCSV.
var csvCases = []struct {
	name string
	csv  string
	n    int      // cameras parsed
	errs []string // "row:field" of each error, in order
}{
	{"minimal", "id,name,department,mainUrl\ncam-1,One,police,rtsp://h/1\n", 1, nil},
	{"full", "\ufeffid,name,department,location.lat,location.lng,location.address,mainUrl,subUrl,transport,record,retentionDays,enabled,tags\n" +
		"cam-1,\"Gate, north\",police,22.9,113.3,\"1 Road\",rtsp://u:p@h/1,rtsp://u:p@h/2,TCP,0,7,true,a;b\n" +
		"cam-2,二号,flood-control,,,,rtsp://h/2,,,,,,\n", 2, nil},
	{"short columns", "id,name,lat,lng,address,department,mainUrl\ncam-1,x,1,2,addr,police,rtsp://h/1\n", 1, nil},
	{"empty", "", 0, []string{"1:header"}},
	{"header only", "id,name,department,mainUrl\n", 0, []string{"2:csv"}},
	{"unknown column", "id,name,department,mainUrl,color\n", 0, []string{"1:header"}},
	{"missing column", "id,name,department\n", 0, []string{"1:header"}},
	{"duplicate column", "id,name,department,mainUrl,lat,location.lat\n", 0, []string{"1:header"}},
	{"bad values", "id,name,department,mainUrl,lat,retentionDays,record\ncam-1,x,police,rtsp://h/1,north,many,maybe\n", 0,
		[]string{"2:location.lat", "2:retentionDays", "2:record"}},
	{"field count", "id,name,department,mainUrl\ncam-1,x,police\ncam-2,y,police,rtsp://h/2,extra\n", 0, []string{"2:csv", "3:csv"}},
	{"bad quote", "id,name,department,mainUrl\ncam-1,\"x,police,rtsp://h/1\n", 0, []string{"2:csv"}},
	{"injection", "id,name,department,mainUrl\ncam-1,\"'; DROP TABLE cameras;--<script>\",police,rtsp://h/1\n", 1, nil},
}

func TestParseCamerasCSV(t *testing.T) {
	for _, tc := range csvCases {
		t.Run(tc.name, func(t *testing.T) {
			cams, rows, err := ParseCamerasCSV(strings.NewReader(tc.csv))
			var got []string
			var ve *ValidationError
			if errors.As(err, &ve) {
				for _, e := range ve.Errors {
					got = append(got, strings.Join([]string{strconv.Itoa(e.Row), e.Field}, ":"))
				}
			} else if err != nil {
				t.Fatalf("error of no kind: %v", err)
			}
			if strings.Join(got, ",") != strings.Join(tc.errs, ",") {
				t.Fatalf("errors %v (%v), want %v", got, err, tc.errs)
			}
			if len(cams) != tc.n || len(rows) != tc.n {
				t.Fatalf("%d cameras, %d rows, want %d", len(cams), len(rows), tc.n)
			}
			if err != nil && apierr.Status(err) != http.StatusBadRequest {
				t.Fatalf("status %d", apierr.Status(err))
			}
		})
	}
	cams, _, err := ParseCamerasCSV(strings.NewReader(csvCases[1].csv))
	if err != nil {
		t.Fatal(err)
	}
	c := cams[0]
	if c.Name != "Gate, north" || c.Location.Lat != 22.9 || c.Location.Address != "1 Road" || c.Transport != "tcp" ||
		c.Record || c.RetentionDays != 7 || !c.Enabled || strings.Join(c.Tags, "|") != "a|b" {
		t.Fatalf("parsed %+v", c)
	}
	if c := cams[1]; !c.Record || !c.Enabled || len(c.Tags) != 0 {
		t.Fatalf("defaults %+v", c)
	}
}

func FuzzParseCamerasCSV(f *testing.F) {
	for _, tc := range csvCases {
		f.Add(tc.csv)
	}
	f.Fuzz(func(t *testing.T, data string) {
		cams, rows, err := ParseCamerasCSV(strings.NewReader(data))
		if err != nil {
			if apierr.Status(err) != http.StatusBadRequest || cams != nil {
				t.Fatalf("error %v with %d cameras", err, len(cams))
			}
			return
		}
		if len(cams) == 0 || len(cams) != len(rows) {
			t.Fatalf("%d cameras, %d rows", len(cams), len(rows))
		}
		for i := 1; i < len(rows); i++ {
			if rows[i] <= rows[i-1] || rows[0] < 2 {
				t.Fatalf("rows %v", rows)
			}
		}
		for _, c := range cams {
			ValidateCamera(c, deptExists) // must not panic
		}
	})
}

func TestImportAllOrNothing(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	if _, err := r.CreateCamera(ctx, goodCamera("existing")); err != nil {
		t.Fatal(err)
	}
	data := "id,name,department,mainUrl\nok-1,One,police,rtsp://h/1\nexisting,Two,police,rtsp://h/2\nok-1,Dup,police,rtsp://h/3\nBAD,Four,fire,http://h/4\n"
	cams, rows, err := ParseCamerasCSV(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got := importErrors(t, r.ImportCameras(ctx, cams, rows))
	if want := "3:id,4:id,5:id,5:department,5:mainUrl"; got != want {
		t.Fatalf("errors %v, want %s", got, want)
	}
	if n := count(t, r, "cameras"); n != 1 {
		t.Fatalf("%d cameras after a failed import", n)
	}
	cams, rows, _ = ParseCamerasCSV(strings.NewReader("id,name,department,mainUrl\nok-1,One,police,rtsp://h/1\nok-2,Two,police,rtsp://h/2\n"))
	if err := r.ImportCameras(ctx, cams, rows); err != nil {
		t.Fatal(err)
	}
	if n := count(t, r, "cameras"); n != 3 {
		t.Fatalf("%d cameras", n)
	}
}

func TestUsersAndPasswords(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	gen, err := r.EnsureAdmin(ctx, "")
	if err != nil || len(gen) < 16 {
		t.Fatalf("generated %q %v", gen, err)
	}
	if _, err := r.Authenticate(ctx, "admin", gen); err != nil {
		t.Fatal(err)
	}
	if again, err := r.EnsureAdmin(ctx, "other-password"); err != nil || again != "" {
		t.Fatalf("second EnsureAdmin: %q %v", again, err)
	}
	_, err = r.Authenticate(ctx, "admin", "wrong-password")
	if !IsBadCredentials(err) {
		t.Fatalf("wrong password: %v", err)
	}
	_, err = r.Authenticate(ctx, "ghost", "whatever1")
	if !IsBadCredentials(err) {
		t.Fatalf("unknown user: %v", err)
	}
	var hash string
	r.db.QueryRow(context.Background(), `SELECT hash FROM users WHERE username = 'admin'`).Scan(&hash)
	if !strings.HasPrefix(hash, "$argon2id$v=19$") || strings.Contains(hash, gen) {
		t.Fatalf("hash %s", hash)
	}

	u, err := r.CreateUser(ctx, User{Username: "li.wei", Role: RoleResponder, Departments: []string{"police", "police"}}, "password1")
	if err != nil || len(u.Departments) != 1 {
		t.Fatalf("%+v %v", u, err)
	}
	_, err = r.CreateUser(ctx, User{Username: "li.wei", Role: RoleViewer}, "password1")
	wantStatus(t, err, http.StatusConflict)
	_, err = r.CreateUser(ctx, User{Username: "x", Role: "root"}, "password1")
	wantStatus(t, err, http.StatusBadRequest)
	_, err = r.CreateUser(ctx, User{Username: "y", Role: RoleViewer}, "short")
	wantStatus(t, err, http.StatusBadRequest)
	_, err = r.CreateUser(ctx, User{Username: "z", Role: RoleViewer, Departments: []string{"fire"}}, "password1")
	wantStatus(t, err, http.StatusBadRequest)
	if n := count(t, r, "users"); n != 2 {
		t.Fatalf("%d users after failed creates", n)
	}
	_, err = r.UpdateUser(ctx, User{Username: "admin", Role: RoleViewer}, "")
	wantStatus(t, err, http.StatusConflict)
	wantStatus(t, r.DeleteUser(ctx, "admin"), http.StatusConflict)

	// A new password ends the sessions.
	sid, _, err := r.CreateSession(ctx, "li.wei", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.Session(ctx, sid); err != nil || s.User.Role != RoleResponder {
		t.Fatalf("session %+v %v", s, err)
	}
	wantStatus(t, r.SetPassword(ctx, "li.wei", "password2"), 0)
	_, err = r.Session(ctx, sid)
	wantStatus(t, err, http.StatusNotFound)
	if _, err := r.Authenticate(ctx, "li.wei", "password2"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, r.SetPassword(ctx, "ghost", "password2"), http.StatusNotFound)
}

func TestSessionsExpireAndTokensRevoke(t *testing.T) {
	ctx, r := openWithOperator(t)
	clock := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	sid, csrf, err := r.CreateSession(ctx, "op", time.Hour)
	if err != nil || csrf == "" {
		t.Fatal(err)
	}
	var stored string
	r.db.QueryRow(context.Background(), `SELECT id_hash FROM sessions`).Scan(&stored)
	if stored == sid {
		t.Fatal("session id stored in clear")
	}
	clock = clock.Add(time.Hour)
	_, err = r.Session(ctx, sid)
	wantStatus(t, err, http.StatusNotFound)

	tok, secret, err := r.CreateToken(ctx, "op", "backup script")
	if err != nil || !strings.HasPrefix(secret, TokenPrefix) {
		t.Fatal(err)
	}
	u, id, err := r.TokenUser(ctx, secret)
	if err != nil || u.Username != "op" || id != tok.ID {
		t.Fatalf("%+v %s %v", u, id, err)
	}
	list, _ := r.Tokens(ctx, "op")
	if len(list) != 1 || list[0].LastUsed.IsZero() {
		t.Fatalf("tokens %+v", list)
	}
	wantStatus(t, r.DeleteToken(ctx, tok.ID, "someone-else"), http.StatusNotFound)
	wantStatus(t, r.DeleteToken(ctx, tok.ID, "op"), 0)
	_, _, err = r.TokenUser(ctx, secret)
	wantStatus(t, err, http.StatusNotFound)
	_, _, err = r.CreateToken(ctx, "op", "")
	wantStatus(t, err, http.StatusBadRequest)
}

func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for i, e := range []AuditEntry{
		{Time: t0, User: "a", Action: "login", Result: "ok"},
		{Time: t0.Add(time.Minute), User: "b", Action: "playback", Camera: "cam-1", Start: t0, End: t0.Add(time.Hour), Result: "ok"},
		{Time: t0.Add(2 * time.Minute), User: "a", Action: "export", Camera: "cam-2", Result: "ok", Detail: "sha256=ab"},
	} {
		if err := r.Audit(ctx, e); err != nil {
			t.Fatal(i, err)
		}
	}
	all, _ := r.AuditEntries(ctx, AuditFilter{})
	if len(all) != 3 || all[0].Action != "export" || all[2].Action != "login" {
		t.Fatalf("entries %+v", all)
	}
	if got, _ := r.AuditEntries(ctx, AuditFilter{User: "a"}); len(got) != 2 {
		t.Fatalf("user filter %+v", got)
	}
	if got, _ := r.AuditEntries(ctx, AuditFilter{Camera: "cam-1"}); len(got) != 1 || !got[0].End.Equal(t0.Add(time.Hour)) {
		t.Fatalf("camera filter %+v", got)
	}
	if got, _ := r.AuditEntries(ctx, AuditFilter{From: t0.Add(time.Minute), To: t0.Add(2 * time.Minute)}); len(got) != 1 || got[0].User != "b" {
		t.Fatalf("time filter %+v", got)
	}
	if got, _ := r.AuditEntries(ctx, AuditFilter{Limit: 1}); len(got) != 1 {
		t.Fatalf("limit %+v", got)
	}
	// append-only in the database itself, whoever writes to it
	if _, err := r.db.Exec(ctx, `UPDATE audit SET result = 'forged'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("audit row updated: %v", err)
	}
	if _, err := r.db.Exec(ctx, `DELETE FROM audit WHERE username = ?`, "a"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("audit row deleted: %v", err)
	}
	if r.db.Dialect == sqldb.Postgres {
		if _, err := r.db.Exec(ctx, `TRUNCATE audit`); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("audit truncated: %v", err)
		}
	}
	if got, _ := r.AuditEntries(ctx, AuditFilter{}); len(got) != len(all) || got[0].Result != all[0].Result {
		t.Fatalf("after the refused changes: %+v", got)
	}
}

func TestIncidentsHold(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	a, err := r.CreateIncident(ctx, Incident{Title: "Flooding", Cameras: []string{"cam-2", "cam-1", "cam-1"}, Start: t0, End: t0.Add(time.Hour), CreatedBy: "resp"})
	if err != nil || len(a.Cameras) != 2 || a.ID == 0 {
		t.Fatalf("%+v %v", a, err)
	}
	b, err := r.CreateIncident(ctx, Incident{Title: "Theft", Cameras: []string{"cam-1"}, Start: t0.Add(-2 * time.Hour), End: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Incident{
		{Title: "", Cameras: []string{"cam-1"}, Start: t0, End: t0.Add(time.Hour)},
		{Title: "x", Cameras: nil, Start: t0, End: t0.Add(time.Hour)},
		{Title: "x", Cameras: []string{"cam-1"}, Start: t0, End: t0},
		{Title: "x", Cameras: []string{"Cam 1"}, Start: t0, End: t0.Add(time.Hour)},
	} {
		_, err := r.CreateIncident(ctx, bad)
		wantStatus(t, err, http.StatusBadRequest)
	}
	holds, err := r.Holds(ctx, "cam-1")
	if err != nil || len(holds) != 2 || !holds[0][0].Equal(b.Start) || !holds[1][1].Equal(a.End) {
		t.Fatalf("holds %v %v", holds, err)
	}
	if got, _ := r.Incidents(ctx, "cam-2", time.Time{}, time.Time{}); len(got) != 1 || got[0].Title != "Flooding" {
		t.Fatalf("by camera %+v", got)
	}
	if got, _ := r.Incidents(ctx, "", t0.Add(-90*time.Minute), t0.Add(-80*time.Minute)); len(got) != 1 || got[0].Title != "Theft" {
		t.Fatalf("by time %+v", got)
	}
	wantStatus(t, r.DeleteIncident(ctx, a.ID), 0)
	wantStatus(t, r.DeleteIncident(ctx, a.ID), http.StatusNotFound)
	if holds, _ := r.Holds(ctx, "cam-2"); len(holds) != 0 {
		t.Fatalf("holds after delete %v", holds)
	}
	if n := count(t, r, "incident_cameras"); n != 1 {
		t.Fatalf("%d incident cameras", n)
	}
}

// BenchmarkCheckPassword measures the cost of one login's argon2id.
func BenchmarkCheckPassword(b *testing.B) {
	h, err := hashPassword("correct-horse-1")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !checkPassword("correct-horse-1", h) {
			b.Fatal("mismatch")
		}
	}
}

// TestKeepPasswordSameEndpoint: *** takes the stored password only for the
// stored URL's scheme, host, port and user.
func TestKeepPasswordSameEndpoint(t *testing.T) {
	const stored = "rtsp://admin:s3cret@10.0.0.5/main"
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"rtsp://admin:***@10.0.0.5/other", "rtsp://admin:s3cret@10.0.0.5/other", true},
		{"rtsp://admin:***@10.0.0.5:554/main", "rtsp://admin:s3cret@10.0.0.5:554/main", true},
		{"RTSP://admin:***@10.0.0.5/main", "rtsp://admin:s3cret@10.0.0.5/main", true},
		{"rtsp://admin:***@10.0.0.6/main", "", false},
		{"rtsp://admin:***@10.0.0.5:8554/main", "", false},
		{"rtsp://root:***@10.0.0.5/main", "", false},
		{"rtsps://admin:***@10.0.0.5/main", "", false},
		{"rtsp://admin:***@10.0.0.5.evil.example/main", "", false},
		{"rtsp://admin:new@10.0.0.6/main", "rtsp://admin:new@10.0.0.6/main", true},
		{"rtsp://10.0.0.6/main", "rtsp://10.0.0.6/main", true},
	} {
		got, ok := KeepPassword(tc.in, "rtsp://10.0.0.5/nopass", stored)
		if ok != tc.ok || (ok && got != tc.want) || (!ok && strings.Contains(got, "s3cret")) {
			t.Errorf("KeepPassword(%s) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestLastAdminOfEveryDepartment: an admin limited to departments manages no
// users, so it does not count as the last admin: the only admin of every
// department can be neither deleted, demoted nor limited.
func TestLastAdminOfEveryDepartment(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	if _, err := r.EnsureAdmin(ctx, "admin-password-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateUser(ctx, User{Username: "police-admin", Role: RoleAdmin, Departments: []string{"police"}}, "password1"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, r.DeleteUser(ctx, "admin"), http.StatusConflict)
	_, err := r.UpdateUser(ctx, User{Username: "admin", Role: RoleOperator}, "")
	wantStatus(t, err, http.StatusConflict)
	_, err = r.UpdateUser(ctx, User{Username: "admin", Role: RoleAdmin, Departments: []string{"police"}}, "")
	wantStatus(t, err, http.StatusConflict)
	// With a second admin of every department, the first may go.
	if _, err := r.CreateUser(ctx, User{Username: "admin2", Role: RoleAdmin}, "password1"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteUser(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
}

// A flood of concurrent logins — for a real user and for unknown ones —
// runs at most GOMAXPROCS argon2id computations (19 MiB each) at once, and
// a login that cannot get a turn before its context ends fails with 503.
func TestAuthenticateFloodBounded(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	if _, err := r.CreateUser(ctx, User{Username: "li.wei", Role: RoleViewer}, "password1"); err != nil {
		t.Fatal(err)
	}
	const n = 24
	errs := make(chan error, n)
	for i := range n {
		go func() {
			name := "li.wei"
			if i%2 == 1 {
				name = fmt.Sprintf("ghost-%d", i)
			}
			_, err := r.Authenticate(ctx, name, "wrong-password")
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; !IsBadCredentials(err) {
			t.Fatalf("login: %v", err)
		}
	}
	limit := int64(runtime.GOMAXPROCS(0))
	if p := r.argon.peak.Load(); p > limit || p < 1 {
		t.Fatalf("peak of concurrent password hashes %d, want 1..%d", p, limit)
	}

	// Every turn taken: a login waits, and gives up with its context.
	for range limit {
		r.argon.turns <- struct{}{}
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := r.Authenticate(cctx, "li.wei", "password1")
	wantStatus(t, err, http.StatusServiceUnavailable)
	for range limit {
		<-r.argon.turns
	}
	if _, err := r.Authenticate(ctx, "li.wei", "password1"); err != nil {
		t.Fatal(err)
	}
}

// A new password ends the user's sessions and revokes their API tokens:
// whoever had learnt the old password must not keep a way in.
func TestPasswordChangeRevokesTokens(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	for _, name := range []string{"li.wei", "other"} {
		if _, err := r.CreateUser(ctx, User{Username: name, Role: RoleOperator}, "password1"); err != nil {
			t.Fatal(err)
		}
	}
	_, secret, err := r.CreateToken(ctx, "li.wei", "cron")
	if err != nil {
		t.Fatal(err)
	}
	_, otherSecret, err := r.CreateToken(ctx, "other", "cron")
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []func() error{
		func() error { return r.SetPassword(ctx, "li.wei", "password2") },
		func() error {
			_, err := r.UpdateUser(ctx, User{Username: "li.wei", Role: RoleOperator}, "password3")
			return err
		},
	} {
		if _, _, err := r.TokenUser(ctx, secret); err != nil {
			t.Fatalf("token before the change: %v", err)
		}
		if err := change(); err != nil {
			t.Fatal(err)
		}
		_, _, err = r.TokenUser(ctx, secret)
		wantStatus(t, err, http.StatusNotFound)
		if _, secret, err = r.CreateToken(ctx, "li.wei", "cron"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.TokenUser(ctx, otherSecret); err != nil {
		t.Fatalf("another user's token: %v", err)
	}
	// Changing only the role keeps the tokens.
	if _, err := r.UpdateUser(ctx, User{Username: "li.wei", Role: RoleViewer}, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.TokenUser(ctx, secret); err != nil {
		t.Fatalf("token after a role change: %v", err)
	}
}
