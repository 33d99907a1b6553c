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

// Limits bound what one input may cost before it is parsed. A zero field
// takes its default.
//
// Documents are parsed whole, so a document's size is the memory it costs.
// Compressed inputs (.zip, .tar.gz, .gz) are decompressed as a stream with
// a running budget: the input is refused as soon as its decompressed total
// passes MaxTotal, or passes RatioFloor while being more than MaxRatio
// times the compressed bytes consumed so far. Real feeds compress 3:1 to
// 15:1 (OSV zips about 3:1, the PyPA and Go vulndb tarballs about 8:1 and
// 10:1); a decompression bomb is 1000:1, so it is refused after RatioFloor
// bytes instead of after gigabytes.
type Limits struct {
	// MaxDocument is the largest single document (a file or an archive
	// member). Default 512 MiB: the largest real documents (the Debian
	// tracker JSON, a daily EPSS CSV) are well below.
	MaxDocument int64
	// MaxTotal is the most one compressed input may decompress to,
	// summed over its members. Default 8 GiB.
	MaxTotal int64
	// MaxRatio is the highest decompressed:compressed ratio accepted once
	// RatioFloor bytes have been decompressed. Default 50.
	MaxRatio int64
	// RatioFloor is how much an input may decompress to before the ratio
	// is checked (small files have noisy ratios). Default 8 MiB.
	RatioFloor int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxDocument <= 0 {
		l.MaxDocument = 512 << 20
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = 8 << 30
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = 50
	}
	if l.RatioFloor <= 0 {
		l.RatioFloor = 8 << 20
	}
	return l
}

// ErrInputLimit marks an input refused by Limits: it is rejected whole.
var ErrInputLimit = errors.New("input limit exceeded")

// walker walks one location under its limits.
type walker struct {
	lim Limits
	fn  func(document) error
	bad func(name string, err error)
}

// walkLocation calls fn for every document of a file or directory. Archives
// (.zip, .tar.gz, .tgz) and gzip files are opened; a directory is walked in
// name order so loads are deterministic. An unreadable file or archive, or
// one over lim, is reported through bad and the walk goes on.
func walkLocation(ctx context.Context, loc string, lim Limits, fn func(document) error, bad func(name string, err error)) error {
	w := &walker{lim: lim.withDefaults(), fn: fn, bad: bad}
	st, err := os.Stat(loc)
	if err != nil {
		return fmt.Errorf("feeds: %w", err)
	}
	if !st.IsDir() {
		return w.file(ctx, loc, filepath.Base(loc))
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
		if err := w.file(ctx, p, filepath.ToSlash(rel)); err != nil {
			return err
		}
	}
	return nil
}

// budget accounts the decompressed bytes of one compressed input against
// Limits. in reports the compressed bytes consumed so far.
type budget struct {
	lim Limits
	in  func() int64
	out int64
}

func (b *budget) add(n int) error {
	b.out += int64(n)
	if b.out > b.lim.MaxTotal {
		return fmt.Errorf("%w: decompresses to more than %d bytes", ErrInputLimit, b.lim.MaxTotal)
	}
	if in := b.in(); b.out > b.lim.RatioFloor && b.out > b.lim.MaxRatio*in {
		return fmt.Errorf("%w: more than %d bytes decompressed from %d (ratio above %d:1: a decompression bomb?)",
			ErrInputLimit, b.out, in, b.lim.MaxRatio)
	}
	return nil
}

// budgetReader charges every byte read from r to b.
type budgetReader struct {
	r io.Reader
	b *budget
}

func (br budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if berr := br.b.add(n); berr != nil {
		return n, berr
	}
	return n, err
}

// countingReader counts the bytes read through it (compressed input).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// file handles one file. Errors from fn (store failures, cancellation)
// stop the walk; errors reading the file only mark it bad.
func (w *walker) file(ctx context.Context, p, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lower := strings.ToLower(p)
	if strings.HasSuffix(lower, ".zip") {
		return w.zip(ctx, p)
	}
	f, err := os.Open(p)
	if err != nil {
		w.bad(p, err)
		return nil
	}
	defer f.Close()
	if strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz") {
		return w.tarGz(ctx, p, f)
	}
	var r io.Reader = f
	inner := rel
	if strings.HasSuffix(lower, ".gz") {
		cr := &countingReader{r: f}
		zr, err := gzip.NewReader(cr)
		if err != nil {
			w.bad(p, fmt.Errorf("gzip: %w", err))
			return nil
		}
		defer zr.Close()
		b := &budget{lim: w.lim, in: func() int64 { return cr.n }}
		r, inner = budgetReader{zr, b}, strings.TrimSuffix(rel, path.Ext(rel))
	}
	data, err := w.readDocument(r, 0)
	if err != nil {
		w.bad(p, err)
		return nil
	}
	return w.emit(document{name: p, inner: inner, data: data})
}

// readDocument reads one document of at most MaxDocument bytes. sizeHint
// (a declared size, 0 when unknown) sizes the buffer, but only up to
// RatioFloor: a header is a claim, so larger documents grow as they are
// read and a lying header costs nothing.
func (w *walker) readDocument(r io.Reader, sizeHint int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(max(sizeHint, 0), w.lim.RatioFloor)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r, w.lim.MaxDocument+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > w.lim.MaxDocument {
		return nil, fmt.Errorf("%w: document larger than %d bytes", ErrInputLimit, w.lim.MaxDocument)
	}
	return buf.Bytes(), nil
}

// emit splits JSONL into one document per line.
func (w *walker) emit(d document) error {
	if !strings.HasSuffix(strings.ToLower(d.inner), ".jsonl") {
		return w.fn(d)
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
		if err := w.fn(document{name: d.name + "#L" + strconv.Itoa(n), inner: strings.TrimSuffix(d.inner, "l"), data: bytes.Clone(line)}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		w.bad(d.name+"#L"+strconv.Itoa(n+1), err)
	}
	return nil
}

// zip reads a zip archive member by member. The central directory's
// sizes are checked before anything is decompressed; archive/zip then
// refuses a member that inflates past its declared size, and the budget
// counts each member's declared compressed size as consumed input (an
// upper bound of what is read), so a lying header cannot pass the ratio.
func (w *walker) zip(ctx context.Context, p string) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		w.bad(p, fmt.Errorf("zip: %w", err))
		return nil
	}
	defer zr.Close()
	st, err := os.Stat(p)
	if err != nil {
		w.bad(p, err)
		return nil
	}
	var declaredIn, declaredOut uint64
	for _, f := range zr.File {
		declaredIn += f.CompressedSize64
		declaredOut += f.UncompressedSize64
	}
	switch {
	case declaredIn > uint64(st.Size()):
		// Members whose data overlap (the "non-recursive zip bomb").
		w.bad(p, fmt.Errorf("%w: zip members declare %d compressed bytes in a %d-byte file (overlapping members)", ErrInputLimit, declaredIn, st.Size()))
		return nil
	case declaredOut > uint64(w.lim.MaxTotal):
		w.bad(p, fmt.Errorf("%w: zip members declare %d decompressed bytes (limit %d)", ErrInputLimit, declaredOut, w.lim.MaxTotal))
		return nil
	}
	var consumed int64
	b := &budget{lim: w.lim, in: func() int64 { return consumed }}
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.FileInfo().IsDir() {
			continue
		}
		name := p + "!" + f.Name
		if f.UncompressedSize64 > uint64(w.lim.MaxDocument) {
			w.bad(p, fmt.Errorf("%w: member %s declares %d bytes (limit %d)", ErrInputLimit, f.Name, f.UncompressedSize64, w.lim.MaxDocument))
			return nil
		}
		if f.UncompressedSize64 > uint64(w.lim.RatioFloor) && f.UncompressedSize64/max(f.CompressedSize64, 1) > uint64(w.lim.MaxRatio) {
			w.bad(p, fmt.Errorf("%w: member %s declares %d bytes from %d (ratio above %d:1: a decompression bomb?)",
				ErrInputLimit, f.Name, f.UncompressedSize64, f.CompressedSize64, w.lim.MaxRatio))
			return nil
		}
		rc, err := f.Open()
		if err != nil {
			w.bad(name, err)
			continue
		}
		consumed += int64(f.CompressedSize64)
		data, err := w.readDocument(budgetReader{rc, b}, int64(f.UncompressedSize64))
		rc.Close()
		if errors.Is(err, ErrInputLimit) {
			w.bad(p, fmt.Errorf("member %s: %w", f.Name, err))
			return nil // the archive is hostile: read no further
		}
		if err != nil {
			w.bad(name, err)
			continue
		}
		if err := w.emit(document{name: name, inner: f.Name, data: data}); err != nil {
			return err
		}
	}
	return nil
}

// tarGz reads a gzip-compressed tar stream member by member, under one
// budget for the whole archive.
func (w *walker) tarGz(ctx context.Context, p string, r io.Reader) error {
	cr := &countingReader{r: r}
	zr, err := gzip.NewReader(cr)
	if err != nil {
		w.bad(p, fmt.Errorf("gzip: %w", err))
		return nil
	}
	defer zr.Close()
	// The budget wraps the decompressed stream under the tar reader, so
	// headers, padding and skipped members are charged too.
	tr := tar.NewReader(budgetReader{zr, &budget{lim: w.lim, in: func() int64 { return cr.n }}})
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			w.bad(p, fmt.Errorf("tar: %w", err))
			return nil
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		member := strings.TrimPrefix(h.Name, "./")
		if h.Size > w.lim.MaxDocument {
			w.bad(p, fmt.Errorf("%w: member %s declares %d bytes (limit %d)", ErrInputLimit, member, h.Size, w.lim.MaxDocument))
			return nil
		}
		data, err := w.readDocument(tr, h.Size)
		if err != nil {
			if errors.Is(err, ErrInputLimit) {
				err = fmt.Errorf("member %s: %w", member, err)
			}
			w.bad(p, err)
			return nil
		}
		if err := w.emit(document{name: p + "!" + member, inner: member, data: data}); err != nil {
			return err
		}
	}
}
