package export

import (
	"fmt"
	"io"
)

// Formats lists the export formats, in the order help texts show them.
// arrow is an Arrow IPC file (random access, what pyarrow.ipc.open_file and
// most tools open); arrow-stream is the IPC stream format (for readers
// that consume while the export is still running).
var Formats = []string{"arrow", "arrow-stream", "parquet", "csv", "json"}

// ContentType is the HTTP media type of format.
func ContentType(format string) string {
	switch format {
	case "arrow":
		return "application/vnd.apache.arrow.file"
	case "arrow-stream":
		return "application/vnd.apache.arrow.stream"
	case "parquet":
		return "application/vnd.apache.parquet"
	case "csv":
		return "text/csv; charset=utf-8"
	case "json":
		return "application/x-ndjson"
	}
	return "application/octet-stream"
}

// NewWriter returns a Writer of format writing cols to w:
// arrow (Arrow IPC file), arrow-stream (Arrow IPC stream), parquet, csv
// (RFC 4180 with a header line) or json (JSON lines, one object per row).
func NewWriter(format string, w io.Writer, cols []Column) (Writer, error) {
	switch format {
	case "arrow":
		return newArrowFileWriter(w, cols)
	case "arrow-stream":
		return newArrowWriter(w, cols), nil
	case "parquet":
		return newParquetWriter(w, cols)
	case "csv":
		return newCSVWriter(w, cols), nil
	case "json":
		return newJSONWriter(w, cols), nil
	}
	return nil, fmt.Errorf("unknown export format %q (want one of %v)", format, Formats)
}
