package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// setText puts text into a field the way a user's paste would (input event).
func setText(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
	  const el = document.querySelector(%s);
	  el.value = %s;
	  el.dispatchEvent(new Event('input', { bubbles: true }));
	})()`, jsString(sel), jsString(text)))
}

func TestCSVImportShowsRowErrors(t *testing.T) {
	ctx := adminTab(t, "/admin/cameras")
	waitFor(t, ctx, "the camera list", `document.querySelector('tr[data-camera-id="cam-01"]') !== null`, 15*time.Second)
	// Row 3 has a bad id, row 4 an unknown department: nothing is imported.
	bad := "id,name,department,mainUrl,enabled\n" +
		"csv-ok-1,Pier 1,police,rtsp://127.0.0.1:1/a,false\n" +
		"CSV BAD,Pier 2,police,rtsp://127.0.0.1:1/b,false\n" +
		"csv-ok-3,Pier 3,no-such-dept,rtsp://127.0.0.1:1/c,false\n"
	importCSV(t, ctx, "import a bad CSV", bad)
	waitFor(t, ctx, "the row errors", `document.querySelector('[data-testid=import-errors] li[data-row="3"]') !== null && document.querySelector('[data-testid=import-errors] li[data-row="4"]') !== null`, 15*time.Second)
	shot(t, ctx, "23-import-errors")
	if _, err := e2e.admin.do("GET", "/api/v1/cameras/csv-ok-1", nil, http.StatusNotFound); err != nil {
		t.Errorf("a bad import added a camera: %v", err)
	}
	good := "id,name,department,mainUrl,enabled,address\n" +
		"csv-ok-1,Pier 1,police,rtsp://user:secret@127.0.0.1:1/a,false,North pier\n" +
		"csv-ok-2,Pier 2,cold-storage,rtsp://127.0.0.1:1/b,false,South pier\n"
	do(t, ctx, "import a good CSV",
		setText(`[data-testid=import-text]`, good),
		chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
	waitFor(t, ctx, "the imported cameras", `document.querySelector('[data-testid=import-dialog]') === null && document.querySelector('tr[data-camera-id="csv-ok-1"]') !== null && document.querySelector('tr[data-camera-id="csv-ok-2"]') !== null`, 15*time.Second)

	// Edit keeps the hidden password: the form shows ***, saving sends it back.
	do(t, ctx, "edit an imported camera",
		chromedp.Click(chromedp.CSS(`tr[data-camera-id="csv-ok-1"] [data-testid=camera-edit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=camera-form]`)))
	if u := eval[string](t, ctx, `document.querySelector('[data-testid=cam-main-url]').value`); u != "rtsp://user:***@127.0.0.1:1/a" {
		t.Errorf("the form shows the main URL as %q", u)
	}
	do(t, ctx, "rename and save",
		setText(`[data-testid=cam-name]`, "Pier 1 renamed"),
		chromedp.Click(chromedp.CSS(`[data-testid=cam-save]`)))
	waitFor(t, ctx, "the renamed camera", `document.querySelector('[data-testid=camera-dialog]') === null && document.querySelector('tr[data-camera-id="csv-ok-1"]').textContent.includes('Pier 1 renamed')`, 15*time.Second)
	var cam struct{ MainURL string }
	b, err := e2e.admin.do("GET", "/api/v1/cameras/csv-ok-1", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cam); err != nil || cam.MainURL != "rtsp://user:***@127.0.0.1:1/a" {
		t.Errorf("after the edit the API answers mainUrl %q (%v)", cam.MainURL, err)
	}
	for _, id := range []string{"csv-ok-1", "csv-ok-2"} {
		do(t, ctx, "delete "+id,
			chromedp.Click(chromedp.CSS(`tr[data-camera-id="`+id+`"] [data-testid=camera-delete]`)),
			chromedp.Click(chromedp.CSS(`[data-testid=confirm-ok]`)))
		waitFor(t, ctx, id+" gone", `document.querySelector('tr[data-camera-id="`+id+`"]') === null`, 15*time.Second)
	}
}

func TestDepartmentsAdmin(t *testing.T) {
	ctx := adminTab(t, "/admin/departments")
	waitFor(t, ctx, "the departments", `document.querySelectorAll('[data-testid=admin-departments] tr[data-department-id]').length >= 4`, 15*time.Second)
	do(t, ctx, "add a department",
		chromedp.Click(chromedp.CSS(`[data-testid=department-add]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dept-id]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=dept-id]`), "e2e-harbour"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=dept-name-zh]`), "港务监控"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=dept-name-en]`), "Harbour"),
		chromedp.Click(chromedp.CSS(`[data-testid=dept-save]`)))
	waitFor(t, ctx, "the new department", `document.querySelector('tr[data-department-id="e2e-harbour"]') && document.querySelector('tr[data-department-id="e2e-harbour"]').textContent.includes('港务监控')`, 15*time.Second)
	shot(t, ctx, "24-departments")
	// A department with cameras cannot be deleted: the page says why.
	do(t, ctx, "try to delete police",
		chromedp.Click(chromedp.CSS(`tr[data-department-id="police"] [data-testid=department-delete]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=confirm-ok]`)))
	waitFor(t, ctx, "the refusal", `[...document.querySelectorAll('[data-testid=toast]')].some((t) => t.classList.contains('toast-error'))`, 15*time.Second)
	do(t, ctx, "delete the new department",
		chromedp.Click(chromedp.CSS(`tr[data-department-id="e2e-harbour"] [data-testid=department-delete]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=confirm-ok]`)))
	waitFor(t, ctx, "the department gone", `document.querySelector('tr[data-department-id="e2e-harbour"]') === null && document.querySelector('tr[data-department-id="police"]') !== null`, 15*time.Second)
}
