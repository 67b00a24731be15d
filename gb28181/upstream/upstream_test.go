package upstream

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// reopener returns a function that opens the same new database each time
// it is called (on the engine testdb.OpenDB follows), as a restart does.
func reopener(t *testing.T) func() *sqldb.DB {
	t.Helper()
	if testdb.Postgres() {
		url := pgtest.URL(t)
		return func() *sqldb.DB { return testdb.OpenURL(t, url) }
	}
	path := filepath.Join(t.TempDir(), "vigil.db")
	return func() *sqldb.DB { return testdb.OpenSQLite(t, path) }
}

var offers = []struct {
	name, sdp string
	want      offer
	err       string
}{
	{"udp", "v=0\r\ns=Play\r\nc=IN IP4 10.0.0.9\r\nm=video 30000 RTP/AVP 96\r\na=recvonly\r\ny=0100000001\r\n",
		offer{Session: "Play", IP: "10.0.0.9", Port: 30000, Transport: TransportUDP, SSRC: "0100000001"}, ""},
	{"tcp, upper listens", "v=0\ns=Play\nc=IN IP4 10.0.0.9\nm=video 30000 TCP/RTP/AVP 96\na=setup:passive\na=connection:new\ny=0100000001\n",
		offer{Session: "Play", IP: "10.0.0.9", Port: 30000, Transport: TransportTCPActive, SSRC: "0100000001"}, ""},
	{"tcp, upper connects", "v=0\ns=Play\nc=IN IP4 10.0.0.9\nm=video 9 TCP/RTP/AVP 96\na=setup:active\n",
		offer{Session: "Play", IP: "10.0.0.9", Port: 9, Transport: TransportTCPPassive}, ""},
	{"playback", "s=Playback\nc=IN IP4 10.0.0.9\nm=video 30000 RTP/AVP 96\n",
		offer{Session: "Playback", IP: "10.0.0.9", Port: 30000, Transport: TransportUDP}, ""},
	{"no video", "s=Play\nc=IN IP4 10.0.0.9\nm=audio 30000 RTP/AVP 8\n", offer{}, "no m=video"},
	{"no address", "s=Play\nm=video 30000 RTP/AVP 96\n", offer{}, "no c= address"},
	{"bad address", "s=Play\nc=IN IP4 host.example\nm=video 30000 RTP/AVP 96\n", offer{}, "no IP address"},
	{"bad port", "s=Play\nc=IN IP4 10.0.0.9\nm=video x RTP/AVP 96\n", offer{}, "no port"},
	{"udp port 0", "s=Play\nc=IN IP4 10.0.0.9\nm=video 0 RTP/AVP 96\n", offer{}, "port 0"},
	{"tcp without setup", "s=Play\nc=IN IP4 10.0.0.9\nm=video 3000 TCP/RTP/AVP 96\n", offer{}, "a=setup"},
	{"bad ssrc", "s=Play\nc=IN IP4 10.0.0.9\nm=video 3000 RTP/AVP 96\ny=99999999999\n", offer{}, "not an SSRC"},
}

func TestParseOffer(t *testing.T) {
	for _, tc := range offers {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOffer([]byte(tc.sdp))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseOffer(f *testing.F) {
	for _, tc := range offers {
		f.Add([]byte(tc.sdp))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		if err == nil && (o.IP == "" || o.Transport == "") {
			t.Fatalf("accepted %q as %+v", b, o)
		}
	})
}

func TestAnswerSDP(t *testing.T) {
	o := offer{Session: "Play", Transport: TransportTCPPassive}
	got := string(answerSDP("44011300002000000001", "10.0.0.2", 40000, o, "0100000001"))
	for _, want := range []string{"m=video 40000 TCP/RTP/AVP 96\r\n", "a=setup:passive\r\n", "a=sendonly\r\n", "y=0100000001\r\n", "c=IN IP4 10.0.0.2\r\n", "a=rtpmap:96 PS/90000\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("answer lacks %q:\n%s", want, got)
		}
	}
}

// TestChannelsStable: IDs are <realm><kind><serial>, allocated once, and
// the same after the database is opened again.
func TestChannelsStable(t *testing.T) {
	ctx := context.Background()
	reopen := reopener(t)
	db := reopen()
	c, err := OpenChannels(ctx, db, "4401130000")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Camera(ctx, "police-1")
	b, _ := c.Camera(ctx, "police-2")
	d, _ := c.Department(ctx, "police")
	if a != "44011300001310000001" || b != "44011300001310000002" || d != "44011300002160000001" {
		t.Fatalf("ids %s %s %s", a, b, d)
	}
	if again, _ := c.Camera(ctx, "police-1"); again != a {
		t.Fatalf("second call: %s", again)
	}
	db.Close()
	c2, err := OpenChannels(ctx, reopen(), "4401130000")
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := c2.Lookup(b); !ok || k != "camera:police-2" {
		t.Fatalf("after reopening: %q %v", k, ok)
	}
	if a2, _ := c2.Camera(ctx, "police-1"); a2 != a {
		t.Fatalf("after reopening: %s, want %s", a2, a)
	}
	if n, _ := c2.Camera(ctx, "fire-1"); n != "44011300001310000003" {
		t.Fatalf("next after reopening: %s", n)
	}
	if _, err := OpenChannels(ctx, db, "44"); err == nil {
		t.Fatal("short realm accepted")
	}
}

// TestChannelsShared: two processes sharing the database (two Channels on
// it, each with its own cache) allocating at once give every key one ID and
// no two keys the same.
func TestChannelsShared(t *testing.T) {
	ctx := context.Background()
	reopen := reopener(t)
	var cs [2]*Channels
	for i := range cs {
		c, err := OpenChannels(ctx, reopen(), "4401130000")
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c
	}
	const keys = 40
	var got [2][keys]string
	var errs [2]error
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				id, err := c.Camera(ctx, fmt.Sprintf("cam-%d", k))
				if err != nil {
					errs[i] = err
					return
				}
				got[i][k] = id
			}
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	seen := map[string]int{}
	for k := range keys {
		if got[0][k] != got[1][k] {
			t.Errorf("cam-%d: %s and %s", k, got[0][k], got[1][k])
		}
		if prev, ok := seen[got[0][k]]; ok {
			t.Errorf("cam-%d and cam-%d share %s", prev, k, got[0][k])
		}
		seen[got[0][k]] = k
	}
	for serial := 1; serial <= keys; serial++ {
		if id := fmt.Sprintf("4401130000131%07d", serial); len(seen) == keys {
			if _, ok := seen[id]; !ok {
				t.Errorf("serials are not 1…%d: %s missing", keys, id)
			}
		}
	}
}

// An SQLite database that sqlitedb.Migrate made (component
// "gb28181_upstream", version 1) is adopted: its IDs stay.
func TestLegacyChannelsAdopted(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenSQLite(t, "")
	step, err := migrationFiles.ReadFile("migrations/sqlite/00001_ids.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(ctx, db.DB, "gb28181_upstream", []string{string(step)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO gb28181_upstream_ids(key, kind, serial) VALUES('camera:police-1', 131, 7)`); err != nil {
		t.Fatal(err)
	}
	c, err := OpenChannels(ctx, db, "4401130000")
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := c.Lookup("44011300001310000007"); !ok || k != "camera:police-1" {
		t.Fatalf("adopted id: %q %v", k, ok)
	}
	if id, _ := c.Camera(ctx, "police-2"); id != "44011300001310000008" {
		t.Fatalf("next id %s", id)
	}
}
