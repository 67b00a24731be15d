//go:build unix

package main

import "syscall"

// privateFiles makes every file and directory the process creates its
// owner's alone (umask 077): the database, the spool, exports, the local
// store and key files hold video and credentials.
func privateFiles() { syscall.Umask(0o077) }
