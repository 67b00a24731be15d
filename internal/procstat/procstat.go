// Package procstat reads a process's CPU time and memory from /proc, for the
// benchmark harnesses that report CPU % and resident memory per camera.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const clockTick = 10 * time.Millisecond

var errFormat = errors.New("unexpected /proc stat format")

// CPU returns the user+system CPU time of process pid ("self" for this one).
func CPU(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return ParseStatCPU(string(b))
}

// ParseStatCPU takes utime and stime out of the text of /proc/PID/stat.
func ParseStatCPU(stat string) (time.Duration, error) {
	// the command name may contain spaces and ')': fields start after the last ')'
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errFormat
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errFormat
	}
	// fields 14 and 15 of stat (utime, stime), counted from the state field
	ut, err1 := strconv.ParseUint(f[11], 10, 63)
	st, err2 := strconv.ParseUint(f[12], 10, 63)
	if err1 != nil || err2 != nil || ut+st > 1<<40 {
		return 0, errFormat
	}
	return time.Duration(ut+st) * clockTick, nil
}

// StatusKB returns a kB field of /proc/self/status, such as VmRSS or VmHWM.
func StatusKB(key string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return ParseStatusKB(string(b), key)
}

// ParseStatusKB finds "key: N kB" in the text of /proc/PID/status.
func ParseStatusKB(status, key string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			if f := strings.Fields(v); len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s not in /proc status", key)
}

// Machine is the machine's CPU time from the first line of /proc/stat:
// busy (user, nice, system, irq, softirq), idle (idle, iowait) and steal
// (taken by the hypervisor for other guests: a noisy neighbour).
type Machine struct{ Busy, Idle, Steal time.Duration }

// ReadMachine reads /proc/stat.
func ReadMachine() (Machine, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Machine{}, err
	}
	return ParseMachine(string(b))
}

// ParseMachine parses the text of /proc/stat (in USER_HZ ticks, 100 a second).
func ParseMachine(stat string) (Machine, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return Machine{}, fmt.Errorf("/proc/stat: no cpu line in %q", line)
	}
	var t [8]int64
	for i := range t {
		v, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			return Machine{}, fmt.Errorf("/proc/stat: %w", err)
		}
		t[i] = v
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * 10 * time.Millisecond }
	// user nice system idle iowait irq softirq steal
	return Machine{Busy: tick(t[0] + t[1] + t[2] + t[5] + t[6]), Idle: tick(t[3] + t[4]), Steal: tick(t[7])}, nil
}
