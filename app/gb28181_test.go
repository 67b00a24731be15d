package app_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestGB28181Registers: with gb28181 enabled, a device an admin added
// through the API registers with digest over SIP and shows online; an
// unknown one is listed as refused.
func TestGB28181Registers(t *testing.T) {
	cfg := sqliteConfig(t, t.TempDir(), gbSQLite)
	cfg.GB28181.Enabled = true
	cfg.GB28181.Listen = "127.0.0.1:0"
	cfg.GB28181.Password = "default-pw"
	a, ctx, _ := newApp(t, cfg)
	runApp(ctx, a)
	<-a.Ready()
	c := login(t, a.URL(), "admin", adminPassword)
	const id = "44011300001320000001"
	code, body := c.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": id, "name": "NVR", "department": "police"})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	udp, _ := a.GB28181Addr()

	register := func(user, password string) int {
		ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer ua.Close()
		cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		host, port, _ := net.SplitHostPort(udp)
		p, _ := strconv.Atoi(port)
		req := sip.NewRequest(sip.REGISTER, sip.Uri{User: cfg.GB28181.ID, Host: host, Port: p})
		from := &sip.FromHeader{Address: sip.Uri{User: user, Host: cfg.GB28181.Realm}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(10))
		req.AppendHeader(from)
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: user, Host: cfg.GB28181.Realm}, Params: sip.NewParams()})
		req.AppendHeader(sip.NewHeader("Expires", "3600"))
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := cl.Do(rctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == 401 {
			if res, err = cl.DoDigestAuth(rctx, req, res, sipgo.DigestAuth{Username: user, Password: password}); err != nil {
				t.Fatal(err)
			}
		}
		return res.StatusCode
	}
	if got := register(id, "default-pw"); got != 200 {
		t.Fatalf("register: %d", got)
	}
	code, body = c.do("GET", "/api/v1/gb28181/devices/"+id, nil)
	var d struct {
		State, Transport string
		Since            *time.Time
		Channels         []string
	}
	if code != http.StatusOK || json.Unmarshal(body, &d) != nil || d.State != "online" || d.Transport != "udp" || d.Since == nil || d.Channels == nil {
		t.Fatalf("device: %d %s", code, body)
	}
	if got := register("44011300001320000077", "x"); got != 403 {
		t.Fatalf("unknown device: %d", got)
	}
	code, body = c.do("GET", "/api/v1/gb28181/refused", nil)
	var refused []struct{ ID string }
	if code != http.StatusOK || json.Unmarshal(body, &refused) != nil || len(refused) != 1 || refused[0].ID != "44011300001320000077" {
		t.Fatalf("refused: %d %s", code, body)
	}
	// The admin adds it: it leaves the refused list and registers.
	code, body = c.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": "44011300001320000077", "name": "IPC", "department": "police", "password": "own-pw"})
	if code != http.StatusCreated {
		t.Fatalf("add the refused device: %d %s", code, body)
	}
	if code, body = c.do("GET", "/api/v1/gb28181/refused", nil); string(body) != "[]\n" && string(body) != "[]" {
		t.Fatalf("refused after adding: %d %q", code, body)
	}
	if got := register("44011300001320000077", "default-pw"); got != 403 {
		t.Fatalf("the default password for a device with its own: %d", got)
	}
	if got := register("44011300001320000077", "own-pw"); got != 200 {
		t.Fatalf("register with its own password: %d", got)
	}
}
