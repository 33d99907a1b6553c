package feeds

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// document is one feed document: a file, an archive member or a JSONL line.
// name is its provenance (path, "archive!member", "file#L12"); inner is the
// member path used for format detection.
type document struct {
	name  string
	inner string
	data  []byte
}

// maxDocument bounds one document read into memory (the largest real feed
// documents, EPSS and the Debian tracker JSON, are well below).
const maxDocument = 512 << 20

// walkLocation calls fn for every document of a file or directory. Archives
// (.zip, .tar.gz, .tgz) and gzip files are opened; a directory is walked in
// name order so loads are deterministic. An unreadable file or archive is
// reported through bad and the walk goes on.
func walkLocation(ctx context.Context, loc string, fn func(document) error, bad func(name string, err error)) error {
	st, err := os.Stat(loc)
	if err != nil {
		return fmt.Errorf("feeds: %w", err)
	}
	if !st.IsDir() {
		return walkFile(ctx, loc, filepath.Base(loc), fn, bad)
	}
	var files []string
	err = filepath.WalkDir(loc, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			bad(p, err)
			return nil
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, p := range files {
		rel, _ := filepath.Rel(loc, p)
		if err := walkFile(ctx, p, filepath.ToSlash(rel), fn, bad); err != nil {
			return err
		}
	}
	return nil
}

// walkFile handles one file. Errors from fn (store failures, cancellation)
// stop the walk; errors reading the file only mark it bad.
func walkFile(ctx context.Context, p, rel string, fn func(document) error, bad func(string, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lower := strings.ToLower(p)
	switch {
	case strings.HasSuffix(lower, ".zip"):
		return walkZip(ctx, p, fn, bad)
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		f, err := os.Open(p)
		if err != nil {
			bad(p, err)
			return nil
		}
		defer f.Close()
		return walkTarGz(ctx, p, f, fn, bad)
	}
	f, err := os.Open(p)
	if err != nil {
		bad(p, err)
		return nil
	}
	defer f.Close()
	var r io.Reader = f
	inner := rel
	if strings.HasSuffix(lower, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			bad(p, fmt.Errorf("gzip: %w", err))
			return nil
		}
		defer zr.Close()
		r, inner = zr, strings.TrimSuffix(rel, path.Ext(rel))
	}
	data, err := readAllLimited(r)
	if err != nil {
		bad(p, err)
		return nil
	}
	return emitDocument(document{name: p, inner: inner, data: data}, fn, bad)
}

func readAllLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDocument+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDocument {
		return nil, fmt.Errorf("larger than %d bytes", maxDocument)
	}
	return data, nil
}

// emitDocument splits JSONL into one document per line.
func emitDocument(d document, fn func(document) error, bad func(string, error)) error {
	if !strings.HasSuffix(strings.ToLower(d.inner), ".jsonl") {
		return fn(d)
	}
	sc := bufio.NewScanner(bytes.NewReader(d.data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(document{name: d.name + "#L" + strconv.Itoa(n), inner: strings.TrimSuffix(d.inner, "l"), data: bytes.Clone(line)}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		bad(d.name+"#L"+strconv.Itoa(n+1), err)
	}
	return nil
}

func walkZip(ctx context.Context, p string, fn func(document) error, bad func(string, error)) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		bad(p, fmt.Errorf("zip: %w", err))
		return nil
	}
	defer zr.Close()
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.FileInfo().IsDir() {
			continue
		}
		name := p + "!" + f.Name
		rc, err := f.Open()
		if err != nil {
			bad(name, err)
			continue
		}
		data, err := readAllLimited(rc)
		rc.Close()
		if err != nil {
			bad(name, err)
			continue
		}
		if err := emitDocument(document{name: name, inner: f.Name, data: data}, fn, bad); err != nil {
			return err
		}
	}
	return nil
}

func walkTarGz(ctx context.Context, p string, r io.Reader, fn func(document) error, bad func(string, error)) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		bad(p, fmt.Errorf("gzip: %w", err))
		return nil
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			bad(p, fmt.Errorf("tar: %w", err))
			return nil
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := p + "!" + strings.TrimPrefix(h.Name, "./")
		data, err := readAllLimited(tr)
		if err != nil {
			bad(name, err)
			return nil
		}
		if err := emitDocument(document{name: name, inner: strings.TrimPrefix(h.Name, "./"), data: data}, fn, bad); err != nil {
			return err
		}
	}
}
