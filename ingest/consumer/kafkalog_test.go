package consumer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
)

func TestKafkaErrorLevel(t *testing.T) {
	idle := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tt := range []struct {
		args []any
		want slog.Level
	}{
		// kafka-go's idle fetch: "... at offset %d: %s" with the error last.
		{[]any{0, "scans", "first offset", idle}, slog.LevelDebug},
		{[]any{0, "scans", 12, fmt.Errorf("fetch: %w", idle)}, slog.LevelDebug},
		{[]any{0, "scans", 12, io.ErrUnexpectedEOF}, slog.LevelWarn},
		{[]any{0, "scans", 12, errors.New("[3] Unknown Topic Or Partition")}, slog.LevelWarn},
		{nil, slog.LevelWarn},
	} {
		if got := kafkaErrorLevel(tt.args); got != tt.want {
			t.Errorf("kafkaErrorLevel(%v) = %v, want %v", tt.args, got, tt.want)
		}
	}
}
