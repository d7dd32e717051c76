package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/dbtest"
)

// TestRedisRotationKeepsPasswordsClientsHold: rotor-redis-single-user
// through the server, three times, with a master secret. Clients logging
// in with the AWSCURRENT they just read never fail, nor does a client that
// read it before a rotation and keeps using it after (it is AWSPREVIOUS
// now, and lives until the next rotation); the password before that is
// gone, and the user's other ACL rules are intact.
func TestRedisRotationKeepsPasswordsClientsHold(t *testing.T) {
	rd := dbtest.StartRedis(t)
	srv := startRotationServer(t, 3)
	c := client(t, srv)
	ctx := t.Context()

	master, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(uniqueName(t) + "-master"),
		SecretString: aws.String(redisSecret(t, rd, rd.AdminUser, rd.AdminPassword, "")),
	})
	must(t, err)
	old := "Initial-" + strings.Repeat("p", 20)
	user := rd.CreateUser(t, "app", old, "~app:*", "+get", "+set", "+ping")
	id := uniqueName(t)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(id), SecretString: aws.String(redisSecret(t, rd, user, old, aws.ToString(master.ARN))),
	})
	must(t, err)

	// Clients: each reads AWSCURRENT and logs in with it, again and again.
	var logins, failures atomic.Int64
	var mu sync.Mutex
	var firstFailure string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
				if err != nil {
					continue
				}
				var s struct{ Username, Password string }
				json.Unmarshal([]byte(aws.ToString(v.SecretString)), &s)
				// A client takes a moment between reading and logging in.
				time.Sleep(5 * time.Millisecond)
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err = rd.CanLogin(lctx, s.Username, s.Password)
				cancel()
				logins.Add(1)
				if err != nil {
					failures.Add(1)
					mu.Lock()
					if firstFailure == "" {
						firstFailure = err.Error()
					}
					mu.Unlock()
				}
			}
		})
	}
	passwords := []string{old}
	for i := range 3 {
		held := passwords[len(passwords)-1] // what a caching client read before
		start := time.Now()
		rotateAndWait(t, c, srv, id, "rotor-redis-single-user")
		t.Logf("rotation %d: RotateSecret to AWSCURRENT moved in %v", i+1, time.Since(start))
		_, creds := mustCreds(t, c, id, "AWSCURRENT")
		passwords = append(passwords, creds.Password)
		if err := rd.CanLogin(ctx, user, held); err != nil {
			t.Errorf("rotation %d: a client holding the password it read before the rotation: %v", i+1, err)
		}
		if i > 0 {
			if err := rd.CanLogin(ctx, user, passwords[i-1]); err == nil {
				t.Errorf("rotation %d: the password before the previous one still logs in", i+1)
			}
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d logins with the AWSCURRENT just read during three rotations, %d failed", logins.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Errorf("%d logins failed (first: %s)", failures.Load(), firstFailure)
	}

	got, err := rd.Do(ctx, "ACL", "GETUSER", user)
	must(t, err)
	desc := strings.ReplaceAll(strings.ToLower(fmt.Sprint(got)), " ", "")
	for _, want := range []string{"~app:*", "+get", "+set", "+ping"} {
		if !strings.Contains(desc, want) {
			t.Errorf("ACL GETUSER %s lost %q: %s", user, want, desc)
		}
	}
	if logs := srv.logs.String(); strings.Contains(logs, passwords[1]) || strings.Contains(logs, passwords[2]) || strings.Contains(logs, passwords[3]) {
		t.Error("a password is in the server's log")
	}
}

func redisSecret(t *testing.T, rd *dbtest.Redis, user, password, master string) string {
	t.Helper()
	m := map[string]any{"engine": "redis", "host": rd.Host, "port": rd.Port, "username": user, "password": password}
	if master != "" {
		m["masterarn"] = master
	}
	b, err := json.Marshal(m)
	must(t, err)
	return string(b)
}
