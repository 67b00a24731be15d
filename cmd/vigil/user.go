package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/registry"
)

const userUsage = `usage:
  vigil user add NAME --role admin|operator|responder|viewer [--departments a,b] [--config FILE]
  vigil user passwd NAME [--config FILE]

The password is read from the environment variable VIGIL_USER_PASSWORD when it
is set, else from the first line of standard input, for example:
  echo "$PASS" | vigil user add li.wei --role responder --departments police
Without --departments the user sees every department. A new password ends the
user's open sessions.
`

// runUser implements "vigil user add" and "vigil user passwd".
func runUser(ctx context.Context, cfg config.Config, args []string, stdout io.Writer, stdin io.Reader) error {
	return runUserEnv(ctx, cfg, args, stdout, stdin, os.Getenv("VIGIL_USER_PASSWORD"))
}

func runUserEnv(ctx context.Context, cfg config.Config, args []string, stdout io.Writer, stdin io.Reader, envPassword string) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, userUsage)
		return errors.New("user: add or passwd is required")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	role := fs.String("role", "", "role")
	depts := fs.String("departments", "", "comma-separated department ids")
	// NAME may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		fmt.Fprint(stdout, userUsage)
		return fmt.Errorf("user %s: %w", sub, err)
	}
	if rest := fs.Args(); name == "" && len(rest) == 1 {
		name = rest[0]
	} else if len(rest) > 0 {
		return fmt.Errorf("user %s: unexpected arguments %q", sub, rest)
	}
	if name == "" {
		fmt.Fprint(stdout, userUsage)
		return fmt.Errorf("user %s: NAME is required", sub)
	}
	switch sub {
	case "add":
		if *role == "" {
			return errors.New("user add: --role is required (admin, operator, responder or viewer)")
		}
	case "passwd":
		if *role != "" || *depts != "" {
			return errors.New("user passwd: takes no --role or --departments (use the API to change them)")
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, userUsage)
		return nil
	default:
		fmt.Fprint(stdout, userUsage)
		return fmt.Errorf("user: unknown subcommand %q (add or passwd)", sub)
	}
	password, err := readPassword(stdin, envPassword)
	if err != nil {
		return fmt.Errorf("user %s: %w", sub, err)
	}
	reg, closeDB, err := registry.OpenConfig(ctx, sqldb.Config{Path: cfg.Database.Path, URL: cfg.Database.URL}, registry.Options{})
	if err != nil {
		return err
	}
	defer closeDB()
	if sub == "passwd" {
		if err := reg.SetPassword(ctx, name, password); err != nil {
			return fmt.Errorf("user passwd: %w", err)
		}
		fmt.Fprintf(stdout, "password of %s changed\n", name)
		return nil
	}
	var ds []string
	for _, d := range strings.Split(*depts, ",") {
		if d = strings.TrimSpace(d); d != "" {
			ds = append(ds, d)
		}
	}
	u, err := reg.CreateUser(ctx, registry.User{Username: name, Role: *role, Departments: ds}, password)
	if err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	scope := "all departments"
	if len(u.Departments) > 0 {
		scope = "departments " + strings.Join(u.Departments, ", ")
	}
	fmt.Fprintf(stdout, "user %s created: role %s, %s\n", u.Username, u.Role, scope)
	return nil
}

// readPassword takes the password from the environment, else the first
// line of stdin.
func readPassword(stdin io.Reader, env string) (string, error) {
	if env != "" {
		return env, nil
	}
	if stdin == nil {
		return "", errors.New("no password: set VIGIL_USER_PASSWORD or write it to standard input")
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, registry.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: set VIGIL_USER_PASSWORD or write it to standard input")
	}
	return line, nil
}
