package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	rotorclient "github.com/rotor-secrets/rotor/client"
	"github.com/rotor-secrets/rotor/internal/dbtest"
)

// freeAddr is a loopback address nothing listens on now, so that a server
// can keep it across restarts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())
	return addr
}

// TestPushInvalidation drives push invalidation through the built server:
// the client's cache, with an hour's TTL, serves each new AWSCURRENT within
// a second of the call that moved it, and push reconnects after the server
// restarts (catching up on what changed while it was down).
func TestPushInvalidation(t *testing.T) {
	srv := startServer(t, withArgs("--listen", freeAddr(t)))
	sm := client(t, srv)
	ctx := t.Context()
	name := uniqueName(t)
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("push-value-1")})
	must(t, err)

	cache := rotorclient.New(sm, rotorclient.Config{TTL: time.Hour})
	defer cache.Close()
	changes := make(chan rotorclient.Change, 100)
	push, err := rotorclient.StartPush(ctx, cache, rotorclient.PushConfig{
		Endpoint:    srv.endpoint(),
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(testAccessKeyID, testSecretAccessKey, ""),
		HTTPClient:  &http.Client{},
		SecretIDs:   []string{name},
		MinBackoff:  50 * time.Millisecond,
		MaxBackoff:  500 * time.Millisecond,
		OnChange:    func(c rotorclient.Change) { changes <- c },
	})
	must(t, err)
	defer push.Stop()

	// next returns the next change other than a resync notice, or the
	// notice itself when resync is true.
	next := func(resync bool, within time.Duration) rotorclient.Change {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case c := <-changes:
				if c.Resync == resync {
					return c
				}
			case <-deadline:
				t.Fatalf("no change (resync %v) within %v", resync, within)
			}
		}
	}
	next(true, 10*time.Second) // connected
	if got, err := cache.GetString(ctx, name); err != nil || got != "push-value-1" {
		t.Fatalf("Get = %q, %v", got, err)
	}

	// served waits up to a second for the cache to serve want.
	served := func(want string) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			got, err := cache.GetString(ctx, name)
			must(t, err)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("cache serves %q a second after the change, want %q", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	put, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("push-value-2")})
	must(t, err)
	c := next(false, time.Second)
	if c.ARN != aws.ToString(created.ARN) || c.Name != name || c.VersionStage != "AWSCURRENT" ||
		c.VersionID != aws.ToString(put.VersionId) || c.RemovedFromVersionID != aws.ToString(created.VersionId) {
		t.Errorf("change = %+v", c)
	}
	served("push-value-2")

	_, err = sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: created.VersionId, RemoveFromVersionId: put.VersionId,
	})
	must(t, err)
	served("push-value-1")

	// Restart: SIGTERM must end the stream (the server exits 0 promptly),
	// push reconnects to the same address and catches up.
	srv.restart(t)
	next(true, 10*time.Second)
	if !push.Connected() {
		t.Error("not connected after the resync")
	}
	_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("push-value-3")})
	must(t, err)
	served("push-value-3")

	if logs := srv.logs.String(); strings.Contains(logs, "push-value-") {
		t.Error("a secret value is in the server log")
	}
}

// TestPushAfterRotation: a cache with push on serves the credentials a
// real PostgreSQL rotation produced within a second of its finishSecret
// (the time the server stamps on the AWSCURRENT change), with an hour's TTL.
func TestPushAfterRotation(t *testing.T) {
	pg := dbtest.StartPostgres(t)
	d := pgTarget(t, pg)
	srv := startRotationServer(t, 5)
	sm := client(t, srv)
	seen := newSeenPasswords()
	id, initial := d.app(t, sm, "pushapp", seen)

	cache := rotorclient.New(sm, rotorclient.Config{TTL: time.Hour})
	defer cache.Close()
	changes := make(chan rotorclient.Change, 100)
	push, err := rotorclient.StartPush(t.Context(), cache, rotorclient.PushConfig{
		Endpoint:    srv.endpoint(),
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(testAccessKeyID, testSecretAccessKey, ""),
		SecretIDs:   []string{id},
		OnChange:    func(c rotorclient.Change) { changes <- c },
	})
	must(t, err)
	defer push.Stop()
	for c := range changes {
		if c.Resync {
			break
		}
	}
	first, err := cache.Get(t.Context(), id)
	must(t, err)

	for i := range 3 {
		version := rotate(t, sm, id, d.alt)
		var moved rotorclient.Change
		timeout := time.After(time.Minute)
		for moved.VersionID != version {
			select {
			case c := <-changes:
				if c.VersionStage == "AWSCURRENT" {
					moved = c
				}
			case <-timeout:
				t.Fatalf("rotation %d: no AWSCURRENT change to %s", i, version)
			}
		}
		for {
			s, err := cache.Get(t.Context(), id)
			must(t, err)
			if s.VersionID == version {
				var got dbCreds
				must(t, json.Unmarshal([]byte(s.SecretString), &got))
				seen.add(got.Password)
				if got.Password == initial.Password || s.VersionID == first.VersionID {
					t.Fatalf("rotation %d: the cache serves the old credentials", i)
				}
				d.wantLogin(t, "the cached credentials", got)
				break
			}
			if since := time.Since(moved.Time); since > time.Second {
				t.Fatalf("rotation %d: the cache serves version %s %v after finishSecret, want %s", i, s.VersionID, since, version)
			}
			time.Sleep(5 * time.Millisecond)
		}
		waitRotation(t, srv, id, version)
	}
	wantNoPasswordsInLogs(t, sm, seen, []string{id}, srv)
}
