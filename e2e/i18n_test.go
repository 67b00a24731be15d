package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// In zh-CN the server's validation messages reach the user in Chinese: the
// camera form's and every row of a CSV import (issue 13).
func TestChineseValidationMessages(t *testing.T) {
	ctx := tab(t, true)
	logIn(t, ctx, "admin", adminPassword)
	switchToChinese(t, ctx)
	waitFor(t, ctx, "Chinese labels", `document.documentElement.lang === 'zh-CN'`, 10*time.Second)
	open(t, ctx, "/admin/cameras")
	waitFor(t, ctx, "the camera list", `document.querySelector('tr[data-camera-id="cam-01"]') !== null`, 15*time.Second)
	do(t, ctx, "save a camera with an http URL",
		chromedp.Click(chromedp.CSS(`[data-testid=camera-add]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=camera-form]`)),
		setText(`[data-testid=cam-id]`, "zh-bad-url"),
		setText(`[data-testid=cam-name]`, "坏地址"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=cam-department]`), "police"),
		setText(`[data-testid=cam-main-url]`, "http://127.0.0.1:1/x"),
		chromedp.Click(chromedp.CSS(`[data-testid=cam-save]`)))
	waitFor(t, ctx, "the Chinese form error",
		`document.querySelector('[data-testid=form-error]').textContent.includes('必须以 rtsp:// 或 rtsps:// 开头')`, 15*time.Second)
	shot(t, ctx, "40-camera-form-error-zh")
	do(t, ctx, "close the form", chromedp.KeyEvent("\x1b"))

	// A value that is no number (row 2) does not hide the bad URL of row 3.
	bad := "id,name,department,mainUrl,lat\n" +
		"zh-csv-1,一号,police,rtsp://127.0.0.1:1/a,north\n" +
		"zh-csv-2,二号,police,http://127.0.0.1:1/b,\n"
	importCSV(t, ctx, "import a bad CSV", bad)
	waitFor(t, ctx, "the Chinese row errors", `(() => {
	  const r2 = document.querySelector('[data-testid=import-errors] li[data-row="2"]');
	  const r3 = document.querySelector('[data-testid=import-errors] li[data-row="3"]');
	  return r2 && r3 && r2.textContent.includes('不是数字') && r3.textContent.includes('必须以 rtsp:// 或 rtsps:// 开头');
	})()`, 15*time.Second)
	shot(t, ctx, "41-import-errors-zh")
}
