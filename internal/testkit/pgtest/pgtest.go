// Package pgtest gives a test a fresh, empty PostgreSQL database on a
// throw-away server that the test binary starts itself.
//
// One server runs per test binary (started at the first [URL], stopped and
// its directory removed by [Main]); each call of [URL] creates a new database
// on it and drops it when the test ends, so tests never see each other's
// tables. The server is PostgreSQL 15 from Debian's binaries (initdb and
// postgres, on the PATH or in /usr/lib/postgresql/15/bin), initialised with
// trust authentication in a temporary directory, listening on a free port of
// 127.0.0.1 and on a unix socket in that directory only. It runs with fsync
// off: a test server's data need not survive a power cut.
//
// initdb refuses to run as root: as root, the server's directory is given to
// the "postgres" user and initdb and postgres run as that user. The server is
// the test binary's child, not a daemon started by pg_ctl: it gets SIGINT
// (fast shutdown) when the binary exits however it exits, so an interrupted
// `go test` leaves no server behind; [Main] stops it in order and removes its
// directory.
//
// Without the binaries, tests that ask for a database are skipped with a
// message, unless VIGIL_REQUIRE_POSTGRES=1 (as in CI): then they fail.
// VIGIL_TEST_POSTGRES_URL=postgres://user@host:port/db?sslmode=disable uses
// an existing server instead (the user must be allowed to create databases).
package pgtest

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"
)

// EnvURL names an existing server to use instead of starting one.
const EnvURL = "VIGIL_TEST_POSTGRES_URL"

// EnvRequire, set to 1, turns a missing PostgreSQL into a failure.
const EnvRequire = "VIGIL_REQUIRE_POSTGRES"

var (
	mainCalled atomic.Bool
	once       sync.Once
	shared     *Server
	sharedErr  error
	seq        atomic.Int64
)

// Main runs the package's tests and then stops the shared server, if one was
// started, and removes its directory. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// after are run after the tests, before it exits (other servers the tests
// shared, such as testkit.StopSharedS3).
func Main(m *testing.M, after ...func()) {
	mainCalled.Store(true)
	code := m.Run()
	for _, f := range after {
		f()
	}
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the shared server, if one was started, and removes its
// directory: what Main does after the tests, for a TestMain that does more
// around m.Run than Main allows (and called Database).
func Shutdown() {
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
		shared = nil
	}
}

// URL returns the URL of a new, empty database for this test, dropped when
// the test ends. It skips the test when no PostgreSQL can be had (fails it
// under VIGIL_REQUIRE_POSTGRES=1).
func URL(t testing.TB) string {
	t.Helper()
	if os.Getenv(EnvURL) == "" && !mainCalled.Load() {
		t.Fatal("pgtest: call pgtest.Main(m) from the package's TestMain, so that the server stops after the tests")
	}
	u, drop, err := newDatabase()
	if err != nil {
		if errors.Is(err, ErrNoBinaries) && os.Getenv(EnvRequire) != "1" {
			t.Skipf("pgtest: %v (set %s to use a running server; %s=1 makes this a failure)", err, EnvURL, EnvRequire)
		}
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return u
}

// Database is URL for a TestMain that sets up a server shared by all its
// tests: the URL of a new, empty database and the function that drops it.
// The TestMain calls Shutdown after the tests. Without PostgreSQL's binaries
// the error is ErrNoBinaries.
func Database() (url string, drop func() error, err error) {
	mainCalled.Store(true) // the caller calls Shutdown
	return newDatabase()
}

// newDatabase creates a new database on the server of VIGIL_TEST_POSTGRES_URL
// or the shared one (started at the first call).
func newDatabase() (string, func() error, error) {
	base := os.Getenv(EnvURL)
	if base == "" {
		once.Do(func() { shared, sharedErr = Start() })
		if sharedErr != nil {
			return "", nil, sharedErr
		}
		base = shared.URL("postgres")
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	name := fmt.Sprintf("vigil_test_%d_%d", os.Getpid(), seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, base, `CREATE DATABASE `+name); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, base, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// Open opens a new, empty database for this test through database/sql (the
// pgx driver) and closes it when the test ends.
func Open(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func adminExec(ctx context.Context, base, stmt string) error {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

// ErrNoBinaries: PostgreSQL is not installed.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found")

// Server is a throw-away PostgreSQL server.
type Server struct {
	Dir  string // its temporary directory: data in Dir/data, socket and log beside
	Port int
	bin  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{}
}

// URL returns the URL of database db on the server, as user vigil.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://vigil@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// binDir finds the directory of initdb and postgres.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if _, err := os.Stat(filepath.Join(filepath.Dir(real), "postgres")); err == nil {
				return filepath.Dir(real), nil
			}
		}
	}
	for _, d := range []string{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"} {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

// Start initialises and starts a server in a new temporary directory. Stop
// it with Stop.
func Start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vigil-pg-")
	if err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "vigil", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// The free port is found by listening on :0 and closing; another process
	// may take it before postgres binds it, so a failed start tries again.
	s := &Server{Dir: dir, bin: bin, cred: cred}
	for attempt := 0; ; attempt++ {
		s.Port, err = freePort()
		if err == nil {
			err = s.start()
		}
		if err == nil || attempt == 2 {
			if err != nil {
				os.RemoveAll(dir)
				return nil, err
			}
			return s, nil
		}
	}
}

func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and %w: initdb refuses root", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs postgres on s.Dir and s.Port and waits until it accepts
// connections.
func (s *Server) start() error {
	dir, port := s.Dir, s.Port
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(dir, "data"),
		"-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "lc_messages=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGINT}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	logf, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	pr, pw := io.Pipe()
	cmd.Stdout = logf
	cmd.Stderr = io.MultiWriter(logf, pw)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(io.EOF)
		exited <- err
		close(done)
	}()
	// postgres says when it accepts connections: wait for that line, not
	// on a timer. The rest of its output goes on to the log only.
	ready := make(chan bool, 1)
	var tail strings.Builder
	go func() {
		sc := bufio.NewScanner(pr)
		said := false
		for sc.Scan() {
			line := sc.Text()
			if !said {
				tail.WriteString(line + "\n")
				if strings.Contains(line, "ready to accept connections") {
					said = true
					ready <- true
				}
			}
		}
		if !said {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if ok {
			return nil
		}
		err := <-exited
		return fmt.Errorf("postgres exited: %v\n%s", err, tail.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		return errors.New("postgres did not become ready within 60 s")
	}
}

// Restart stops the server (fast: connections are ended), keeps it down
// for down, and starts it again on the same port with the same data: a
// database that goes away and comes back, for the tests of those who must
// ride it out.
func (s *Server) Restart(down time.Duration) error {
	if err := s.shutdown(); err != nil {
		return err
	}
	time.Sleep(down) // the outage itself: its length is what the caller asked for
	return s.start()
}

func (s *Server) shutdown() error {
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		return errors.New("postgres did not stop within 30 s; killed")
	}
}

// Stop shuts the server down (fast: open connections are ended) and
// removes its directory.
func (s *Server) Stop() error {
	err := s.shutdown()
	if rerr := os.RemoveAll(s.Dir); err == nil {
		err = rerr
	}
	return err
}

// Dedicated starts a server of the test's own (not the shared one), stopped
// and removed when the test ends: for a test that restarts it. It skips or
// fails as URL does when the binaries are missing.
func Dedicated(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		if errors.Is(err, ErrNoBinaries) && os.Getenv(EnvRequire) != "1" {
			t.Skipf("pgtest: %v", err)
		}
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}
