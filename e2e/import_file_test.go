package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// CSV import by choosing a file (not by pasting): a bad file shows every
// row's error and imports nothing; a good file imports every row.
func TestCSVImportFromFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(bad, []byte("id,name,department,mainUrl,enabled\r\n"+
		"file-ok-1,Dock 1,police,rtsp://127.0.0.1:1/a,false\r\n"+
		"file-ok-2,Dock 2,police,http://127.0.0.1:1/not-rtsp,false\r\n"+
		"file-ok-3,Dock 3,no-such-dept,rtsp://127.0.0.1:1/c,false\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("id,name,department,mainUrl,enabled,address\n"+
		"file-ok-1,Dock 1,police,rtsp://127.0.0.1:1/a,false,East dock\n"+
		"file-ok-2,Dock 2,cold-storage,rtsp://127.0.0.1:1/b,false,West dock\n"+
		"file-ok-3,Dock 3,flood-control,rtsp://127.0.0.1:1/c,false,North dock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ids := []string{"file-ok-1", "file-ok-2", "file-ok-3"}
	t.Cleanup(func() {
		for _, id := range ids {
			e2e.admin.do("DELETE", "/api/v1/cameras/"+id, nil, http.StatusNoContent, http.StatusOK, http.StatusNotFound)
		}
	})
	before := countCameras(t, e2e.admin, "")

	ctx := adminTab(t, "/admin/cameras")
	waitFor(t, ctx, "the camera list", `document.querySelector('tr[data-camera-id="cam-01"]') !== null`, 15*time.Second)
	do(t, ctx, "choose the bad file",
		chromedp.Click(chromedp.CSS(`[data-testid=camera-import]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=import-file]`)),
		chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=import-file]`), []string{bad}))
	waitFor(t, ctx, "the file read", `document.querySelector('[data-testid=import-text]').value.includes('file-ok-3')`, 10*time.Second)
	do(t, ctx, "import it", chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
	waitFor(t, ctx, "the row errors", `['3', '4'].every((n) => document.querySelector('[data-testid=import-errors] li[data-row="' + n + '"]'))`, 15*time.Second)
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll('[data-testid=import-errors] li')].map((li) => li.dataset.row + ': ' + li.textContent)`)
	shot(t, ctx, "33-import-file-errors")
	if len(rows) != 2 {
		t.Errorf("row errors %q, want rows 3 and 4 only", rows)
	}
	if n := countCameras(t, e2e.admin, ""); n != before {
		t.Errorf("a bad file changed the cameras from %d to %d", before, n)
	}
	if _, err := e2e.admin.do("GET", "/api/v1/cameras/file-ok-1", nil, http.StatusNotFound); err != nil {
		t.Errorf("a bad file imported its good row: %v", err)
	}

	do(t, ctx, "choose the good file and import it",
		chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=import-file]`), []string{good}))
	waitFor(t, ctx, "the good file read", `document.querySelector('[data-testid=import-text]').value.includes('North dock')`, 10*time.Second)
	do(t, ctx, "import it", chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
	waitFor(t, ctx, "the imported cameras in the list", `document.querySelector('[data-testid=import-dialog]') === null &&
	  ['file-ok-1', 'file-ok-2', 'file-ok-3'].every((id) => document.querySelector('tr[data-camera-id="' + id + '"]'))`, 15*time.Second)
	shot(t, ctx, "34-import-file-done")
	if n := countCameras(t, e2e.admin, ""); n != before+3 {
		t.Errorf("%d cameras after importing 3 to %d", n, before)
	}
	for i, id := range ids {
		b, err := e2e.admin.do("GET", "/api/v1/cameras/"+id, nil, http.StatusOK)
		if err != nil {
			t.Errorf("imported %s: %v", id, err)
			continue
		}
		var cam struct {
			Department string
			Location   struct{ Address string }
		}
		json.Unmarshal(b, &cam)
		want := []string{"police", "cold-storage", "flood-control"}[i]
		if cam.Department != want {
			t.Errorf("%s imported in %q, want %q", id, cam.Department, want)
		}
	}
}
