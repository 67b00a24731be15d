// Package web holds Vigil's browser app: plain HTML, CSS and ES modules,
// committed as they are served (no build step), embedded into the binary.
//
// The HTTP layer (package ui) serves FS at "/" and answers index.html for
// unknown paths that are not API paths. The app is written for the Content
// Security Policy "default-src 'self'": no inline scripts, no inline event
// handlers, no inline style attributes, no eval.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:app
var files embed.FS

// FS is the web app with index.html at its root.
var FS fs.FS = appFS()

func appFS() fs.FS {
	sub, err := fs.Sub(files, "app")
	if err != nil {
		// "app" is a constant, valid path: fs.Sub cannot fail on it.
		panic("web: " + err.Error())
	}
	return sub
}
