package simulate

import (
	"context"

	"github.com/patchgrid/patchgrid/scanner/publish"
)

// PublishSink sends the stream to Kafka through a scanner/publish Producer.
type PublishSink struct{ P *publish.Producer }

func (s PublishSink) Send(ctx context.Context, batch []Message) error {
	msgs := make([]publish.Message, len(batch))
	for i, m := range batch {
		msgs[i] = publish.Message{Key: m.Key, Value: m.Value}
	}
	return s.P.PublishBatch(ctx, msgs)
}
