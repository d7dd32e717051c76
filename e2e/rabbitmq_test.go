package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/dbtest"
)

// TestRabbitMQAlternatingRotation: rotor-rabbitmq-alternating-users through
// the server on a throwaway RabbitMQ node: two rotations, clients logging in
// to the management API with the AWSCURRENT they just read never fail, the
// clone gets the user's vhost permissions, and both users keep working.
func TestRabbitMQAlternatingRotation(t *testing.T) {
	rb := dbtest.StartRabbitMQ(t)
	srv := startRotationServer(t, 3)
	c := client(t, srv)
	ctx := t.Context()

	secret := func(user, password, master string) string {
		m := map[string]any{"engine": "rabbitmq", "host": rb.Host, "port": rb.MgmtPort, "username": user, "password": password}
		if master != "" {
			m["masterarn"] = master
		}
		b, err := json.Marshal(m)
		must(t, err)
		return string(b)
	}
	master, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(uniqueName(t) + "-master"), SecretString: aws.String(secret(rb.AdminUser, rb.AdminPassword, "")),
	})
	must(t, err)
	user, pw := "app-"+namePrefix(t)[:8], initialPassword()
	must(t, rb.API(ctx, http.MethodPut, "/api/users/"+dbtest.PathEscape(user), map[string]any{"password": pw, "tags": ""}, nil))
	must(t, rb.API(ctx, http.MethodPut, "/api/permissions/%2F/"+dbtest.PathEscape(user),
		map[string]any{"configure": "^app\\.", "write": "^app\\.", "read": ".*"}, nil))
	id := uniqueName(t)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(id), SecretString: aws.String(secret(user, pw, aws.ToString(master.ARN))),
	})
	must(t, err)

	// A login is a management API call with the user's credentials; an
	// application user without the management tag is answered 401 "Not
	// management user" only after its password was accepted.
	login := func(ctx context.Context, user, password string) bool {
		err := rb.APIAs(ctx, user, password, http.MethodGet, "/api/whoami", nil, nil)
		var ae *dbtest.APIError
		return err == nil || errors.As(err, &ae) && ae.Status == http.StatusUnauthorized &&
			!strings.Contains(strings.ToLower(ae.Body), "login failed")
	}
	if !login(ctx, user, pw) || login(ctx, user, "not-"+pw) {
		t.Fatal("login does not tell the initial password from a wrong one")
	}

	var logins, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, creds, err := secretCreds(ctx, c, id, "AWSCURRENT", "")
				if err != nil {
					continue
				}
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				ok := login(lctx, creds.Username, creds.Password)
				cancel()
				logins.Add(1)
				if !ok {
					failures.Add(1)
				}
			}
		})
	}
	var users []string
	for i := range 2 {
		start := time.Now()
		rotateAndWait(t, c, srv, id, "rotor-rabbitmq-alternating-users")
		t.Logf("rotation %d: RotateSecret to AWSCURRENT moved in %v", i+1, time.Since(start))
		_, creds := mustCreds(t, c, id, "AWSCURRENT")
		users = append(users, creds.Username)
		if !login(ctx, creds.Username, creds.Password) {
			t.Errorf("AWSCURRENT (%s) does not log in", creds.Username)
		}
		_, prev := mustCreds(t, c, id, "AWSPREVIOUS")
		if !login(ctx, prev.Username, prev.Password) {
			t.Errorf("AWSPREVIOUS (%s) no longer logs in", prev.Username)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d logins with the AWSCURRENT just read during two rotations, %d failed", logins.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Errorf("%d logins failed", failures.Load())
	}
	if users[0] != user+"_clone" || users[1] != user {
		t.Errorf("AWSCURRENT users after two rotations: %v, want %s_clone then %s", users, user, user)
	}
	var perms []struct{ Vhost, Configure, Write, Read string }
	must(t, rb.API(ctx, http.MethodGet, "/api/users/"+dbtest.PathEscape(user+"_clone")+"/permissions", nil, &perms))
	if len(perms) != 1 || perms[0].Vhost != "/" || perms[0].Configure != "^app\\." || perms[0].Read != ".*" {
		t.Errorf("the clone's permissions: %+v, want the user's on /", perms)
	}
}
