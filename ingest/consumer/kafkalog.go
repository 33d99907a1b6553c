package consumer

import (
	"errors"
	"log/slog"
	"net"
	"os"
)

// kafkaErrorLevel is the level of one line of kafka-go's ErrorLogger.
// kafka-go reports the read deadline of an idle fetch (no message within
// its wait) as "kafka reader got an unknown error ... i/o timeout" and then
// simply fetches again: normal on a quiet topic, so it is debug; every
// other error stays a warning.
func kafkaErrorLevel(args []any) slog.Level {
	for _, a := range args {
		if err, ok := a.(error); ok && isTimeout(err) {
			return slog.LevelDebug
		}
	}
	return slog.LevelWarn
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
