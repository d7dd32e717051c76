package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rotor-secrets/rotor/internal/store"
)

// Tuning of the delivery loop.
const (
	laneBatch   = 64          // entries a lane takes per pass
	scanPage    = 500         // outbox rows read per page
	rescanEvery = time.Minute // a lane rescans the outbox from its start this often
	// snippetBytes bounds the part of an error response kept in LastError;
	// drainBytes what is read past it so the connection can be reused.
	snippetBytes = 200
	drainBytes   = 64 << 10
	maxLastError = 300
	// finishTimeout bounds the store write that records an attempt whose
	// answer arrived as Run was stopping.
	finishTimeout = 5 * time.Second
)

const lastErrorUnconfigured = "target not configured"

// Run delivers outbox entries until ctx ends, then returns nil once the
// requests in flight have been cancelled; an entry whose attempt was cut
// short keeps its state and is attempted again by the next Run. Each
// target has a lane (a goroutine) that delivers its entries in Seq order,
// so a slow or failing target does not hold back the others. Run first
// parks the entries of targets that are not configured. Store errors are
// logged and retried after PollInterval. Run returns an error at once if
// it is already running.
func (d *Dispatcher) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("webhook: dispatcher is already running")
	}
	defer d.running.Store(false)
	var wg sync.WaitGroup
	wg.Go(func() { d.parkUnconfigured(ctx) })
	for _, l := range d.lanes {
		wg.Go(func() { d.runLane(ctx, l) })
	}
	<-ctx.Done() // even with no lanes, Run lasts as long as ctx
	wg.Wait()
	return nil
}

// runLane is one target's loop. cursor is a Seq below which the target has
// no pending entry (Redrive lowers it through rewind); it only saves
// rereading the rows of other targets, so it restarts from 0 now and then.
func (d *Dispatcher) runLane(ctx context.Context, l *lane) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var cursor int64
	l.takeRewind() // cursor 0 covers any request made before Run
	rescanAt := time.Now().Add(rescanEvery)
	for ctx.Err() == nil {
		if r := l.takeRewind(); r >= 0 && r < cursor {
			cursor = r
		}
		if time.Now().After(rescanAt) {
			cursor, rescanAt = 0, time.Now().Add(rescanEvery)
		}
		var wait time.Duration
		cursor, wait = d.pass(ctx, l, cursor)
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-l.kick:
		case <-timer.C:
		}
	}
}

// pass delivers the lane's due entries in Seq order, stopping at the first
// that is not due or fails. It returns the new cursor and how long to wait
// before the next pass (0: at once).
func (d *Dispatcher) pass(ctx context.Context, l *lane, cursor int64) (int64, time.Duration) {
	poll := d.cfg.PollInterval
	name := l.target.Name
	entries, cursor, err := d.scan(ctx, name, cursor)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("read webhook outbox", "target", name, "err", err)
		}
		return cursor, poll
	}
	for _, e := range entries {
		now := d.cfg.Now()
		if wait := e.NextAttemptAt.Sub(now); wait > 0 {
			return cursor, min(wait, poll)
		}
		derr := d.deliver(ctx, l.target, e, now)
		if derr != nil && ctx.Err() != nil {
			return cursor, 0 // stopping: not the target's fault, not recorded
		}
		// The attempt is recorded even if Run is stopping meanwhile: a
		// delivered entry left in the outbox would be sent again.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		err := d.finish(wctx, &e, derr, now)
		cancel()
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Deleted meanwhile (by another dispatcher): nothing to do.
		case err != nil:
			d.log.Error("record webhook attempt", "target", name, "seq", e.Seq, "event_id", e.EventID, "err", err)
			return cursor, poll
		case derr == nil:
			d.log.Debug("webhook delivered", "target", name, "seq", e.Seq, "event_id", e.EventID, "attempt", e.Attempts+1)
		case e.Parked:
			d.log.Warn("webhook entry parked", "target", name, "seq", e.Seq, "event_id", e.EventID,
				"attempts", e.Attempts, "err", e.LastError)
			return e.Seq, 0
		default:
			d.log.Warn("webhook delivery failed", "target", name, "seq", e.Seq, "event_id", e.EventID,
				"attempt", e.Attempts, "retry_at", e.NextAttemptAt, "err", e.LastError)
			return cursor, min(e.NextAttemptAt.Sub(now), poll)
		}
		cursor = e.Seq
	}
	if len(entries) == laneBatch {
		return cursor, 0
	}
	return cursor, poll
}

// finish records an attempt: it deletes a delivered entry, or counts the
// failure, schedules the next attempt and parks the entry after
// MaxAttempts.
func (d *Dispatcher) finish(ctx context.Context, e *store.OutboxEntry, derr error, now time.Time) error {
	if derr == nil {
		return d.cfg.Store.Write(ctx, func(tx store.Tx) error { return tx.DeleteOutbox(ctx, e.Seq) })
	}
	e.Attempts++
	e.LastError = derr.Error()
	e.Parked = e.Attempts >= d.cfg.MaxAttempts
	e.NextAttemptAt = now
	if !e.Parked {
		e.NextAttemptAt = now.Add(d.backoff(e.Attempts))
	}
	return d.cfg.Store.Write(ctx, func(tx store.Tx) error { return tx.UpdateOutbox(ctx, *e) })
}

// scan returns up to laneBatch pending entries of target with Seq greater
// than cursor, in Seq order, and a new cursor: past the rows of other
// targets that precede the first entry found (past all rows read if none).
func (d *Dispatcher) scan(ctx context.Context, target string, cursor int64) ([]store.OutboxEntry, int64, error) {
	var out []store.OutboxEntry
	after := cursor
	for {
		page, err := d.page(ctx, after)
		if err != nil {
			return nil, cursor, err
		}
		for _, e := range page {
			switch {
			case e.Target == target:
				out = append(out, e)
				if len(out) == laneBatch {
					return out, cursor, nil
				}
			case len(out) == 0:
				cursor = e.Seq
			}
		}
		if len(page) < scanPage {
			return out, cursor, nil
		}
		after = page[len(page)-1].Seq
	}
}

// page reads up to scanPage pending entries with Seq greater than after.
func (d *Dispatcher) page(ctx context.Context, after int64) ([]store.OutboxEntry, error) {
	var page []store.OutboxEntry
	err := d.cfg.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		page, err = tx.ListOutbox(ctx, false, after, scanPage)
		return err
	})
	return page, err
}

// parkUnconfigured parks the pending entries of targets that are not
// configured: no lane would ever take them.
func (d *Dispatcher) parkUnconfigured(ctx context.Context) {
	var after int64
	for {
		page, err := d.page(ctx, after)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("read webhook outbox", "err", err)
			}
			return
		}
		var stray []store.OutboxEntry
		for _, e := range page {
			if _, ok := d.byName[e.Target]; !ok {
				e.Parked, e.LastError = true, lastErrorUnconfigured
				stray = append(stray, e)
			}
		}
		if len(stray) > 0 {
			err := d.cfg.Store.Write(ctx, func(tx store.Tx) error {
				for _, e := range stray {
					if err := tx.UpdateOutbox(ctx, e); err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
				}
				return nil
			})
			if err != nil {
				if ctx.Err() == nil {
					d.log.Error("park webhook entries of unconfigured targets", "err", err)
				}
				return
			}
			d.log.Warn("parked webhook entries of unconfigured targets", "count", len(stray), "target", stray[0].Target)
		}
		if len(page) < scanPage {
			return
		}
		after = page[len(page)-1].Seq
	}
}

// deliver makes one attempt to deliver e to t, signed at now. The error is
// what LastError records: short, one line, without the target's URL
// credentials or more than snippetBytes of the response body.
func (d *Dispatcher) deliver(ctx context.Context, t Target, e store.OutboxEntry, now time.Time) error {
	body := []byte(e.Body)
	rctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("cannot build the request") // the URL was validated by New
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	h.Set(headerEventID, e.EventID)
	h.Set(headerTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(headerSignature, Sign(t.Secret, now, body))
	h.Set(headerAttempt, strconv.Itoa(e.Attempts+1))
	resp, err := d.client.Do(req)
	if err != nil {
		return errors.New(redact(transportError(err, d.timeout), t.URL))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	msg := "http " + strconv.Itoa(resp.StatusCode)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirects are not followed)"
	}
	if s := oneLine(string(snippet)); s != "" {
		msg += ": " + s
	}
	return errors.New(clip(redact(msg, t.URL), maxLastError))
}

// transportError describes a failed request without the URL that
// url.Error puts in front (it may carry credentials).
func transportError(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Sprintf("timeout after %v", timeout)
		}
		err = ue.Err
	}
	return clip(oneLine(err.Error()), maxLastError)
}

// redact removes the parts of the target URL that may be credentials
// (userinfo, query) from msg, should an error quote them.
func redact(msg, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return msg
	}
	for _, s := range []string{rawURL, u.User.String(), u.RawQuery} {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// oneLine makes s printable on one line: valid UTF-8, control characters
// as spaces, trimmed.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
