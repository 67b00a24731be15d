// Command vigil is the district video surveillance aggregation server.
//
//	vigil serve [--config FILE]     the server
//	vigil demo                      the server plus simulated cameras, ready to watch
//	vigil camsim --addr A --count N simulated RTSP cameras
//	vigil camsim --gb28181 --sip H:P --id ID --password P --channels N   a simulated GB/T 28181 device
//	vigil user add|passwd ...       user administration
//	vigil reindex [--config FILE] [--adopt-orphans]   rebuild the recordings index from the store
//	vigil owners CAMERA [--keys] [--config FILE]      the cameras that have had an id, and their recordings
//	vigil verify PACKAGE.zip [--pubkey KEY]           check an evidence package offline
//	vigil verify --key [--config FILE]                the server's evidence public key
//	vigil db copy --to postgres://… [--config FILE]   the SQLite database into an empty PostgreSQL one
//	vigil version                   version and build info
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	privateFiles()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Stdin)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vigil:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: vigil <command> [flags]

commands:
  serve [--config FILE]     run the server (defaults: data in ./data, HTTP on :8080)
  demo [--config FILE]      run the server with simulated cameras already registered
  camsim --addr ADDR --count N [--codec h264|h265] [--audio]
                            simulated RTSP cameras at rtsp://ADDR/cam1 ... camN
  camsim --gb28181 --sip HOST:PORT --id 20DIGITS --password P [--channels N] [--sip-transport udp|tcp]
                            a simulated GB/T 28181 device registering to a platform
  user add NAME --role ROLE [--departments a,b]
  user passwd NAME          user administration (password from stdin or VIGIL_USER_PASSWORD)
  reindex [--config FILE] [--adopt-orphans]
                            rebuild the recordings index from the store
  owners CAMERA [--keys] [--config FILE]
                            the cameras that have had an id and their recordings
                            (a deleted camera's footage, which no camera shows)
  verify PACKAGE.zip [--pubkey HEX|FILE]
                            check an evidence package offline: its signature and
                            every file's SHA-256; --pubkey pins the signing key
  verify --key [--config FILE]
                            print the server's evidence public key
  db copy --to postgres://… [--config FILE] [--from FILE]
                            copy this node's SQLite database into an empty
                            PostgreSQL database (a single node grows into a cluster)
  version                   version and build info
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, args, stdout, stderr, false)
	case "demo":
		return runServe(ctx, args, stdout, stderr, true)
	case "camsim":
		return runCamsim(ctx, args, stdout)
	case "user":
		cfg, rest, err := loadConfigFlag("user", args)
		if err != nil {
			return err
		}
		return runUser(ctx, cfg, rest, stdout, stdin)
	case "reindex":
		return runReindex(ctx, args, stdout)
	case "owners":
		return runOwners(ctx, args, stdout)
	case "verify":
		return runVerify(ctx, args, stdout)
	case "db":
		return runDB(ctx, args, stdout)
	case "version", "--version", "-v":
		printVersion(stdout)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func printVersion(w io.Writer) {
	fmt.Fprintf(w, "vigil %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(w, "go: %s\n", bi.GoVersion)
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH":
				fmt.Fprintf(w, "%s: %s\n", s.Key, s.Value)
			}
		}
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/bluenviron/gortsplib/v4", "github.com/pion/webrtc/v4",
				"github.com/bluenviron/mediacommon/v2", "github.com/minio/minio-go/v7":
				fmt.Fprintf(w, "%s %s\n", d.Path, d.Version)
			}
		}
	}
}
