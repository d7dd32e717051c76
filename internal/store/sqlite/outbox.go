package sqlite

import (
	"context"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
)

const (
	outboxColumns = `seq, target, event_id, body, created_ms, attempts, next_ms, parked, last_error`
	qAddOutbox    = `INSERT INTO outbox (target, event_id, body, created_ms, attempts, next_ms, parked, last_error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qOutboxDue = `SELECT ` + outboxColumns + ` FROM outbox WHERE parked = 0 AND next_ms <= ?
		ORDER BY next_ms, seq LIMIT ?`
	qUpdateOutbox = `UPDATE outbox SET attempts = ?, next_ms = ?, parked = ?, last_error = ? WHERE seq = ?`
	qDeleteOutbox = `DELETE FROM outbox WHERE seq = ?`
	qListOutbox   = `SELECT ` + outboxColumns + ` FROM outbox WHERE parked = ? AND seq > ?
		ORDER BY seq LIMIT ?`
	qOutboxCounts = `SELECT coalesce(sum(parked = 0), 0), coalesce(sum(parked = 1), 0) FROM outbox`
)

// AddOutbox inserts entries and fills their Seq.
func (t *txn) AddOutbox(ctx context.Context, entries []store.OutboxEntry) error {
	if err := t.check(true); err != nil {
		return err
	}
	st, qctx, err := t.prepare(ctx, qAddOutbox)
	if err != nil {
		return fail(ctx, t.c, "add outbox", err)
	}
	for i := range entries {
		e := &entries[i]
		res, err := st.ExecContext(qctx, e.Target, e.EventID, e.Body, toMS(e.CreatedAt), e.Attempts,
			toMS(e.NextAttemptAt), e.Parked, e.LastError)
		if err != nil {
			return fail(ctx, t.c, "add outbox", err)
		}
		if e.Seq, err = res.LastInsertId(); err != nil {
			return fail(ctx, t.c, "add outbox", err)
		}
	}
	return nil
}

// OutboxDue returns the entries due at t.
func (t *txn) OutboxDue(ctx context.Context, at time.Time, limit int) ([]store.OutboxEntry, error) {
	return queryAll(ctx, t, "outbox due", qOutboxDue, scanOutbox, toMS(at), limit)
}

// UpdateOutbox records a failed attempt.
func (t *txn) UpdateOutbox(ctx context.Context, e store.OutboxEntry) error {
	return t.execOne(ctx, "update outbox", qUpdateOutbox, e.Attempts, toMS(e.NextAttemptAt), e.Parked, e.LastError, e.Seq)
}

// DeleteOutbox removes a delivered entry.
func (t *txn) DeleteOutbox(ctx context.Context, seq int64) error {
	return t.execOne(ctx, "delete outbox", qDeleteOutbox, seq)
}

// ListOutbox returns a page of pending or parked entries.
func (t *txn) ListOutbox(ctx context.Context, parked bool, after int64, limit int) ([]store.OutboxEntry, error) {
	return queryAll(ctx, t, "list outbox", qListOutbox, scanOutbox, parked, after, limit)
}

// OutboxCounts counts pending and parked entries.
func (t *txn) OutboxCounts(ctx context.Context) (pending, parked int, err error) {
	c, err := queryOne(ctx, t, "count outbox", qOutboxCounts, func(sc scanner) ([2]int, error) {
		var c [2]int
		err := sc.Scan(&c[0], &c[1])
		return c, err
	})
	return c[0], c[1], err
}
