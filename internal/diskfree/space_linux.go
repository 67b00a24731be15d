package diskfree

import "syscall"

// Space returns the bytes free for an unprivileged writer and the size
// of the file system that holds dir.
func Space(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
