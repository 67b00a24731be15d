package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// LocalStore keeps objects as files under a directory, the key being the
// relative path. Writes are atomic (temporary file, fsync, rename), so a
// reader never sees half an object. Metadata is not kept: the segment files
// are self-describing.
type LocalStore struct {
	dir string
}

// NewLocalStore returns a store in dir, creating the directory when missing.
func NewLocalStore(dir string) (*LocalStore, error) {
	if dir == "" {
		return nil, errors.New("local store: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	return &LocalStore{dir: abs}, nil
}

// Dir returns the store's directory.
func (s *LocalStore) Dir() string { return s.dir }

// path maps a key to a file path, refusing keys that would leave the directory.
func (s *LocalStore) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") || strings.HasSuffix(key, "/") {
		return "", fmt.Errorf("local store: invalid key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, ".tmp-") {
			return "", fmt.Errorf("local store: invalid key %q", key)
		}
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Put writes the object atomically. It fails when r does not yield exactly size bytes.
func (s *LocalStore) Put(ctx context.Context, key string, r io.Reader, size int64, _ map[string]string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, io.LimitReader(r, size+1))
	if err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	if n != size {
		return fmt.Errorf("local store put %s: got %d bytes, want %d", key, n, size)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	ok = true
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	return nil
}

// PutFile stores the finished file at path under key without copying it
// when the file is on the store's file system: it is hard-linked into the
// key's directory under a temporary name, renamed into place (replacing an
// object stored before), and the directory is synced. The file keeps its own
// name too, so that a crash before the caller is done with it (the recorder
// indexes the segment, then removes its spool file) leaves it where the
// caller's recovery finds it. Across file systems, or where the file system
// has no hard links, it copies, as Put. path must not be written to
// afterwards: it is the stored object.
func (s *LocalStore) PutFile(ctx context.Context, key, path string, size int64, meta map[string]string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("local store put %s: %w: %w", key, ErrSourceFile, err)
	}
	if st.Size() != size {
		return fmt.Errorf("local store put %s: file of %d bytes, want %d", key, st.Size(), size)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	tmp := filepath.Join(filepath.Dir(p), ".tmp-"+strconv.FormatInt(rand.Int64(), 36))
	if err := os.Link(path, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(path); serr != nil {
				return fmt.Errorf("local store put %s: %w: %w", key, ErrSourceFile, serr)
			}
		}
		// another file system (EXDEV), or no hard links there: copy
		f, oerr := os.Open(path)
		if oerr != nil {
			return fmt.Errorf("local store put %s: %w: %w", key, ErrSourceFile, oerr)
		}
		defer f.Close()
		return s.Put(ctx, key, f, size, meta)
	}
	err = os.Rename(tmp, p)
	// a rename onto another link of the same file does nothing (rename(2)):
	// the temporary name is left, then
	if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("local store put %s: %w", key, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get reads length bytes from offset (to the end when length < 0).
func (s *LocalStore) Get(_ context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("local store get %s: negative offset %d", key, offset)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local store get %s: %w", key, ErrObjectNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("local store get %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("local store get %s: %w", key, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("local store get %s: %w", key, ErrObjectNotFound)
	}
	if offset > st.Size() {
		f.Close()
		return nil, fmt.Errorf("local store get %s: offset %d beyond the object's %d bytes", key, offset, st.Size())
	}
	if length < 0 || offset+length > st.Size() {
		length = st.Size() - offset
	}
	return &sectionReadCloser{SectionReader: io.NewSectionReader(f, offset, length), f: f}, nil
}

type sectionReadCloser struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionReadCloser) Close() error { return s.f.Close() }

// List calls fn for every object whose key starts with prefix, in key order.
func (s *LocalStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var objs []ObjectInfo
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// skip directories that cannot hold a key with the prefix
			if p != s.dir && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".tmp-") || !strings.HasPrefix(key, prefix) || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		objs = append(objs, ObjectInfo{Key: key, Size: info.Size(), Modified: info.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("local store list %q: %w", prefix, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes an object; a missing key is not an error. Directories left
// empty are removed too.
func (s *LocalStore) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local store delete %s: %w", key, err)
	}
	for d := filepath.Dir(p); d != s.dir && strings.HasPrefix(d, s.dir); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}
