package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/metrics"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/webhook"
)

// The audit trail's files under the data directory, and its metadata keys.
const (
	AuditDir        = "audit"
	AuditLogFile    = "audit.log"
	AuditPublicKey  = "audit.pub"
	auditSignerMeta = "audit.signing_key" // the Ed25519 private key, sealed by the keyring
	// AuditAnchorMeta holds the latest checkpoint as JSON: a log cut short
	// before it is detected by `rotor audit verify`.
	AuditAnchorMeta = "audit.anchor"
)

var auditSignerAAD = []byte("rotor/audit-signing-key")

// auditSigner loads the audit signing key from the store, creating it on
// first start, and writes its public half next to the log for auditors.
func auditSigner(ctx context.Context, st store.Store, kr *keyring.Keyring, dir string) (ed25519.PrivateKey, error) {
	var priv ed25519.PrivateKey
	err := st.Write(ctx, func(tx store.Tx) error {
		v, err := tx.Meta(ctx, auditSignerMeta)
		if errors.Is(err, store.ErrNotFound) {
			_, p, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			sealed, _, err := kr.Seal(p.Seed(), auditSignerAAD)
			if err != nil {
				return err
			}
			priv = p
			return tx.PutMeta(ctx, auditSignerMeta, string(sealed))
		}
		if err != nil {
			return err
		}
		seed, err := kr.Open([]byte(v), auditSignerAAD)
		if err != nil {
			return fmt.Errorf("open audit signing key: %w", err)
		}
		if len(seed) != ed25519.SeedSize {
			return errors.New("audit signing key: corrupt")
		}
		priv = ed25519.NewKeyFromSeed(seed)
		clear(seed)
		return nil
	})
	if err != nil {
		return nil, err
	}
	pem := audit.MarshalPublicKey(priv.Public().(ed25519.PublicKey))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create audit dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, AuditPublicKey), pem, 0o644); err != nil {
		return nil, fmt.Errorf("write audit public key: %w", err)
	}
	return priv, nil
}

// openAudit opens the audit log, anchoring each checkpoint in the store.
func openAudit(ctx context.Context, st store.Store, kr *keyring.Keyring, dataDir, anchorKey string, syncEvery time.Duration) (*audit.Log, error) {
	dir := filepath.Join(dataDir, AuditDir)
	signer, err := auditSigner(ctx, st, kr, dir)
	if err != nil {
		return nil, err
	}
	return audit.Open(audit.Options{
		Path:      filepath.Join(dir, AuditLogFile),
		Signer:    signer,
		SyncEvery: syncEvery,
		Anchor: func(c audit.Checkpoint) error {
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return st.Write(actx, func(tx store.Tx) error { return tx.PutMeta(actx, anchorKey, string(b)) })
		},
	})
}

// auditFile searches the audit log file (awsapi.AuditSearcher).
type auditFile struct{ path string }

func (a auditFile) Search(ctx context.Context, f audit.Filter, limit int, after uint64) ([]audit.Record, uint64, error) {
	fh, err := os.Open(a.path)
	if err != nil {
		return nil, 0, err
	}
	defer fh.Close()
	return audit.Search(ctxReader{ctx, fh}, f, limit, after)
}

// ctxReader stops a long scan when the request ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// observers fans the server's events out: rotation events to the log, the
// audit trail, metrics and webhooks; label changes to the push hub and
// webhooks.
type observers struct {
	log      *slog.Logger
	audit    *audit.Log // nil: none
	metrics  *metrics.Metrics
	hooks    *webhook.Dispatcher // nil: no webhooks
	labels   *events.Hub
	account  string
	region   string
	newEvent func() string
}

// Record implements rotation.Recorder. A rotation event the audit log
// cannot take is logged as an error and counted; the rotation itself goes
// on (its state is in the store, and refusing to finish would leave the
// database and the secret apart).
func (o *observers) Record(ctx context.Context, r rotation.Record) {
	o.log.InfoContext(ctx, "rotation event", "event", string(r.Type), "secret_arn", r.SecretARN,
		"version_id", r.VersionID, "function", r.Function, "attempt", r.Attempt, "error", r.Error)
	if o.metrics != nil {
		o.metrics.ObserveRotation(r.Function, string(r.Type))
	}
	if o.audit != nil {
		outcome := audit.OutcomeSuccess
		if r.Error != "" {
			outcome = audit.OutcomeError
		}
		_, err := o.audit.Append(ctx, audit.Record{
			Time: r.Time.UTC(), Type: "rotation", EventName: string(r.Type), PrincipalARN: "rotor:rotation",
			SecretARN: r.SecretARN, VersionID: r.VersionID, Outcome: outcome, Message: truncate(r.Error, 512),
		})
		if err != nil {
			o.metrics.AuditWriteFailure()
			o.log.ErrorContext(ctx, "audit write failed for a rotation event", "event", string(r.Type), "secret_arn", r.SecretARN, "err", err)
		}
	}
	if o.hooks != nil {
		if err := o.hooks.Enqueue(ctx, webhook.RotationEvent(r, o.account, o.region, o.newEvent())); err != nil {
			o.log.ErrorContext(ctx, "webhook enqueue failed", "event", string(r.Type), "secret_arn", r.SecretARN, "err", err)
		}
	}
}

// LabelChanges receives the labels a committed call moved.
func (o *observers) LabelChanges(ctx context.Context, changes []events.LabelChange) {
	for _, c := range changes {
		o.log.DebugContext(ctx, "label moved", "secret_arn", c.SecretARN, "stage", c.Label,
			"version_id", c.VersionID, "from_version_id", c.FromVersionID)
	}
	o.labels.Publish(changes...)
	if o.hooks == nil {
		return
	}
	evs := make([]webhook.Event, 0, len(changes))
	for _, c := range changes {
		if ev, ok := webhook.LabelEvent(c, o.account, o.region, o.newEvent()); ok {
			evs = append(evs, ev)
		}
	}
	if len(evs) == 0 {
		return
	}
	// The caller's request may end before the outbox write; it must not
	// cancel it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := o.hooks.Enqueue(ctx, evs...); err != nil {
		o.log.ErrorContext(ctx, "webhook enqueue failed", "events", len(evs), "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
