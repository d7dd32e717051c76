package awsapi

import (
	"context"

	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/store"
)

// AuditSearcher serves rotor.LookupEvents: records with Seq > after that
// match f, up to limit, oldest first, and the seq to continue after (0: no
// more).
type AuditSearcher interface {
	Search(ctx context.Context, f audit.Filter, limit int, after uint64) ([]audit.Record, uint64, error)
}

// WebhookAdmin serves rotor.ListParkedEvents and rotor.RedriveEvent.
type WebhookAdmin interface {
	Parked(ctx context.Context, after int64, limit int) ([]store.OutboxEntry, error)
	Redrive(ctx context.Context, seq int64) error
	Backlog(ctx context.Context) (pending, parked int, err error)
}
