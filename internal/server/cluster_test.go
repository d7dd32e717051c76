package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/keys"
)

// clusterNode opens a node of a store shared through dsn. With keyFrom,
// the node's data dir gets that node's master key first, as an operator
// copies it.
func clusterNode(t *testing.T, dsn, node string, keyFrom *Server) *Server {
	t.Helper()
	dir := t.TempDir()
	if keyFrom != nil {
		b, err := os.ReadFile(filepath.Join(keyFrom.cfg.DataDir, MasterKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, MasterKeyFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return openTestServer(t, func(c *Config) {
		c.DataDir, c.Store, c.NodeID, c.LeaseTTL = dir, dsn, node, time.Second
		c.Rotation.PollInterval = 50 * time.Millisecond
	})
}

type health struct {
	Status string
	Node   string
	Leader bool
}

func healthOf(t *testing.T, s *Server) health {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("healthz %q: %v", b, err)
	}
	return h
}

// leaders waits until exactly one of nodes leads, and returns its index.
func leader(t *testing.T, nodes ...*Server) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, at := 0, -1
		for i, s := range nodes {
			if healthOf(t, s).Leader {
				n, at = n+1, i
			}
		}
		if n > 1 {
			t.Fatalf("%d nodes lead at once", n)
		}
		if n == 1 {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatal("no node leads within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClusterOnPostgres(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	dsn := pg.DSN(pg.SuperUser, pg.SuperPassword, pg.CreateDatabase(t, "rotor"))
	a := clusterNode(t, dsn, "a", nil)
	b := clusterNode(t, dsn, "b", a)
	stops := []func() error{runTestServer(t, a), runTestServer(t, b)}
	ca, cb := sdkClient(a), sdkClient(b)
	ctx := t.Context()

	if h := healthOf(t, a); h.Node != "a" || h.Status != "ok" {
		t.Errorf("healthz of a = %+v", h)
	}
	leader(t, a, b)

	// A write on one node is read on the other at once, although B caches
	// what it reads.
	if _, err := ca.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/db"), SecretString: aws.String("v0")}); err != nil {
		t.Fatal(err)
	}
	ls, _ := subscribeLabels(t, b, `{"SecretIds":["app/db"]}`, testSecret)
	for i := range 50 {
		if _, err := cb.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")}); err != nil {
			t.Fatal(err)
		}
		want := "value-" + strings.Repeat("x", i)
		put, err := ca.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), SecretString: aws.String(want)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := cb.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(got.SecretString) != want {
			t.Fatalf("round %d: node b read %q right after node a wrote %q", i, aws.ToString(got.SecretString), want)
		}
		// The push stream on b carries the label move made on a.
		if i < 3 {
			e := ls.within(5 * time.Second)
			for e.VersionStage != "AWSCURRENT" {
				e = ls.within(5 * time.Second)
			}
			if e.VersionId != aws.ToString(put.VersionId) {
				t.Errorf("stream on b: AWSCURRENT → %s, want %s", e.VersionId, aws.ToString(put.VersionId))
			}
		}
	}

	// The root key cannot be replaced under the other nodes' feet.
	var pre *keys.PreconditionError
	if _, err := (keyAdmin{Service: a.keys, cfg: a.cfg}).RotateRootKey(ctx, nil); !errors.As(err, &pre) || !strings.Contains(err.Error(), "several nodes") {
		t.Errorf("RotateRootKey on a shared store: %v, want a PreconditionError naming the nodes", err)
	}

	// A node with another master key is refused, naming the remedy.
	cfg := b.cfg
	cfg.DataDir, cfg.NodeID = t.TempDir(), "c"
	if _, err := Open(ctx, cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "same master key") {
		t.Fatalf("a node with another master key: %v, want a refusal naming the master key", err)
	}

	// The leader releases the lease when it stops: the other node leads
	// well before the lease's TTL would have run out.
	nodes := []*Server{a, b}
	l := leader(t, a, b)
	if err := stops[l](); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	leader(t, nodes[1-l])
	t.Logf("handover after a graceful stop: %v", time.Since(start))
}
