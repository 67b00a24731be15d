// Package diskfree measures the free space of a file system and says how
// much of it Vigil keeps free: the recorder's spool drops its oldest waiting
// segments, and exports refuse to grow their temporary files, rather than
// fill the disk that recording needs.
package diskfree

// The free space kept on a disk that recording uses: the larger of these.
const (
	MinFreeBytes   = 1 << 30
	MinFreePercent = 5
)

// Reserve is the free space to keep on a file system of total bytes.
func Reserve(total uint64) uint64 {
	return max(MinFreeBytes, total/100*MinFreePercent)
}
