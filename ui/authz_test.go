package ui

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// want lists a cell's expected status per principal, in the order of
// principals: admin, operator, responder, viewer, scoped, anon, revoked.
type want [7]int

const (
	ok   = http.StatusOK
	cr   = http.StatusCreated
	nc   = http.StatusNoContent
	bad  = http.StatusBadRequest
	unau = http.StatusUnauthorized
	forb = http.StatusForbidden
	nf   = http.StatusNotFound
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
	{name: "session get", method: "GET", path: "/api/v1/session", cams: map[string]want{"": {ok, ok, ok, ok, ok, unau, unau}}},
	{name: "session delete", method: "DELETE", path: "/api/v1/session", cams: map[string]want{"": {nc, nc, nc, nc, nc, unau, unau}}},
	{name: "token create", method: "POST", path: "/api/v1/tokens", body: `{"name":"script"}`, ctype: "application/json",
		cams: map[string]want{"": {cr, cr, cr, cr, cr, unau, unau}}},
	{name: "token list", method: "GET", path: "/api/v1/tokens", cams: map[string]want{"": {ok, ok, ok, ok, ok, unau, unau}}},
	{name: "token delete (admin's)", method: "DELETE", path: "/api/v1/tokens/{token}", cams: map[string]want{"": {nc, nf, nf, nf, nf, unau, unau}}},

	{name: "user list", method: "GET", path: "/api/v1/users", cams: map[string]want{"": {ok, forb, forb, forb, forb, unau, unau}}},
	{name: "user create", method: "POST", path: "/api/v1/users", ctype: "application/json",
		body: `{"username":"new.user","password":"a-long-password","role":"viewer","departments":["police"]}`,
		cams: map[string]want{"": {cr, forb, forb, forb, forb, unau, unau}}},
	{name: "user get", method: "GET", path: "/api/v1/users/viewer", cams: map[string]want{"": {ok, forb, forb, forb, forb, unau, unau}}},
	{name: "user put", method: "PUT", path: "/api/v1/users/viewer", ctype: "application/json", body: `{"role":"operator","departments":[]}`,
		cams: map[string]want{"": {ok, forb, forb, forb, forb, unau, unau}}},
	{name: "user delete", method: "DELETE", path: "/api/v1/users/viewer", cams: map[string]want{"": {nc, forb, forb, forb, forb, unau, unau}}},

	{name: "department list", method: "GET", path: "/api/v1/departments", cams: map[string]want{"": {ok, ok, ok, ok, ok, unau, unau}}},
	{name: "department create", method: "POST", path: "/api/v1/departments", ctype: "application/json",
		body: `{"id":"fire","name":{"zh-CN":"消防","en":"Fire"}}`, cams: map[string]want{"": {cr, forb, forb, forb, forb, unau, unau}}},
	{name: "department put", method: "PUT", path: "/api/v1/departments/police", ctype: "application/json",
		body: `{"name":{"zh-CN":"公安","en":"Police"}}`, cams: map[string]want{"": {ok, forb, forb, forb, forb, unau, unau}}},
	{name: "department delete", method: "DELETE", path: "/api/v1/departments/cold-storage", cams: map[string]want{"": {nc, forb, forb, forb, forb, unau, unau}}},

	{name: "camera list", method: "GET", path: "/api/v1/cameras", cams: map[string]want{"": {ok, ok, ok, ok, ok, unau, unau}}},
	{name: "camera create", method: "POST", path: "/api/v1/cameras", ctype: "application/json",
		body: `{"id":"police-2","name":"Market","department":"police","mainUrl":"rtsp://u:p@10.0.0.2/x"}`,
		cams: map[string]want{"": {cr, forb, forb, forb, forb, unau, unau}}},
	{name: "camera import", method: "POST", path: "/api/v1/cameras/import", ctype: "text/csv",
		body: "id,name,department,mainUrl\npolice-3,Three,police,rtsp://10.0.0.3/x\n", cams: map[string]want{"": {cr, forb, forb, forb, forb, unau, unau}}},
	{name: "camera test (new)", method: "POST", path: "/api/v1/cameras/test", ctype: "application/json",
		body: `{"mainUrl":"rtsp://10.0.0.4/x"}`, cams: map[string]want{"": {ok, forb, forb, forb, forb, unau, unau}}},
	{name: "status all", method: "GET", path: "/api/v1/status", cams: map[string]want{"": {ok, ok, ok, ok, ok, unau, unau}}},
	{name: "audit", method: "GET", path: "/api/v1/audit", cams: map[string]want{"": {ok, forb, forb, forb, forb, unau, unau}}},
	{name: "availability", method: "GET", path: "/api/v1/reports/availability", cams: map[string]want{"": {ok, ok, ok, forb, ok, unau, unau}}},
	{name: "metrics", method: "GET", path: "/metrics", cams: map[string]want{"": {ok, ok, ok, ok, forb, unau, unau}}},
	{name: "healthz", method: "GET", path: "/healthz", cams: map[string]want{"": {ok, ok, ok, ok, ok, ok, ok}}},
	{name: "incident list", method: "GET", path: "/api/v1/incidents", cams: map[string]want{"": {ok, forb, ok, forb, ok, unau, unau}}},
	{name: "incident delete", method: "DELETE", path: "/api/v1/incidents/{incident}", cams: map[string]want{"": {nc, forb, forb, forb, forb, unau, unau}}},
	{name: "whep patch (operator's session)", method: "PATCH", path: "{whep}", ctype: "application/trickle-ice-sdpfrag", body: "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
		cams: map[string]want{"": {nc, nc, nf, nf, nf, unau, unau}}},
	{name: "whep delete (operator's session)", method: "DELETE", path: "{whep}", cams: map[string]want{"": {ok, ok, nf, nf, nf, unau, unau}}},
	{name: "missing camera", method: "GET", path: "/api/v1/cameras/ghost", cams: map[string]want{"": {nf, nf, nf, nf, nf, unau, unau}}},

	// Per camera: police-1 is outside the scoped user's departments, flood-1 inside.
	{name: "camera get", method: "GET", path: "/api/v1/cameras/{cam}", cams: map[string]want{
		"police-1": {ok, ok, ok, ok, nf, unau, unau}, "flood-1": {ok, ok, ok, ok, ok, unau, unau}}},
	{name: "camera put", method: "PUT", path: "/api/v1/cameras/{cam}", ctype: "application/json",
		body: `{"name":"Renamed","department":"flood-control","mainUrl":"rtsp://admin:***@127.0.0.1:1/main"}`, cams: map[string]want{
			"police-1": {ok, forb, forb, forb, forb, unau, unau}, "flood-1": {ok, forb, forb, forb, forb, unau, unau}}},
	{name: "camera delete", method: "DELETE", path: "/api/v1/cameras/{cam}", cams: map[string]want{
		"police-1": {nc, forb, forb, forb, forb, unau, unau}, "flood-1": {nc, forb, forb, forb, forb, unau, unau}}},
	{name: "camera test", method: "POST", path: "/api/v1/cameras/{cam}/test", cams: map[string]want{
		"police-1": {ok, forb, forb, forb, forb, unau, unau}, "flood-1": {ok, forb, forb, forb, forb, unau, unau}}},
	{name: "camera status", method: "GET", path: "/api/v1/cameras/{cam}/status", cams: map[string]want{
		"police-1": {ok, ok, ok, ok, nf, unau, unau}, "flood-1": {ok, ok, ok, ok, ok, unau, unau}}},
	{name: "whep offer", method: "POST", path: "/api/v1/cameras/{cam}/whep?stream=sub", ctype: "application/sdp", body: "v=0\r\n", cams: map[string]want{
		"police-1": {cr, cr, cr, cr, nf, unau, unau}, "flood-1": {cr, cr, cr, cr, cr, unau, unau}}},
	{name: "recordings", method: "GET", path: "/api/v1/cameras/{cam}/recordings?start=2026-11-26T07:00:00Z&end=2026-11-26T10:00:00Z", cams: map[string]want{
		"police-1": {ok, ok, ok, forb, nf, unau, unau}, "flood-1": {ok, ok, ok, forb, ok, unau, unau}}},
	{name: "playback", method: "GET", path: "/api/v1/cameras/{cam}/playback?start=2026-11-26T08:10:00Z&duration=60", cams: map[string]want{
		"police-1": {ok, ok, ok, forb, nf, unau, unau}, "flood-1": {ok, ok, ok, forb, ok, unau, unau}}},
	{name: "export", method: "GET", path: "/api/v1/cameras/{cam}/export?start=2026-11-26T08:10:00Z&end=2026-11-26T08:20:00Z", cams: map[string]want{
		"police-1": {ok, forb, ok, forb, nf, unau, unau}, "flood-1": {ok, forb, ok, forb, ok, unau, unau}}},
	{name: "incident create", method: "POST", path: "/api/v1/incidents", ctype: "application/json",
		body: `{"title":"Break-in","cameras":["{cam}"],"start":"2026-11-26T08:00:00Z","end":"2026-11-26T08:05:00Z","note":"gate"}`, cams: map[string]want{
			"police-1": {cr, forb, cr, forb, nf, unau, unau}, "flood-1": {cr, forb, cr, forb, cr, unau, unau}}},
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
					path := strings.ReplaceAll(row.path, "{cam}", cam)
					path = strings.ReplaceAll(path, "{token}", f.spareToken)
					path = strings.ReplaceAll(path, "{incident}", fmt.Sprint(f.incident))
					if strings.Contains(path, "{whep}") {
						rec := f.do(req{method: "POST", path: "/api/v1/cameras/police-1/whep", ctype: "application/sdp", body: "v=0\r\n", who: pOperator})
						if rec.Code != cr {
							t.Fatalf("setup: whep offer %d %s", rec.Code, rec.Body)
						}
						path = rec.Header().Get("Location")
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
