package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// pageBatch is how many findings are decoded at a time while a page
// streams: a page of 10,000 costs one batch of memory, not 10,000 rows.
const pageBatch = 256

// findingsPage streams one page of findings as
// {<extra fields>,"limit":L,"offset":O,"findings":[...],"next_offset":N}.
// Rows are written by export's JSON writer, so a finding has the same
// fields and JSON types here as in a JSON export (kev is a boolean in
// both). Nothing is written before the query's first chunk arrived: a
// failing query still answers with a status and an error.
func (s *server) findingsPage(w http.ResponseWriter, r *http.Request, f risk.Filter, p risk.Page, extra map[string]any) error {
	// One row more than the page tells whether a next page exists.
	rows, err := risk.Findings(r.Context(), s.cfg.Store, f, &risk.Page{Limit: p.Limit + 1, Offset: p.Offset})
	if err != nil {
		return err
	}
	lr := &limitRows{Rows: rows, limit: p.Limit}
	defer lr.Close()

	var head bytes.Buffer
	head.WriteByte('{')
	for k, v := range extra {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		kb, _ := json.Marshal(k)
		head.Write(kb)
		head.WriteByte(':')
		head.Write(b)
		head.WriteByte(',')
	}
	head.WriteString(`"limit":` + strconv.Itoa(p.Limit) + `,"offset":` + strconv.Itoa(p.Offset) + `,"findings":[`)

	w.Header().Set("Content-Type", "application/json")
	aw := &arrayWriter{w: w, head: head.Bytes()}
	jw, err := export.NewWriter("json", aw, risk.FindingColumns)
	if err != nil {
		return err
	}
	if _, err := export.Copy(r.Context(), lr, risk.FindingColumns, jw, pageBatch); err != nil {
		return err
	}
	tail := "]"
	if lr.more {
		tail += `,"next_offset":` + strconv.Itoa(p.Offset+p.Limit)
	}
	return aw.finish(tail + "}\n")
}

// limitRows passes the first limit rows through and records whether one
// more exists.
type limitRows struct {
	store.Rows
	limit, n int
	more     bool
}

func (l *limitRows) Next() bool {
	if l.n == l.limit {
		l.more = l.more || l.Rows.Next()
		return false
	}
	if !l.Rows.Next() {
		return false
	}
	l.n++
	return true
}

// arrayWriter turns export's JSON lines into the elements of a JSON array:
// each line's newline becomes the comma before the next element (a JSON
// line holds no raw newline: strings escape it). head goes out before the
// first byte.
type arrayWriter struct {
	w       io.Writer
	head    []byte
	started bool
	pending bool // a row ended; a comma is due before the next byte
	buf     []byte
}

func (a *arrayWriter) Write(p []byte) (int, error) {
	n := len(p)
	buf := a.buf[:0]
	if !a.started {
		buf = append(buf, a.head...)
		a.started = true
	}
	for len(p) > 0 {
		if a.pending {
			buf = append(buf, ',')
			a.pending = false
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			buf = append(buf, p...)
			break
		}
		buf = append(buf, p[:i]...)
		a.pending = true
		p = p[i+1:]
	}
	a.buf = buf
	_, err := a.w.Write(buf)
	return n, err
}

func (a *arrayWriter) finish(tail string) error {
	b := []byte(tail)
	if !a.started {
		b = append(append([]byte{}, a.head...), b...)
	}
	_, err := a.w.Write(b)
	return err
}
