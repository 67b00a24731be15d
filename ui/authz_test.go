package ui

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/registry"
)

// want lists a cell's expected status per principal, in the order of
// principals: admin, operator, responder, viewer, scoped, scoped admin,
// anon, revoked.
type want [8]int

const (
	ok   = http.StatusOK
	cr   = http.StatusCreated
	nc   = http.StatusNoContent
	bad  = http.StatusBadRequest
	unau = http.StatusUnauthorized
	forb = http.StatusForbidden
	nf   = http.StatusNotFound

	conflict = http.StatusConflict
)

type matrixRow struct {
	name         string
	method, path string // {cam} is the camera, {token} admin's spare token, {incident}, {whep} a live session of operator
	body, ctype  string
	cams         map[string]want // camera → expected; a row without {cam} uses key ""
}

// matrix is every endpoint of the contract × every principal × a camera
// inside (flood-1 for the scoped user) and outside (police-1) the scope.
var matrix = []matrixRow{
	{name: "login", method: "POST", path: "/api/v1/session", ctype: "application/json", body: `{"username":"viewer","password":"` + userPassword + `"}`,
		cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, ok, unau}}},
	{name: "login (wrong password)", method: "POST", path: "/api/v1/session", ctype: "application/json", body: `{"username":"admin","password":"wrong-password"}`,
		cams: map[string]want{"": {unau, unau, unau, unau, unau, unau, unau, unau}}},
	{name: "session get", method: "GET", path: "/api/v1/session", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "session delete", method: "DELETE", path: "/api/v1/session", cams: map[string]want{"": {nc, nc, nc, nc, nc, nc, unau, unau}}},
	{name: "token create", method: "POST", path: "/api/v1/tokens", body: `{"name":"script"}`, ctype: "application/json",
		cams: map[string]want{"": {cr, cr, cr, cr, cr, cr, unau, unau}}},
	{name: "token list", method: "GET", path: "/api/v1/tokens", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "token delete (admin's)", method: "DELETE", path: "/api/v1/tokens/{token}", cams: map[string]want{"": {nc, nf, nf, nf, nf, nf, unau, unau}}},

	{name: "token delete (own)", method: "DELETE", path: "/api/v1/tokens/{own-token}", cams: map[string]want{"": {nc, nc, nc, nc, nc, nc, unau, unau}}},

	{name: "user list", method: "GET", path: "/api/v1/users", cams: map[string]want{"": {ok, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "user create", method: "POST", path: "/api/v1/users", ctype: "application/json",
		body: `{"username":"new.user","password":"a-long-password","role":"viewer","departments":["police"]}`,
		cams: map[string]want{"": {cr, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "user get", method: "GET", path: "/api/v1/users/viewer", cams: map[string]want{"": {ok, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "user put", method: "PUT", path: "/api/v1/users/viewer", ctype: "application/json", body: `{"role":"operator","departments":[]}`,
		cams: map[string]want{"": {ok, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "user delete", method: "DELETE", path: "/api/v1/users/viewer", cams: map[string]want{"": {nc, forb, forb, forb, forb, forb, unau, unau}}},

	{name: "department list", method: "GET", path: "/api/v1/departments", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "department create", method: "POST", path: "/api/v1/departments", ctype: "application/json",
		body: `{"id":"fire","name":{"zh-CN":"消防","en":"Fire"}}`, cams: map[string]want{"": {cr, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "department put", method: "PUT", path: "/api/v1/departments/police", ctype: "application/json",
		body: `{"name":{"zh-CN":"公安","en":"Police"}}`, cams: map[string]want{"": {ok, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "department delete", method: "DELETE", path: "/api/v1/departments/cold-storage", cams: map[string]want{"": {nc, forb, forb, forb, forb, forb, unau, unau}}},

	{name: "map get", method: "GET", path: "/api/v1/map", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "map image get (none)", method: "GET", path: "/api/v1/map/image", cams: map[string]want{"": {nf, nf, nf, nf, nf, nf, unau, unau}}},
	{name: "map image put", method: "PUT", path: "/api/v1/map/image", ctype: "image/png", body: testMapPNG,
		cams: map[string]want{"": {ok, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "map refs put (no image)", method: "PUT", path: "/api/v1/map", ctype: "application/json",
		body: `{"refs":[{"x":10,"y":10,"lat":22.95,"lng":113.37},{"x":300,"y":200,"lat":22.92,"lng":113.40}]}`,
		cams: map[string]want{"": {nf, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "map delete (none)", method: "DELETE", path: "/api/v1/map", cams: map[string]want{"": {nf, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "display create", method: "POST", path: "/api/v1/displays", ctype: "application/json",
		body: `{"name":"Lobby","departments":["police"]}`, cams: map[string]want{"": {cr, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "display list", method: "GET", path: "/api/v1/displays", cams: map[string]want{"": {ok, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "display get", method: "GET", path: "/api/v1/displays/nope", cams: map[string]want{"": {nf, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "display delete", method: "DELETE", path: "/api/v1/displays/nope", cams: map[string]want{"": {nf, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "display sign-in (wrong code)", method: "POST", path: "/api/v1/displays/signin", ctype: "application/json",
		body: `{"code":"wrong"}`, cams: map[string]want{"": {unau, unau, unau, unau, unau, unau, unau, unau}}},

	{name: "camera list", method: "GET", path: "/api/v1/cameras", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "camera create", method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"police-2","name":"Market","department":"police","mainUrl":"rtsp://u:p@10.0.0.2/x"}`,
		cams: map[string]want{"": {cr, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "camera import", method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv",
		body: "id,name,department,mainUrl\npolice-3,Three,police,rtsp://10.0.0.3/x\n", cams: map[string]want{"": {cr, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "camera test (new)", method: "POST", path: "/api/v1/cameras/test", ctype: "application/json",
		body: `{"mainUrl":"rtsp://10.0.0.4/x"}`, cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "status all", method: "GET", path: "/api/v1/status", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "audit", method: "GET", path: "/api/v1/audit", cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "availability", method: "GET", path: "/api/v1/reports/availability", cams: map[string]want{"": {ok, ok, ok, forb, ok, ok, unau, unau}}},
	{name: "health", method: "GET", path: "/api/v1/health", cams: map[string]want{"": {ok, ok, forb, forb, forb, ok, unau, unau}}},
	{name: "alerts test", method: "POST", path: "/api/v1/alerts/test", cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "gb28181 device list", method: "GET", path: "/api/v1/gb28181/devices", cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "gb28181 device create", method: "POST", path: "/api/v1/gb28181/devices", ctype: "application/json",
		body: `{"id":"44011300001320000009","name":"N","department":"flood-control","password":"p"}`, cams: map[string]want{"": {cr, forb, forb, forb, forb, cr, unau, unau}}},
	{name: "gb28181 device create (police)", method: "POST", path: "/api/v1/gb28181/devices", ctype: "application/json",
		body: `{"id":"44011300001320000009","name":"N","department":"police"}`, cams: map[string]want{"": {cr, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "gb28181 device get (police)", method: "GET", path: "/api/v1/gb28181/devices/44011300001320000001", cams: map[string]want{"": {ok, forb, forb, forb, forb, nf, unau, unau}}},
	{name: "gb28181 device get (flood)", method: "GET", path: "/api/v1/gb28181/devices/44011300001320000002", cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "gb28181 device put (police)", method: "PUT", path: "/api/v1/gb28181/devices/44011300001320000001", ctype: "application/json",
		body: `{"name":"X","department":"police"}`, cams: map[string]want{"": {ok, forb, forb, forb, forb, nf, unau, unau}}},
	{name: "gb28181 device put (flood)", method: "PUT", path: "/api/v1/gb28181/devices/44011300001320000002", ctype: "application/json",
		body: `{"name":"X","department":"flood-control"}`, cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "gb28181 device delete (police)", method: "DELETE", path: "/api/v1/gb28181/devices/44011300001320000001", cams: map[string]want{"": {nc, forb, forb, forb, forb, nf, unau, unau}}},
	{name: "gb28181 device delete (flood)", method: "DELETE", path: "/api/v1/gb28181/devices/44011300001320000002", cams: map[string]want{"": {nc, forb, forb, forb, forb, nc, unau, unau}}},
	{name: "gb28181 refused", method: "GET", path: "/api/v1/gb28181/refused", cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "gb28181 upstream", method: "GET", path: "/api/v1/gb28181/upstream", cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "metrics", method: "GET", path: "/metrics", cams: map[string]want{"": {ok, ok, ok, ok, forb, forb, unau, unau}}},
	{name: "healthz", method: "GET", path: "/healthz", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, ok, ok}}},
	{name: "incident list", method: "GET", path: "/api/v1/incidents", cams: map[string]want{"": {ok, forb, ok, forb, ok, ok, unau, unau}}},
	{name: "incident delete", method: "DELETE", path: "/api/v1/incidents/{incident}", cams: map[string]want{"": {nc, forb, forb, forb, forb, nf, unau, unau}}},
	{name: "whep patch (operator's session)", method: "PATCH", path: "{whep}", ctype: "application/trickle-ice-sdpfrag", body: "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
		cams: map[string]want{"": {nc, nc, nf, nf, nf, nf, unau, unau}}},
	{name: "whep delete (operator's session)", method: "DELETE", path: "{whep}", cams: map[string]want{"": {ok, ok, nf, nf, nf, nf, unau, unau}}},
	{name: "whep delete (viewer's flood-1 session)", method: "DELETE", path: "{whep-flood}", cams: map[string]want{"": {ok, nf, nf, ok, nf, ok, unau, unau}}},
	{name: "incident delete (police-1 and flood-1)", method: "DELETE", path: "/api/v1/incidents/{incident-shared}", cams: map[string]want{"": {nc, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "incident export (police-1)", method: "GET", path: "/api/v1/incidents/{incident}/export", cams: map[string]want{"": {ok, forb, ok, forb, nf, nf, unau, unau}}},
	{name: "incident export (police-1 and flood-1)", method: "GET", path: "/api/v1/incidents/{incident-shared}/export", cams: map[string]want{"": {ok, forb, ok, forb, ok, ok, unau, unau}}},
	{name: "evidence key", method: "GET", path: "/api/v1/evidence/key", cams: map[string]want{"": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "incident delete (flood-1)", method: "DELETE", path: "/api/v1/incidents/{incident-flood}", cams: map[string]want{"": {nc, forb, forb, forb, forb, nc, unau, unau}}},
	{name: "camera create (the id of police-1)", method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"police-1","name":"Market","department":"flood-control","mainUrl":"rtsp://10.0.0.2/x"}`,
		cams: map[string]want{"": {conflict, forb, forb, forb, forb, conflict, unau, unau}}},
	{name: "camera import (the id of police-1)", method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv",
		body: "id,name,department,mainUrl\npolice-1,One,flood-control,rtsp://10.0.0.3/x\n", cams: map[string]want{"": {bad, forb, forb, forb, forb, bad, unau, unau}}},
	{name: "camera import (flood-control)", method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv",
		body: "id,name,department,mainUrl\nflood-3,Three,flood-control,rtsp://10.0.0.3/x\n", cams: map[string]want{"": {cr, forb, forb, forb, forb, cr, unau, unau}}},
	{name: "missing camera", method: "GET", path: "/api/v1/cameras/ghost", cams: map[string]want{"": {nf, nf, nf, nf, nf, nf, unau, unau}}},
	{name: "cluster nodes", method: "GET", path: "/api/v1/cluster", cams: map[string]want{"": {ok, ok, forb, forb, forb, ok, unau, unau}}},

	// Per camera: police-1 is outside the scoped user's departments, flood-1 inside.
	{name: "camera get", method: "GET", path: "/api/v1/cameras/{cam}", cams: map[string]want{
		"police-1": {ok, ok, ok, ok, nf, nf, unau, unau}, "flood-1": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "camera put", method: "PUT", path: "/api/v1/cameras/{cam}", ctype: "application/json",
		body: `{"name":"Renamed","department":"flood-control","mainUrl":"rtsp://admin:***@127.0.0.1:1/main"}`, cams: map[string]want{
			"police-1": {ok, forb, forb, forb, forb, nf, unau, unau}, "flood-1": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "camera delete", method: "DELETE", path: "/api/v1/cameras/{cam}", cams: map[string]want{
		"police-1": {nc, forb, forb, forb, forb, nf, unau, unau}, "flood-1": {nc, forb, forb, forb, forb, nc, unau, unau}}},
	{name: "camera test", method: "POST", path: "/api/v1/cameras/{cam}/test", cams: map[string]want{
		"police-1": {ok, forb, forb, forb, forb, nf, unau, unau}, "flood-1": {ok, forb, forb, forb, forb, ok, unau, unau}}},
	{name: "camera status", method: "GET", path: "/api/v1/cameras/{cam}/status", cams: map[string]want{
		"police-1": {ok, ok, ok, ok, nf, nf, unau, unau}, "flood-1": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "whep offer", method: "POST", path: "/api/v1/cameras/{cam}/whep?stream=sub", ctype: "application/sdp", body: "v=0\r\n", cams: map[string]want{
		"police-1": {cr, cr, cr, cr, nf, nf, unau, unau}, "flood-1": {cr, cr, cr, cr, cr, cr, unau, unau}}},
	{name: "recordings", method: "GET", path: "/api/v1/cameras/{cam}/recordings?start=2026-11-26T07:00:00Z&end=2026-11-26T10:00:00Z", cams: map[string]want{
		"police-1": {ok, ok, ok, forb, nf, nf, unau, unau}, "flood-1": {ok, ok, ok, forb, ok, ok, unau, unau}}},
	{name: "events", method: "GET", path: "/api/v1/cameras/{cam}/events?start=2026-11-26T07:00:00Z&end=2026-11-26T10:00:00Z", cams: map[string]want{
		"police-1": {ok, ok, ok, forb, nf, nf, unau, unau}, "flood-1": {ok, ok, ok, forb, ok, ok, unau, unau}}},
	{name: "playback", method: "GET", path: "/api/v1/cameras/{cam}/playback?start=2026-11-26T08:10:00Z&duration=60", cams: map[string]want{
		"police-1": {ok, ok, ok, forb, nf, nf, unau, unau}, "flood-1": {ok, ok, ok, forb, ok, ok, unau, unau}}},
	{name: "thumbnail", method: "GET", path: "/api/v1/cameras/{cam}/thumbnail?t=2026-11-26T08:10:30Z", cams: map[string]want{
		"police-1": {ok, ok, ok, forb, nf, nf, unau, unau}, "flood-1": {ok, ok, ok, forb, ok, ok, unau, unau}}},
	{name: "export", method: "GET", path: "/api/v1/cameras/{cam}/export?start=2026-11-26T08:10:00Z&end=2026-11-26T08:20:00Z", cams: map[string]want{
		"police-1": {ok, forb, ok, forb, nf, nf, unau, unau}, "flood-1": {ok, forb, ok, forb, ok, ok, unau, unau}}},
	{name: "export package", method: "GET", path: "/api/v1/cameras/{cam}/export?start=2026-11-26T08:10:00Z&end=2026-11-26T08:20:00Z&format=package", cams: map[string]want{
		"police-1": {ok, forb, ok, forb, nf, nf, unau, unau}, "flood-1": {ok, forb, ok, forb, ok, ok, unau, unau}}},
	{name: "ptz", method: "POST", path: "/api/v1/cameras/{cam}/ptz", ctype: "application/json", body: `{"pan":0.5,"tilt":-0.5}`, cams: map[string]want{
		gbPolicePTZ: {nc, nc, nc, forb, nf, nf, unau, unau}, gbFloodPTZ: {nc, nc, nc, forb, nc, nc, unau, unau}}},
	{name: "ptz (no PTZ)", method: "POST", path: "/api/v1/cameras/{cam}/ptz", ctype: "application/json", body: `{"pan":0.5}`, cams: map[string]want{
		"police-1": {nf, nf, nf, forb, nf, nf, unau, unau}, "flood-1": {nf, nf, nf, forb, nf, nf, unau, unau}}},
	{name: "session password (wrong current)", method: "PUT", path: "/api/v1/session/password", ctype: "application/json",
		body: `{"currentPassword":"not-the-password","newPassword":"a-new-password-2"}`, cams: map[string]want{"": {forb, forb, forb, forb, forb, forb, unau, unau}}},
	{name: "session password", method: "PUT", path: "/api/v1/session/password", ctype: "application/json",
		body: `{"currentPassword":"` + userPassword + `","newPassword":"a-new-password-2"}`, cams: map[string]want{"": {forb, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "layout list", method: "GET", path: "/api/v1/layouts", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, unau, unau}}},
	{name: "layout create (private, empty)", method: "POST", path: "/api/v1/layouts", ctype: "application/json",
		body: `{"name":"Night","grid":4,"cells":[null,null,null,null],"shared":null,"tour":null}`, cams: map[string]want{"": {cr, cr, cr, cr, cr, cr, unau, unau}}},
	{name: "layout create (shared with flood-control)", method: "POST", path: "/api/v1/layouts", ctype: "application/json",
		body: `{"name":"Levee","grid":1,"cells":["flood-1"],"shared":"flood-control"}`, cams: map[string]want{"": {cr, cr, cr, cr, cr, cr, unau, unau}}},
	{name: "layout create (police-1)", method: "POST", path: "/api/v1/layouts", ctype: "application/json",
		body: `{"name":"Station","grid":1,"cells":["police-1"]}`, cams: map[string]want{"": {cr, cr, cr, cr, nf, nf, unau, unau}}},
	{name: "layout get (admin's, shared with police)", method: "GET", path: "/api/v1/layouts/{layout-police}", cams: map[string]want{"": {ok, ok, ok, ok, nf, nf, unau, unau}}},
	{name: "layout put (admin's, shared with police)", method: "PUT", path: "/api/v1/layouts/{layout-police}", ctype: "application/json",
		body: `{"name":"Renamed","grid":1,"cells":[null],"shared":"police"}`, cams: map[string]want{"": {ok, forb, forb, forb, nf, nf, unau, unau}}},
	{name: "layout delete (admin's, shared with flood-control)", method: "DELETE", path: "/api/v1/layouts/{layout-flood}", cams: map[string]want{"": {nc, forb, forb, forb, forb, nc, unau, unau}}},
	{name: "incident put (police-1)", method: "PUT", path: "/api/v1/incidents/{incident}", ctype: "application/json",
		body: `{"status":"closed"}`, cams: map[string]want{"": {ok, forb, ok, forb, nf, nf, unau, unau}}},
	{name: "incident put (police-1 and flood-1)", method: "PUT", path: "/api/v1/incidents/{incident-shared}", ctype: "application/json",
		body: `{"status":"closed"}`, cams: map[string]want{"": {ok, forb, ok, forb, forb, forb, unau, unau}}},
	{name: "incident note (police-1)", method: "POST", path: "/api/v1/incidents/{incident}/notes", ctype: "application/json",
		body: `{"text":"the gate was open"}`, cams: map[string]want{"": {cr, forb, cr, forb, nf, nf, unau, unau}}},
	{name: "incident note (flood-1)", method: "POST", path: "/api/v1/incidents/{incident-flood}/notes", ctype: "application/json",
		body: `{"text":"the gate was open"}`, cams: map[string]want{"": {cr, forb, cr, forb, cr, cr, unau, unau}}},
	{name: "incident create", method: "POST", path: "/api/v1/incidents", ctype: "application/json",
		body: `{"title":"Break-in","cameras":["{cam}"],"start":"2026-11-26T08:00:00Z","end":"2026-11-26T08:05:00Z","note":"gate"}`, cams: map[string]want{
			"police-1": {cr, forb, cr, forb, nf, nf, unau, unau}, "flood-1": {cr, forb, cr, forb, cr, cr, unau, unau}}},
}

// TestAuthorizationMatrix runs every cell against the real router and a
// real database (a fresh copy per cell, so that cells cannot affect each
// other).
func TestAuthorizationMatrix(t *testing.T) {
	cells := 0
	for _, row := range matrix {
		for cam, w := range row.cams {
			for i, who := range principals {
				name := fmt.Sprintf("%s/%s/%s", row.name, cam, who)
				t.Run(name, func(t *testing.T) {
					f := newFixture(t, Options{})
					if strings.HasPrefix(cam, "gb-") {
						addGBCamera(t, f.reg, cam, true)
					}
					path := strings.ReplaceAll(row.path, "{cam}", cam)
					path = strings.ReplaceAll(path, "{token}", f.spareToken)
					path = strings.ReplaceAll(path, "{incident}", fmt.Sprint(f.incident))
					if strings.Contains(path, "{own-token}") {
						owner := who
						if who == pAnon || who == pRevoked {
							owner = pAdmin
						}
						tok, _, err := f.reg.CreateToken(context.Background(), owner, "own")
						if err != nil {
							t.Fatal(err)
						}
						path = strings.ReplaceAll(path, "{own-token}", tok.ID)
					}
					for placeholder, o := range map[string]struct{ who, cam string }{
						"{whep}": {pOperator, "police-1"}, "{whep-flood}": {pViewer, "flood-1"}} {
						if !strings.Contains(path, placeholder) {
							continue
						}
						rec := f.do(req{method: "POST", path: "/api/v1/cameras/" + o.cam + "/whep", ctype: "application/sdp", body: "v=0\r\n", who: o.who})
						if rec.Code != cr {
							t.Fatalf("setup: whep offer %d %s", rec.Code, rec.Body)
						}
						path = rec.Header().Get("Location")
					}
					for placeholder, cams := range map[string][]string{
						"{incident-shared}": {"police-1", "flood-1"}, "{incident-flood}": {"flood-1"}} {
						if !strings.Contains(path, placeholder) {
							continue
						}
						in, err := f.reg.CreateIncident(context.Background(), registry.Incident{Title: "Levee", Cameras: cams,
							Start: fixtureT0, End: fixtureT0.Add(time.Minute), CreatedBy: pAdmin})
						if err != nil {
							t.Fatal(err)
						}
						path = strings.ReplaceAll(path, placeholder, fmt.Sprint(in.ID))
					}
					for placeholder, dept := range map[string]string{"{layout-police}": "police", "{layout-flood}": "flood-control"} {
						if !strings.Contains(path, placeholder) {
							continue
						}
						admin, err := f.reg.User(context.Background(), pAdmin)
						if err != nil {
							t.Fatal(err)
						}
						l, err := f.reg.CreateLayout(context.Background(), admin, registry.Layout{Name: "Wall", Grid: 1, Cells: []*string{nil}, Shared: &dept})
						if err != nil {
							t.Fatal(err)
						}
						path = strings.ReplaceAll(path, placeholder, l.ID)
					}
					body := strings.ReplaceAll(row.body, "{cam}", cam)
					rec := f.do(req{method: row.method, path: path, body: body, ctype: row.ctype, who: who})
					if rec.Code != w[i] {
						t.Fatalf("%s %s as %s: %d %s, want %d", row.method, path, who, rec.Code, strings.TrimSpace(rec.Body.String()), w[i])
					}
					if rec.Code >= 400 && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
						t.Fatalf("error without JSON: %s", rec.Header().Get("Content-Type"))
					}
					if strings.Contains(f.bodies.String(), camPassword) {
						t.Fatalf("the camera password is in the response: %s", rec.Body)
					}
				})
				cells++
			}
		}
	}
	t.Logf("%d cells", cells)
}

// TestScopedAdminLearnsNothingOutside: an admin limited to flood-control
// sees no other user's token, no title or note of an incident that also
// covers a police camera, and cannot tell a police camera's id from the id
// of a camera they see when creating or importing one.
func TestScopedAdminLearnsNothingOutside(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()

	rec := f.do(req{method: "GET", path: "/api/v1/tokens", who: pScopedAdmin})
	var ts []registry.Token
	if err := unmarshalStrict(rec.Body.Bytes(), &ts); err != nil || len(ts) == 0 {
		t.Fatalf("tokens: %d %s %v", rec.Code, rec.Body, err)
	}
	for _, tok := range ts {
		if tok.User != pScopedAdmin {
			t.Errorf("a limited admin lists the token %s of %s", tok.ID, tok.User)
		}
	}

	shared, err := f.reg.CreateIncident(ctx, registry.Incident{Title: "Police raid at the levee", Note: "informant: J. Doe",
		Cameras: []string{"police-1", "flood-1"}, Start: fixtureT0, End: fixtureT0.Add(time.Minute), CreatedBy: pAdmin})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/incidents",
		"/api/v1/cameras/flood-1/recordings?start=2026-11-26T07:00:00Z&end=2026-11-26T10:00:00Z"} {
		rec := f.do(req{method: "GET", path: path, who: pScopedAdmin})
		if rec.Code != ok {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		body := rec.Body.String()
		if strings.Contains(body, "raid") || strings.Contains(body, "Doe") || strings.Contains(body, "police-1") {
			t.Errorf("%s shows the shared incident's title, note or police camera: %s", path, body)
		}
		if !strings.Contains(body, fmt.Sprintf(`"id":%d`, shared.ID)) {
			t.Errorf("%s does not list the shared incident: %s", path, body)
		}
	}
	// The unlimited admin still sees all of it.
	if rec := f.do(req{method: "GET", path: "/api/v1/incidents", who: pAdmin}); !strings.Contains(rec.Body.String(), "raid") {
		t.Errorf("the admin does not see the title: %s", rec.Body)
	}

	// An id of a hidden camera and an id of a visible one answer alike.
	answer := func(r req) string {
		r.who = pScopedAdmin
		rec := f.do(r)
		return fmt.Sprintf("%d %s", rec.Code, rec.Body)
	}
	create := func(id string) req {
		return req{method: "POST", path: "/api/v1/cameras", ctype: "application/json",
			body: `{"id":"` + id + `","name":"X","department":"flood-control","mainUrl":"rtsp://10.0.0.2/x"}`}
	}
	imp := func(id string) req {
		return req{method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv",
			body: "id,name,department,mainUrl\n" + id + ",X,flood-control,rtsp://10.0.0.3/x\n"}
	}
	for what, pair := range map[string][2]req{"create": {create("police-1"), create("flood-1")}, "import": {imp("police-1"), imp("flood-1")}} {
		hidden, visible := answer(pair[0]), answer(pair[1])
		visible = strings.ReplaceAll(visible, "flood-1", "police-1")
		if hidden != visible || strings.Contains(hidden, "exist") {
			t.Errorf("%s: the id of a hidden camera answers %q, of a visible one %q", what, hidden, visible)
		}
	}
}

// TestMatrixCoversEveryRoute: every route the server registers has a row
// in the matrix, so that a new route cannot go untested for any principal.
func TestMatrixCoversEveryRoute(t *testing.T) {
	src, err := os.ReadFile("server.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`s\.(?:route|mux\.HandleFunc)\("([A-Z]+) ([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 30 {
		t.Fatalf("found %d routes in server.go: has the way routes are registered changed?", len(routes))
	}
	for _, rt := range routes {
		method, pattern := rt[1], rt[2]
		re := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(pattern), `[^/]+`) + "$")
		found := false
		for _, row := range matrix {
			path, _, _ := strings.Cut(strings.ReplaceAll(strings.ReplaceAll(row.path, "{whep-flood}", "/api/v1/whep/s"), "{whep}", "/api/v1/whep/s"), "?")
			if row.method == method && re.MatchString(path) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the route %s %s has no row in the authorization matrix", method, pattern)
		}
	}
}
