package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rotor-secrets/rotor/internal/audit"
	"github.com/rotor-secrets/rotor/internal/server"
	"github.com/rotor-secrets/rotor/internal/store"
)

func newAuditVerifyCmd(e *env) *cobra.Command {
	var dataDirs []string
	var storeDSN, logPath, keyPath, anchorPath string
	var noAnchor bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check that the audit log is complete and unaltered",
		Long: `Check the audit log's hash chain and signed checkpoints, and compare its end with
the latest checkpoint anchored in the store, so that an edited, deleted,
reordered or cut-off record is found. It reads files only: run it on the
server's machine or on copies of <data-dir>/audit/audit.log, audit.pub and the
store (or --anchor: a checkpoint kept somewhere the log's writer cannot reach).

Several nodes sharing a PostgreSQL store (--store) each write their own chain
in their data dir, anchored in the store under the node's id (<data-dir>/node-id).
Give the store and every node's data dir (or a copy of its audit/ directory and
node-id file), --data-dir once per node: each chain is checked against its own
anchor, and a node the store knows of whose chain was not given is a problem.

Exit status: 0 intact, 1 a problem was found (the first is reported), 2 usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(dataDirs) > 1 && (logPath != "" || keyPath != "" || anchorPath != "") {
				return &exitError{code: 2, err: errors.New("--log, --public-key and --anchor name one node's files: give them with one --data-dir")}
			}
			if storeDSN == "" {
				for _, dir := range dataDirs {
					if err := verifyNode(cmd.Context(), e, nil, dir, "", logPath, keyPath, anchorPath, noAnchor); err != nil {
						return err
					}
				}
				return nil
			}
			return verifyNodes(cmd.Context(), e, storeDSN, dataDirs, noAnchor)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&dataDirs, "data-dir", []string{server.DefaultDataDir}, "the server's data directory (repeat once per node with --store)")
	f.StringVar(&storeDSN, "store", "", "the PostgreSQL store the nodes share (postgres://…): read the anchors there and check every node's chain")
	f.StringVar(&logPath, "log", "", "audit log file (default <data-dir>/audit/audit.log)")
	f.StringVar(&keyPath, "public-key", "", "PEM public key of the checkpoints (default <data-dir>/audit/audit.pub)")
	f.StringVar(&anchorPath, "anchor", "", "a checkpoint JSON file to compare the log's end with (default: the one in the store)")
	f.BoolVar(&noAnchor, "no-anchor", false, "do not compare with an anchored checkpoint (cut-off records after the last checkpoint then go unnoticed)")
	return cmd
}

// verifyNodes checks the chain of every node of a shared store.
func verifyNodes(ctx context.Context, e *env, dsn string, dirs []string, noAnchor bool) error {
	st, err := server.OpenStore(ctx, server.Config{Store: dsn})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	var known []string
	if err := st.Read(ctx, func(tx store.Tx) (err error) {
		known, err = server.AuditNodes(ctx, tx)
		return err
	}); err != nil {
		return fmt.Errorf("read the store's audit nodes: %w", err)
	}
	var checked []string
	for _, dir := range dirs {
		node, err := server.ReadNodeID(dir)
		if err != nil {
			return fmt.Errorf("node id of %s: %w", dir, err)
		}
		if slices.Contains(checked, node) {
			return &exitError{code: 2, err: fmt.Errorf("node %s is given twice", node)}
		}
		checked = append(checked, node)
		if err := verifyNode(ctx, e, st, dir, node, "", "", "", noAnchor); err != nil {
			return err
		}
	}
	var missing []string
	for _, n := range known {
		if !slices.Contains(checked, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(e.stdout, "NOT CHECKED: the store knows the audit chains of nodes %q; give the data dir of each (--data-dir)\n", missing)
		return &exitError{code: 1, err: fmt.Errorf("audit chains of %d node(s) not checked: %q", len(missing), missing)}
	}
	fmt.Fprintf(e.stdout, "all %d node chains intact\n", len(checked))
	return nil
}

// verifyNode checks one data dir's chain. With st (a shared store) the
// anchor is node's there; without, the one in the data dir's own store.
func verifyNode(ctx context.Context, e *env, st store.Store, dataDir, node, logPath, keyPath, anchorPath string, noAnchor bool) error {
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
		if anchor, err = loadAnchor(ctx, st, dataDir, node, anchorPath); err != nil {
			return err
		}
	}
	if node != "" {
		fmt.Fprintf(e.stdout, "node %s:\n", node)
	}
	return verifyAudit(e, logPath, pub, anchor)
}

// loadAnchor reads the latest anchored checkpoint: from a file when given,
// else from st (node's) or the store in dataDir; nil when there is none
// yet.
func loadAnchor(ctx context.Context, st store.Store, dataDir, node, path string) (*audit.Checkpoint, error) {
	var raw string
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read anchor: %w", err)
		}
		raw = string(b)
	} else {
		key := server.AuditAnchorKey(node, st != nil)
		if st == nil {
			dbPath := filepath.Join(dataDir, "rotor.db")
			if _, err := os.Stat(dbPath); err != nil {
				return nil, fmt.Errorf("no store at %s to read the anchor from (use --store DSN, --anchor FILE or --no-anchor): %w", dbPath, err)
			}
			local, err := server.OpenStore(ctx, server.Config{DataDir: dataDir})
			if err != nil {
				return nil, fmt.Errorf("open store: %w", err)
			}
			defer local.Close()
			st = local
		}
		err := st.Read(ctx, func(tx store.Tx) (err error) {
			raw, err = tx.Meta(ctx, key)
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
