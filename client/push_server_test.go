package client_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/client"
	"github.com/rotor-secrets/rotor/internal/server"
)

const (
	rootKeyID  = "AKRTPUSHTESTKEY00001"
	rootSecret = "push-test-secret-access-key-0123456789"
)

// rotorServer is an in-process Rotor server that can be restarted on the
// same address and data dir.
type rotorServer struct {
	t    *testing.T
	cfg  server.Config
	stop func()
}

func startRotor(t *testing.T) *rotorServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &rotorServer{t: t, cfg: server.Config{
		Listen: addr, DataDir: t.TempDir(), Region: server.DefaultRegion, AccountID: server.DefaultAccountID,
		RootAccessKeyID: rootKeyID, RootSecretAccessKey: rootSecret, ShutdownTimeout: 10 * time.Second,
	}}
	r.start()
	t.Cleanup(r.shutdown)
	return r
}

func (r *rotorServer) start() {
	r.t.Helper()
	s, err := server.Open(context.Background(), r.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("server Run: %v", err)
		}
	}
}

func (r *rotorServer) shutdown() {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

func (r *rotorServer) endpoint() string { return "http://" + r.cfg.Listen }

var rootCreds = credentials.NewStaticCredentialsProvider(rootKeyID, rootSecret, "")

func sdkClient(r *rotorServer) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       server.DefaultRegion,
		BaseEndpoint: aws.String(r.endpoint()),
		Credentials:  rootCreds,
		Retryer:      aws.NopRetryer{},
	})
}

// countingAPI counts the GetSecretValue calls the cache makes.
type countingAPI struct {
	client.API
	gets atomic.Int64
}

func (c *countingAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.gets.Add(1)
	return c.API.GetSecretValue(ctx, in, opts...)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestPushKeepsCacheFresh: with push on, a cache whose TTL is an hour
// holds a new AWSCURRENT within a second of the change (a read answered
// from memory returns it) and keeps doing so after the server restarts.
func TestPushKeepsCacheFresh(t *testing.T) {
	srv := startRotor(t)
	sm := sdkClient(srv)
	ctx := t.Context()
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/db"), SecretString: aws.String("value-1")})
	if err != nil {
		t.Fatal(err)
	}
	api := &countingAPI{API: sm}
	cache := client.New(api, client.Config{TTL: time.Hour})
	defer cache.Close()
	if got, err := cache.GetString(ctx, "app/db"); err != nil || got != "value-1" {
		t.Fatalf("Get = %q, %v", got, err)
	}

	changes := make(chan client.Change, 100)
	logs := &syncBuf{}
	transport := &http.Transport{}
	push, err := client.StartPush(ctx, cache, client.PushConfig{
		Endpoint: srv.endpoint(), Region: server.DefaultRegion, Credentials: rootCreds,
		HTTPClient: &http.Client{Transport: transport},
		SecretIDs:  []string{"app/db"},
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnChange: func(c client.Change) { changes <- c },
	})
	if err != nil {
		t.Fatal(err)
	}
	waitResync := func() {
		t.Helper()
		for {
			select {
			case c := <-changes:
				if c.Resync {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatal("push did not connect")
			}
		}
	}
	waitResync()
	if !push.Connected() {
		t.Fatal("Connected() = false after the ready event")
	}

	// freshWithin checks that the cache serves want within d of now
	// without the read going to the service.
	freshWithin := func(d time.Duration, want string) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			before := api.gets.Load()
			got, err := cache.GetString(ctx, "app/db")
			if err != nil {
				t.Fatal(err)
			}
			if got == want {
				if api.gets.Load() != before {
					// The read fetched: fine only if push had already
					// invalidated it; try again to see a pure hit.
					continue
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("cache serves %q %v after the change, want %q", got, d, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	drain := func() {
		for {
			select {
			case <-changes:
			default:
				return
			}
		}
	}

	// A PutSecretValue (what a rotation's createSecret+finishSecret
	// amounts to for AWSCURRENT).
	put, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), SecretString: aws.String("value-2")})
	if err != nil {
		t.Fatal(err)
	}
	freshWithin(time.Second, "value-2")

	// finishSecret's UpdateSecretVersionStage.
	if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: created.ARN, VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: created.VersionId, RemoveFromVersionId: put.VersionId,
	}); err != nil {
		t.Fatal(err)
	}
	freshWithin(time.Second, "value-1")

	// The server restarts: the stream drops, push reconnects, and a change
	// made meanwhile is caught up on reconnection.
	drain()
	srv.shutdown()
	for push.Connected() {
		time.Sleep(5 * time.Millisecond)
	}
	srv.start()
	waitResync()
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), SecretString: aws.String("value-3")}); err != nil {
		t.Fatal(err)
	}
	freshWithin(time.Second, "value-3")

	push.Stop()
	transport.CloseIdleConnections()
	// No goroutine of push outlives Stop.
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "client.(*Push)") {
		t.Errorf("push goroutines after Stop:\n%s", stacks)
	}
	if l := logs.String(); strings.Contains(l, "value-") {
		t.Errorf("a secret value is in the push log:\n%s", l)
	}
}
