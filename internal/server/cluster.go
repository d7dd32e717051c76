package server

// Several nodes on one PostgreSQL store (--store postgres://…).
//
// Every node serves the whole API. The background work that must happen
// once — the rotation engine and its schedule, the purge of deleted
// secrets, the master key job, webhook deliveries — runs only on the node
// that holds the lease "rotation" (internal/lease), and every store write
// it makes is fenced with the lease's token: a node that lost the lease
// cannot commit a step, and the next holder resumes each rotation from its
// stored step.
//
// Each node learns of the others' commits through the store's notices
// (store.Shared) and counters: the read cache follows the store's
// generation and the IAM caches (access keys, identity policies) the count
// of iamTopic, both checked in the database before each use, so neither is
// ever behind another node's commit; an iamTopic notice also drops them
// (for the label streams' re-checks); changes
// to master keys and named keys (keysTopic) reload the keyring's view;
// label changes (secrets.LabelTopic) go to the node's push streams; and a
// rotation requested on any node wakes the leader's engine (kickTopic).
// When notices may have been missed, all of it happens at once and push
// subscribers get a Resync.
//
// Each node writes its own audit chain in its data dir, anchored in the
// store under its node id (AuditAnchorKey); `rotor audit verify` checks
// every node's chain.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/keys"
	"github.com/rotor-secrets/rotor/internal/lease"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/store/postgres"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

// Store notice topics published by this package's wrappers.
const (
	iamTopic     = "iam"
	keysTopic    = "keys"
	kickTopic    = "kick"
	secretsTopic = "secrets"
	leaseTopic   = "lease" // the lease was released: try to take it now
)

// RotationLease is the name of the lease whose holder runs the background
// work.
const RotationLease = "rotation"

// DefaultLeaseTTL is how long the lease outlives its holder's last renewal.
const DefaultLeaseTTL = lease.DefaultTTL

// NodeIDFile holds the node's id in its data dir (created on first start
// unless --node-id gives one).
const NodeIDFile = "node-id"

// AuditNodesMeta lists, as a JSON array, the node ids that have written an
// audit chain anchored in the store.
const AuditNodesMeta = "audit.nodes"

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// isPostgres reports whether dsn names a PostgreSQL store.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func validateStore(cfg *Config) []error {
	var errs []error
	if cfg.Store != "" && !isPostgres(cfg.Store) {
		errs = append(errs, errors.New("store: want postgres://… or postgresql://… (or nothing for the embedded SQLite store)"))
	}
	if cfg.NodeID != "" && !nodeIDPattern.MatchString(cfg.NodeID) {
		errs = append(errs, fmt.Errorf("node-id: %q: want 1-63 letters, digits, '.', '_' or '-'", cfg.NodeID))
	}
	if cfg.LeaseTTL < 0 || cfg.LeaseTTL > 0 && cfg.LeaseTTL < 300*time.Millisecond {
		errs = append(errs, errors.New("lease-ttl: want at least 300ms"))
	}
	return errs
}

// OpenStore opens the store cfg names (Store and DataDir), as the server
// does, for tools that read it (rotor audit verify).
func OpenStore(ctx context.Context, cfg Config) (store.Store, error) {
	return openStore(ctx, cfg, slog.New(slog.DiscardHandler))
}

// ReadNodeID returns the node id kept in dataDir.
func ReadNodeID(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, NodeIDFile))
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if !nodeIDPattern.MatchString(id) {
		return "", fmt.Errorf("%s: %q is not a node id", filepath.Join(dataDir, NodeIDFile), id)
	}
	return id, nil
}

// openStore opens the configured store: SQLite in the data dir, or
// PostgreSQL.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	if cfg.Store == "" {
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, storeFile))
	}
	return postgres.Open(ctx, cfg.Store, postgres.Options{MaxConns: cfg.StoreMaxConns, Logger: log})
}

// StoreDescription names the store for logs without its password.
func StoreDescription(cfg Config) string {
	if cfg.Store == "" {
		return "sqlite:" + filepath.Join(cfg.DataDir, storeFile)
	}
	pc, err := pgx.ParseConfig(cfg.Store)
	if err != nil {
		return "postgres (unparsable DSN)"
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", pc.User, pc.Host, pc.Port, pc.Database)
}

// nodeID returns the node's id — the configured one, else the one in the
// data dir, else a new one — and keeps it in the data dir, where rotor
// audit verify finds which chain a data dir holds.
func nodeID(cfg Config, log *slog.Logger) (string, error) {
	id, err := ReadNodeID(cfg.DataDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	switch {
	case cfg.NodeID == "" && id != "":
		return id, nil
	case cfg.NodeID == id:
		return id, nil
	case cfg.NodeID != "":
		if id != "" {
			log.Warn("node id changed: the audit chain in this data dir continues under the new id", "old", id, "node", cfg.NodeID)
		}
		id = cfg.NodeID
	default:
		var r [4]byte
		_, _ = rand.Read(r[:])
		id = "node-" + hex.EncodeToString(r[:])
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, NodeIDFile), []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

// AuditAnchorKey is the meta key of a node's latest audit checkpoint:
// AuditAnchorMeta on a store of one node, one per node on a shared store.
func AuditAnchorKey(node string, shared bool) string {
	if !shared {
		return AuditAnchorMeta
	}
	return AuditAnchorMeta + "." + node
}

// registerAuditNode adds node to AuditNodesMeta.
func registerAuditNode(ctx context.Context, st store.Store, node string) error {
	return st.Write(ctx, func(tx store.Tx) error {
		nodes, err := AuditNodes(ctx, tx)
		if err != nil {
			return err
		}
		if slices.Contains(nodes, node) {
			return nil
		}
		b, err := json.Marshal(append(nodes, node))
		if err != nil {
			return err
		}
		return tx.PutMeta(ctx, AuditNodesMeta, string(b))
	})
}

// AuditNodes returns the nodes that have written audit chains to a shared
// store.
func AuditNodes(ctx context.Context, tx store.Tx) ([]string, error) {
	v, err := tx.Meta(ctx, AuditNodesMeta)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var nodes []string
	if err := json.Unmarshal([]byte(v), &nodes); err != nil {
		return nil, fmt.Errorf("%s: %w", AuditNodesMeta, err)
	}
	return nodes, nil
}

// publishing is a Store whose every Write also publishes topic, so that
// the other nodes hear which kind of state changed.
type publishing struct {
	store.Store
	topic string
}

func (p publishing) Write(ctx context.Context, fn func(tx store.Tx) error) error {
	return p.Store.Write(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if pub, ok := tx.(store.Publisher); ok {
			return pub.Publish(ctx, p.topic, "")
		}
		return nil
	})
}

// topicVersion returns the function that counts st's committed
// transactions on topic, or nil when st is not shared.
func topicVersion(st store.Store, topic string) func(context.Context) (uint64, error) {
	tv, ok := st.(store.TopicVersions)
	if !ok {
		return nil
	}
	return func(ctx context.Context) (uint64, error) { return tv.TopicVersion(ctx, topic) }
}

// cacheVersion is what the read cache of secret values keys on with a
// shared store: the domain's commits (secretsTopic, published by every
// write of the secrets service) and the key jobs' (keysTopic, which
// re-wrap versions), not every commit — an audit checkpoint or a
// rotation's progress leaves it valid. Nil when st is not shared.
func cacheVersion(st store.Store) func(context.Context) (uint64, error) {
	secrets, keys := topicVersion(st, secretsTopic), topicVersion(st, keysTopic)
	if secrets == nil {
		return nil
	}
	return func(ctx context.Context) (uint64, error) {
		a, err := secrets(ctx)
		if err != nil {
			return 0, err
		}
		b, err := keys(ctx)
		if err != nil {
			return 0, err
		}
		return a + b + 1, nil
	}
}

// publishingIfShared wraps st when other nodes share it.
func publishingIfShared(st store.Store, topic string) store.Store {
	if _, ok := st.(store.Shared); !ok {
		return st
	}
	return publishing{st, topic}
}

// cluster is a node's part in a group of nodes sharing a store.
type cluster struct {
	st      store.Store
	node    string
	holder  string // the lease holder id: node id and this process
	lease   *lease.Lease
	leading atomic.Bool
	log     *slog.Logger
}

func newCluster(ctx context.Context, cfg Config, st store.Store, node string, log *slog.Logger) (*cluster, error) {
	var r [4]byte
	_, _ = rand.Read(r[:])
	c := &cluster{st: st, node: node, holder: node + "/" + hex.EncodeToString(r[:]), log: log}
	pg, ok := st.(*postgres.Store)
	if !ok {
		return c, nil
	}
	ttl := cfg.LeaseTTL
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	l, err := lease.Open(ctx, pg.Pool(), lease.Options{
		Name: RotationLease, Holder: c.holder, TTL: ttl, Renew: ttl / 3,
		Retry: min(lease.DefaultRetry, ttl/10), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	c.lease = l
	return c, nil
}

// run runs work while this node leads (always, with one node), until ctx
// ends. On a shared store work's ctx carries the lease's fence and ends
// when the lease may be lost; run competes again afterwards.
func (c *cluster) run(ctx context.Context, work func(context.Context)) {
	if c.lease == nil {
		c.leading.Store(true)
		work(ctx)
		c.leading.Store(false)
		return
	}
	led := false
	c.lease.Run(ctx, func(ctx context.Context, token int64) {
		c.log.Info("leading: running rotations and background jobs", "node", c.node, "token", token)
		c.leading.Store(true)
		led = true
		defer c.leading.Store(false)
		work(store.WithFence(ctx, store.Fence{Lease: RotationLease, Token: token}))
		c.log.Info("no longer leading", "node", c.node, "token", token)
	})
	if led {
		// Run released the lease: tell the others, who would otherwise
		// try again only at their next retry.
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := c.st.Write(wctx, func(tx store.Tx) error {
			return tx.(store.Publisher).Publish(wctx, leaseTopic, "")
		})
		if err != nil {
			c.log.Warn("could not tell the other nodes that the lease is free; they take it at their next retry", "err", err)
		}
	}
}

// watch makes this node follow the other nodes' commits.
func watch(st store.Store, clu *cluster, access *iam.Service, masterKeys *keys.Service, labels *events.Hub, engine *rotation.Engine, log *slog.Logger) {
	sh, ok := st.(store.Shared)
	if !ok {
		return
	}
	reloadKeys := (&coalescer{fn: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := masterKeys.Refresh(ctx); err != nil {
			log.Error("reload master keys after another node's change", "err", err)
		}
	}}).trigger
	sh.Watch(func(n store.Notice) {
		switch {
		case n.Missed:
			access.Invalidate()
			reloadKeys()
			labels.Publish(events.LabelChange{Resync: true})
			engine.Kick()
		case n.Topic == secrets.LabelTopic:
			c, err := secrets.DecodeLabelChange(n.Payload)
			if err != nil {
				log.Error("undecodable label change notice", "err", err)
				labels.Publish(events.LabelChange{Resync: true})
				return
			}
			labels.Publish(c)
		case n.Topic == iamTopic:
			access.Invalidate()
		case n.Topic == keysTopic:
			reloadKeys()
		case n.Topic == kickTopic:
			engine.Kick()
		case n.Topic == leaseTopic && clu.lease != nil:
			clu.lease.Wake()
		}
	})
}

// coalescer runs fn in the background after trigger, once more if
// triggered again meanwhile, never twice at once.
type coalescer struct {
	fn func()

	mu      sync.Mutex
	running bool
	again   bool
}

func (c *coalescer) trigger() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.again = true
		return
	}
	c.running = true
	go c.loop()
}

func (c *coalescer) loop() {
	for {
		c.fn()
		c.mu.Lock()
		if !c.again {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.again = false
		c.mu.Unlock()
	}
}

// kickOthers tells the other nodes (the leader among them) to read the
// rotation queue now.
func kickOthers(st store.Store, log *slog.Logger) {
	if _, ok := st.(store.Shared); !ok {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := st.Write(ctx, func(tx store.Tx) error {
			return tx.(store.Publisher).Publish(ctx, kickTopic, "")
		})
		if err != nil {
			log.Warn("could not wake the rotation leader; it will read its queue within its poll interval", "err", err)
		}
	}()
}
