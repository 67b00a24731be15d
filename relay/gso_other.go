//go:build !linux

package relay

const gsoSupported = false

func gsoControl(int) []byte { return nil }

func gsoUnsupported(error) bool { return true }
