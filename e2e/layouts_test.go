package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The fleet's departments go round: cam-01 flood-control, cam-02 police,
// cam-03 cold-storage, cam-04 rental-housing, cam-05 flood-control, …

const layoutUserPassword = "e2e-layouts-pass-1"

// addUser creates a user through the API (a fresh name per test run of
// the shared server) and returns its name.
func addUser(t *testing.T, name, role string, departments ...string) string {
	t.Helper()
	if departments == nil {
		departments = []string{}
	}
	body := map[string]any{"username": name, "password": layoutUserPassword, "role": role, "departments": departments}
	if _, err := e2e.admin.do("POST", "/api/v1/users", body, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2e.admin.do("DELETE", "/api/v1/users/"+name, nil, http.StatusNoContent) })
	return name
}

// userTab opens a tab with its own cookies and storage, logged in as user.
func userTab(t *testing.T, user, pass string) context.Context {
	t.Helper()
	ctx := tab(t, true)
	logIn(t, ctx, user, pass)
	return ctx
}

// cellsExpr gives the camera id of every cell of the wall ("" for an
// empty cell), in order.
const cellsExpr = `[...document.querySelectorAll('[data-testid=wall-grid] > [data-cell]')].map((el) => el.dataset.cameraId || '').join(',')`

type layoutJSON struct {
	ID    string    `json:"id"`
	Name  string    `json:"name"`
	Grid  int       `json:"grid"`
	Cells []*string `json:"cells"`
}

// createLayout makes a layout as admin through the API.
func createLayout(t *testing.T, body map[string]any) layoutJSON {
	t.Helper()
	b, err := e2e.admin.do("POST", "/api/v1/layouts", body, http.StatusCreated)
	if err != nil {
		t.Fatal(err)
	}
	var l layoutJSON
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e2e.admin.do("DELETE", "/api/v1/layouts/"+l.ID, nil, http.StatusNoContent, http.StatusNotFound)
	})
	return l
}

// A layout saved by a police user and shared with police opens for
// another police user as it was saved, and for a flood-control user not
// at all (neither by URL nor in the list).
func TestLayoutSharedWithDepartment(t *testing.T) {
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e6)
	ann := addUser(t, "lay-ann-"+suffix, "responder", "police")
	bob := addUser(t, "lay-bob-"+suffix, "viewer", "police")
	cat := addUser(t, "lay-cat-"+suffix, "viewer", "flood-control")

	ctx := userTab(t, ann, layoutUserPassword)
	open(t, ctx, "/wall")
	do(t, ctx, "pick the 4-tile grid", chromedp.Click(chromedp.CSS(`[data-testid=layout-4]`)))
	waitFor(t, ctx, "four police cameras", cellsExpr+` === 'cam-02,cam-06,cam-10,cam-14'`, 20*time.Second)
	name := "Police corner " + suffix
	do(t, ctx, "save the wall as a layout shared with police",
		chromedp.Click(chromedp.CSS(`[data-testid=layout-save-as]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=layout-name]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=layout-name]`), name),
		chromedp.SetValue(chromedp.CSS(`[data-testid=layout-share]`), "police"),
		chromedp.Click(chromedp.CSS(`[data-testid=layout-dialog-save]`)))
	waitFor(t, ctx, "the layout open by URL", `location.hash.includes('layout=')`, 15*time.Second)
	hash := eval[string](t, ctx, `location.hash`)
	id := hash[strings.Index(hash, "layout=")+len("layout="):]
	if i := strings.IndexAny(id, "&"); i >= 0 {
		id = id[:i]
	}
	shot(t, ctx, "layouts-saved")

	// bob, police too, opens the link and sees the same cells.
	bctx := userTab(t, bob, layoutUserPassword)
	open(t, bctx, "/wall?layout="+id)
	waitFor(t, bctx, "the shared layout", cellsExpr+` === 'cam-02,cam-06,cam-10,cam-14'`, 20*time.Second)
	waitFor(t, bctx, "the layout in bob's list", fmt.Sprintf(`[...document.querySelectorAll('[data-testid=layout-select] option')].some((o) => o.value === %s && o.selected)`, jsString(id)), 15*time.Second)
	framesAdvance(t, bctx, `[data-testid=wall-grid] video`, 4, 5, 60*time.Second)

	// cat, flood-control, cannot open it: no tile of it, not in the list.
	cctx := userTab(t, cat, layoutUserPassword)
	open(t, cctx, "/wall?layout="+id)
	waitFor(t, cctx, "the refusal", `document.querySelector('[data-testid=wall-grid] .error-box') !== null`, 20*time.Second)
	if got := eval[string](t, cctx, cellsExpr); got != "" {
		t.Errorf("the flood-control user sees cells %q of a police layout", got)
	}
	if eval[bool](t, cctx, fmt.Sprintf(`[...document.querySelectorAll('[data-testid=layout-select] option')].some((o) => o.value === %s)`, jsString(id))) {
		t.Error("the flood-control user's list offers the police layout")
	}
	shot(t, cctx, "layouts-refused")
}

// A tour of two layouts switches between them at its dwell, measured in
// the browser.
func TestTourSwitchesAtDwell(t *testing.T) {
	a := createLayout(t, map[string]any{"name": "Tour A", "grid": 1, "cells": []any{"cam-01"}})
	b := createLayout(t, map[string]any{"name": "Tour B", "grid": 4, "cells": []any{nil, "cam-02", "cam-03", nil}})
	tour := createLayout(t, map[string]any{"name": "Night tour", "grid": 1, "cells": []any{},
		"tour": map[string]any{"layouts": []string{a.ID, b.ID}, "dwell": "5s"}})
	ctx := adminTab(t, "")
	open(t, ctx, "/wall?tour="+tour.ID)
	waitFor(t, ctx, "the tour's first step", `document.querySelector('[data-testid=tour-status]').dataset.layoutId !== undefined`, 20*time.Second)
	// Record each switch: the step's layout, what the grid shows, when.
	do(t, ctx, "watch the tour", chromedp.Evaluate[chromedp.Void](`(() => {
	  window.__tour = [];
	  const el = document.querySelector('[data-testid=tour-status]');
	  new MutationObserver(() => window.__tour.push({ id: el.dataset.layoutId, cells: `+cellsExpr+`, at: performance.now() }))
	    .observe(el, { attributes: true, attributeFilter: ['data-layout-id'] });
	})()`))
	waitFor(t, ctx, "two switches", `window.__tour.length >= 2`, 30*time.Second)
	shot(t, ctx, "tour")
	type step struct {
		ID    string  `json:"id"`
		Cells string  `json:"cells"`
		At    float64 `json:"at"`
	}
	steps := eval[[]step](t, ctx, `window.__tour`)
	want := map[string]string{a.ID: "cam-01", b.ID: ",cam-02,cam-03,"}
	for _, s := range steps[:2] {
		if want[s.ID] != s.Cells {
			t.Errorf("step %s shows cells %q, want %q", s.ID, s.Cells, want[s.ID])
		}
	}
	if steps[0].ID == steps[1].ID {
		t.Errorf("the tour did not alternate: %+v", steps)
	}
	gap := time.Duration((steps[1].At - steps[0].At) * float64(time.Millisecond))
	t.Logf("tour dwell measured in the browser: %v (configured 5s)", gap)
	if gap < 4800*time.Millisecond || gap > 9*time.Second {
		t.Errorf("a step lasted %v, want about 5s", gap)
	}
}

// Dragging one tile onto another swaps them; the open layout is saved at
// once, so the swap is still there after a reload (and in the API).
func TestDragSwapsTilesAndPersists(t *testing.T) {
	l := createLayout(t, map[string]any{"name": "Swap me", "grid": 4, "cells": []any{"cam-01", "cam-02", "cam-03", "cam-04"}})
	ctx := adminTab(t, "/wall?layout="+l.ID)
	waitFor(t, ctx, "the layout", cellsExpr+` === 'cam-01,cam-02,cam-03,cam-04'`, 20*time.Second)
	do(t, ctx, "drag cam-01 onto cam-04",
		chromedp.DragAndDrop(chromedp.CSS(`[data-testid=wall-grid] > [data-cell="0"]`), chromedp.CSS(`[data-testid=wall-grid] > [data-cell="3"]`)))
	waitFor(t, ctx, "the swap", cellsExpr+` === 'cam-04,cam-02,cam-03,cam-01'`, 10*time.Second)
	waitFor(t, ctx, "the swap saved", `document.querySelector('[data-testid=wall-grid]').dataset.savedAt !== undefined`, 15*time.Second)
	do(t, ctx, "reload", chromedp.Reload())
	waitFor(t, ctx, "the swap after the reload", cellsExpr+` === 'cam-04,cam-02,cam-03,cam-01'`, 20*time.Second)
	framesAdvance(t, ctx, `[data-testid=wall-grid] video`, 4, 5, 60*time.Second)
	shot(t, ctx, "layout-swapped")
	bb, err := e2e.admin.do("GET", "/api/v1/layouts/"+l.ID, nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var got layoutJSON
	json.Unmarshal(bb, &got)
	if got.Cells[0] == nil || *got.Cells[0] != "cam-04" || got.Cells[3] == nil || *got.Cells[3] != "cam-01" {
		t.Errorf("the server keeps %s", bb)
	}
}

// A user changes their own password on the account page and logs in
// with the new one (not the old); a token made on the page works as a
// bearer until it is revoked there.
func TestAccountPasswordAndTokens(t *testing.T) {
	user := addUser(t, fmt.Sprintf("acct-%d", time.Now().UnixNano()%1e6), "viewer")
	ctx := userTab(t, user, layoutUserPassword)
	open(t, ctx, "/account")
	do(t, ctx, "make a token",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=token-name]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=token-name]`), "e2e script"),
		chromedp.Click(chromedp.CSS(`[data-testid=token-create]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=token-secret]`)))
	secret := eval[string](t, ctx, `document.querySelector('[data-testid=token-secret]').value`)
	bearer := func() int {
		req, _ := http.NewRequest("GET", e2e.baseURL+"/api/v1/session", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := bearer(); !strings.HasPrefix(secret, "vgl_") || code != http.StatusOK {
		t.Fatalf("the token %q made on the page answers %d", secret[:min(6, len(secret))], code)
	}
	do(t, ctx, "close the token dialog", chromedp.Click(chromedp.CSS(`[data-testid=token-secret-done]`)))
	waitFor(t, ctx, "the token listed", `document.querySelectorAll('[data-testid=token-row]').length === 1`, 15*time.Second)
	shot(t, ctx, "account")
	do(t, ctx, "revoke it",
		chromedp.Click(chromedp.CSS(`[data-testid=token-row] [data-testid=token-revoke]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=confirm-ok]`)))
	waitFor(t, ctx, "the token gone", `document.querySelectorAll('[data-testid=token-row]').length === 0 && document.querySelector('[data-testid=token-list] td.muted') !== null`, 15*time.Second)
	if code := bearer(); code != http.StatusUnauthorized {
		t.Errorf("the revoked token answers %d", code)
	}

	const newPass = "e2e-changed-pass-2"
	do(t, ctx, "a wrong current password",
		chromedp.SendKeys(chromedp.CSS(`[data-testid=account-current]`), "not-my-password"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=account-new]`), newPass),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=account-repeat]`), newPass),
		chromedp.Click(chromedp.CSS(`[data-testid=account-password-save]`)))
	waitFor(t, ctx, "the refusal", `document.querySelector('[data-testid=account-password-error]').textContent.includes('current password')`, 15*time.Second)
	do(t, ctx, "change the password",
		setText(`[data-testid=account-current]`, layoutUserPassword),
		chromedp.Click(chromedp.CSS(`[data-testid=account-password-save]`)))
	waitFor(t, ctx, "the change", `[...document.querySelectorAll('[data-testid=toast]')].some((t) => t.classList.contains('toast-ok'))`, 15*time.Second)
	// The page's session goes on (a fresh one), and can still change things.
	waitFor(t, ctx, "still logged in", `document.querySelector('[data-testid=current-user]') !== null`, 5*time.Second)
	do(t, ctx, "make a token after the change",
		chromedp.SendKeys(chromedp.CSS(`[data-testid=token-name]`), "after"),
		chromedp.Click(chromedp.CSS(`[data-testid=token-create]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=token-secret]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=token-secret-done]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=logout]`)))
	if _, err := login(e2e.baseURL, user, layoutUserPassword); err == nil {
		t.Error("the old password still logs in")
	}
	// An admin's account page shows the evidence signing key.
	actx := adminTab(t, "/account")
	waitFor(t, actx, "the evidence key", `/^[0-9a-f]{64}$/.test(document.querySelector('[data-testid=evidence-key-public]').textContent)`, 15*time.Second)
	nctx := userTab(t, user, newPass)
	open(t, nctx, "/account")
	waitFor(t, nctx, "the account page", `document.querySelector('[data-testid=account-username]').textContent === `+jsString(user), 15*time.Second)
}

// clickJS clicks the element sel matches when the step runs: a table row
// that a reload re-renders between a query and a click cannot be missed.
func clickJS(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).click()`, jsString(sel)))
}

// Incidents: filter by words, edit the title, add a note, close; the
// status filter follows.
func TestIncidentEditNoteCloseFilter(t *testing.T) {
	words := fmt.Sprintf("levee breach %d", time.Now().UnixNano()%1e6)
	start := time.Now().Add(-20 * time.Minute).UTC().Truncate(time.Second)
	b, err := e2e.admin.do("POST", "/api/v1/incidents", map[string]any{"title": "E2E " + words, "cameras": []string{"cam-01", "cam-02"},
		"start": start.Format(time.RFC3339), "end": start.Add(5 * time.Minute).Format(time.RFC3339), "note": "north gate"}, http.StatusCreated)
	if err != nil {
		t.Fatal(err)
	}
	var inc struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal(b, &inc)
	t.Cleanup(func() { e2e.admin.do("DELETE", fmt.Sprintf("/api/v1/incidents/%d", inc.ID), nil, http.StatusNoContent) })
	row := fmt.Sprintf(`document.querySelector('[data-testid=incident-row][data-incident-id="%d"]')`, inc.ID)

	ctx := adminTab(t, "/incidents")
	do(t, ctx, "search its words", chromedp.WaitVisible(chromedp.CSS(`[data-testid=incident-filter-q]`)), setText(`[data-testid=incident-filter-q]`, words))
	waitFor(t, ctx, "only the incident", `document.querySelectorAll('[data-testid=incident-row]').length === 1 && `+row+` !== null`, 15*time.Second)

	do(t, ctx, "rename it",
		clickJS(fmt.Sprintf(`[data-incident-id="%d"] [data-testid=incident-edit]`, inc.ID)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=incident-edit-title]`)),
		setText(`[data-testid=incident-edit-title]`, "E2E "+words+" north"),
		chromedp.Click(chromedp.CSS(`[data-testid=incident-edit-save]`)))
	waitFor(t, ctx, "the new title", row+`.textContent.includes('north')`, 15*time.Second)

	do(t, ctx, "add a note",
		clickJS(fmt.Sprintf(`[data-incident-id="%d"] [data-testid=incident-notes]`, inc.ID)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=incident-note-text]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=incident-note-text]`), "pump 3 failed at 02:10"),
		chromedp.Click(chromedp.CSS(`[data-testid=incident-note-add]`)))
	waitFor(t, ctx, "the note in the dialog", `[...document.querySelectorAll('[data-testid=incident-note]')].some((n) => n.textContent.includes('pump 3 failed') && n.textContent.includes('admin'))`, 15*time.Second)
	shot(t, ctx, "incident-notes")
	do(t, ctx, "close the notes", chromedp.Click(chromedp.CSS(`[data-testid=incident-notes-close]`)))
	waitFor(t, ctx, "the notes count", row+`.querySelector('[data-testid=incident-notes-count]') !== null`, 15*time.Second)

	do(t, ctx, "close the incident", clickJS(fmt.Sprintf(`[data-incident-id="%d"] [data-testid=incident-close]`, inc.ID)))
	waitFor(t, ctx, "closed", row+`.dataset.status === 'closed'`, 15*time.Second)
	do(t, ctx, "show open ones only", chromedp.SetValue(chromedp.CSS(`[data-testid=incident-filter-status]`), "open"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=incident-filter-status]').dispatchEvent(new Event('change'))`))
	waitFor(t, ctx, "not among the open", row+` === null && document.querySelector('[data-testid=incidents] td.muted') !== null`, 15*time.Second)
	do(t, ctx, "show closed ones", chromedp.SetValue(chromedp.CSS(`[data-testid=incident-filter-status]`), "closed"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=incident-filter-status]').dispatchEvent(new Event('change'))`))
	waitFor(t, ctx, "among the closed", row+` !== null`, 15*time.Second)
	shot(t, ctx, "incidents-filtered")

	b, err = e2e.admin.do("GET", "/api/v1/incidents?status=closed&q="+url.QueryEscape(words), nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		ID     int64  `json:"id"`
		Title  string `json:"title"`
		Status string `json:"status"`
		Notes  []struct {
			Author, Text string
		} `json:"notes"`
	}
	json.Unmarshal(b, &got)
	found := false
	for _, g := range got {
		if g.ID == inc.ID {
			found = true
			if !strings.HasSuffix(g.Title, "north") || len(g.Notes) != 1 || g.Notes[0].Author != "admin" {
				t.Errorf("the server keeps %+v", g)
			}
		}
	}
	if !found {
		t.Errorf("the closed incident is not listed as closed: %s", b)
	}
}

// A display signed in with a link that names a tour runs it in kiosk mode:
// the tour's layouts are shared with the display's department.
func TestDisplayRunsTourFromLink(t *testing.T) {
	police := "police"
	a := createLayout(t, map[string]any{"name": "Lobby A", "grid": 1, "cells": []any{"cam-02"}, "shared": police})
	b := createLayout(t, map[string]any{"name": "Lobby B", "grid": 1, "cells": []any{"cam-06"}, "shared": police})
	tour := createLayout(t, map[string]any{"name": "Lobby tour", "grid": 1, "cells": []any{}, "shared": police,
		"tour": map[string]any{"layouts": []string{a.ID, b.ID}, "dwell": "5s"}})
	body, err := e2e.admin.do("POST", "/api/v1/displays", map[string]any{"name": "Lobby tour wall", "departments": []string{police}}, http.StatusCreated)
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ ID, Path string }
	json.Unmarshal(body, &d)
	t.Cleanup(func() { e2e.admin.do("DELETE", "/api/v1/displays/"+d.ID, nil, http.StatusNoContent) })
	ctx := tab(t, true)
	do(t, ctx, "open the display link with the tour", chromedp.Navigate(e2e.baseURL+d.Path+"&tour="+tour.ID))
	waitFor(t, ctx, "the kiosk wall running the tour", `location.hash.includes('kiosk=1') && location.hash.includes('tour=`+tour.ID+`') && document.documentElement.classList.contains('kiosk')`, 20*time.Second)
	waitFor(t, ctx, "the first layout", cellsExpr+` === 'cam-02'`, 20*time.Second)
	waitFor(t, ctx, "the second layout", cellsExpr+` === 'cam-06'`, 20*time.Second)
	framesAdvance(t, ctx, `[data-testid=wall-grid] video`, 1, 5, 60*time.Second)
	shot(t, ctx, "display-tour")
}

// The 6-tile grid is one large tile and five small ones; on the plain wall
// (no layout open) a swap stays in the browser across a reload.
func TestWallSixGridAndLocalSwap(t *testing.T) {
	user := addUser(t, fmt.Sprintf("six-%d", time.Now().UnixNano()%1e6), "viewer", "flood-control", "police")
	ctx := userTab(t, user, layoutUserPassword)
	open(t, ctx, "/wall")
	do(t, ctx, "pick the 6-tile grid", chromedp.Click(chromedp.CSS(`[data-testid=layout-6]`)))
	waitFor(t, ctx, "six cells", `document.querySelectorAll('[data-testid=wall-grid] > [data-cell]').length === 6 && document.querySelector('[data-testid=wall-grid] > [data-cell="5"]').dataset.cameraId`, 20*time.Second)
	sizes := eval[[]float64](t, ctx, `[...document.querySelectorAll('[data-testid=wall-grid] > [data-cell]')].map((el) => el.getBoundingClientRect().width * el.getBoundingClientRect().height)`)
	for i := 1; i < 6; i++ {
		if r := sizes[0] / sizes[i]; r < 3.5 || r > 4.6 {
			t.Errorf("the large tile is %.1f times tile %d, want about 4 (2 × 2 cells)", r, i)
		}
	}
	before := eval[string](t, ctx, cellsExpr)
	ids := strings.Split(before, ",")
	do(t, ctx, "drag the large tile onto the last",
		chromedp.DragAndDrop(chromedp.CSS(`[data-testid=wall-grid] > [data-cell="0"]`), chromedp.CSS(`[data-testid=wall-grid] > [data-cell="5"]`)))
	ids[0], ids[5] = ids[5], ids[0]
	want := strings.Join(ids, ",")
	waitFor(t, ctx, "the swap", cellsExpr+` === `+jsString(want), 10*time.Second)
	shot(t, ctx, "wall-six")
	do(t, ctx, "reload", chromedp.Reload())
	waitFor(t, ctx, "the swap after the reload", cellsExpr+` === `+jsString(want), 20*time.Second)
}

// A tour that names no layouts pages through the cameras, a grid at a time.
func TestTourOfCameraPages(t *testing.T) {
	tour := createLayout(t, map[string]any{"name": "All cameras", "grid": 4, "cells": []any{},
		"tour": map[string]any{"layouts": []string{}, "dwell": 5}})
	ctx := adminTab(t, "")
	open(t, ctx, "/wall?tour="+tour.ID)
	waitFor(t, ctx, "page 1", `document.querySelector('[data-testid=tour-status]').dataset.step === '0' && document.querySelectorAll('[data-testid=wall-grid] > [data-cell]').length === 4`, 20*time.Second)
	first := eval[string](t, ctx, cellsExpr)
	waitFor(t, ctx, "page 2", `document.querySelector('[data-testid=tour-status]').dataset.step === '1'`, 15*time.Second)
	second := eval[string](t, ctx, cellsExpr)
	if first == second || strings.Count(second, "cam-") != 4 {
		t.Errorf("page 1 %q, page 2 %q", first, second)
	}
}
