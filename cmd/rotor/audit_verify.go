package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/server"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

func newAuditVerifyCmd(e *env) *cobra.Command {
	var dataDir, logPath, keyPath, anchorPath string
	var noAnchor bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that the audit log is complete and unaltered",
		Long: `Check the audit log's hash chain and signed checkpoints, and compare its end with
the latest checkpoint anchored in the store, so that an edited, deleted,
reordered or cut-off record is found. It reads files only: run it on the
server's machine or on copies of <data-dir>/audit/audit.log, audit.pub and the
store (or --anchor: a checkpoint kept somewhere the log's writer cannot reach).

Exit status: 0 intact, 1 a problem was found (the first is reported), 2 usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logPath == "" {
				logPath = filepath.Join(dataDir, server.AuditDir, server.AuditLogFile)
			}
			if keyPath == "" {
				keyPath = filepath.Join(dataDir, server.AuditDir, server.AuditPublicKey)
			}
			pemBytes, err := os.ReadFile(keyPath)
			if err != nil {
				return fmt.Errorf("read audit public key: %w", err)
			}
			pub, err := audit.ParsePublicKey(pemBytes)
			if err != nil {
				return fmt.Errorf("audit public key %s: %w", keyPath, err)
			}
			var anchor *audit.Checkpoint
			if !noAnchor {
				if anchor, err = loadAnchor(cmd.Context(), dataDir, anchorPath); err != nil {
					return err
				}
			}
			return verifyAudit(e, logPath, pub, anchor)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", server.DefaultDataDir, "the server's data directory")
	f.StringVar(&logPath, "log", "", "audit log file (default <data-dir>/audit/audit.log)")
	f.StringVar(&keyPath, "public-key", "", "PEM public key of the checkpoints (default <data-dir>/audit/audit.pub)")
	f.StringVar(&anchorPath, "anchor", "", "a checkpoint JSON file to compare the log's end with (default: the one in the store)")
	f.BoolVar(&noAnchor, "no-anchor", false, "do not compare with an anchored checkpoint (cut-off records after the last checkpoint then go unnoticed)")
	return cmd
}

// loadAnchor reads the latest anchored checkpoint: from a file when given,
// else from the store in dataDir; nil when the store has none yet.
func loadAnchor(ctx context.Context, dataDir, path string) (*audit.Checkpoint, error) {
	var raw string
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read anchor: %w", err)
		}
		raw = string(b)
	} else {
		dbPath := filepath.Join(dataDir, "rotor.db")
		if _, err := os.Stat(dbPath); err != nil {
			return nil, fmt.Errorf("no store at %s to read the anchor from (use --anchor FILE or --no-anchor): %w", dbPath, err)
		}
		st, err := sqlite.Open(ctx, dbPath)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		defer st.Close()
		err = st.Read(ctx, func(tx store.Tx) (err error) {
			raw, err = tx.Meta(ctx, server.AuditAnchorMeta)
			return err
		})
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read anchor: %w", err)
		}
	}
	var c audit.Checkpoint
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return nil, fmt.Errorf("anchor is not a checkpoint: %w", err)
	}
	return &c, nil
}

func verifyAudit(e *env, logPath string, pub ed25519.PublicKey, anchor *audit.Checkpoint) error {
	fh, err := os.Open(logPath)
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer fh.Close()
	rep, err := audit.Verify(fh, pub, anchor)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	if p := rep.Problem; p != nil {
		fmt.Fprintf(e.stdout, "audit log %s: NOT INTACT\n", logPath)
		fmt.Fprintf(e.stdout, "first problem: line %d (seq %d): %s: %s\n", p.Line, p.Seq, p.Kind, p.Detail)
		fmt.Fprintf(e.stdout, "checked before it: %d records, %d checkpoints\n", rep.Records, rep.Checkpoints)
		return &exitError{code: 1, err: fmt.Errorf("audit log is not intact: %s at line %d", p.Kind, p.Line)}
	}
	fmt.Fprintf(e.stdout, "audit log %s: intact\n", logPath)
	fmt.Fprintf(e.stdout, "records: %d, checkpoints: %d, last seq: %d\n", rep.Records, rep.Checkpoints, rep.LastSeq)
	if c := rep.LastCheckpoint; c != nil {
		fmt.Fprintf(e.stdout, "last checkpoint: seq %d at %s, key %s\n", c.Seq, c.Time.UTC().Format("2006-01-02T15:04:05Z"), c.KeyID)
	}
	if anchor == nil {
		fmt.Fprintln(e.stdout, "anchor: none compared (records after the last checkpoint are unprotected)")
	} else {
		fmt.Fprintf(e.stdout, "anchor: seq %d matches\n", anchor.Seq)
	}
	return nil
}
