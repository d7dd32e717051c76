package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// runTestServer runs s until the test ends and returns a function that
// stops it and returns Run's error.
func runTestServer(t *testing.T, s *Server) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	var err error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

type labelEvent struct {
	ARN                  string
	Name                 string
	VersionStage         string
	VersionId            string
	RemovedFromVersionId string
	Date                 float64
}

// labelStream is a signed rotor.SubscribeLabelChanges subscription.
type labelStream struct {
	t      *testing.T
	resp   *http.Response
	events chan labelEvent // "label" events in order; closed at the end

	mu  sync.Mutex
	raw strings.Builder // every line read
}

func (ls *labelStream) text() string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.raw.String()
}

func subscribeLabels(t *testing.T, s *Server, body string, secret string) (*labelStream, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+s.Addr().String()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "rotor.SubscribeLabelChanges")
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(t.Context(), creds, req, hex.EncodeToString(sum[:]), "secretsmanager", DefaultRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		return nil, resp
	}
	ls := &labelStream{t: t, resp: resp, events: make(chan labelEvent, 100)}
	ready := make(chan struct{})
	go func() {
		defer close(ls.events)
		sc := bufio.NewScanner(resp.Body)
		var event string
		for sc.Scan() {
			line := sc.Text()
			ls.mu.Lock()
			ls.raw.WriteString(line + "\n")
			ls.mu.Unlock()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
				if event == "ready" {
					close(ready)
				}
			case strings.HasPrefix(line, "data: ") && event == "label":
				var e labelEvent
				if err := json.Unmarshal([]byte(line[6:]), &e); err != nil {
					t.Errorf("label data %q: %v", line, err)
				}
				ls.events <- e
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no ready event")
	}
	return ls, resp
}

// within returns the next label event, failing t unless it arrives within d.
func (ls *labelStream) within(d time.Duration) labelEvent {
	ls.t.Helper()
	select {
	case e, ok := <-ls.events:
		if !ok {
			ls.t.Fatal("stream ended")
		}
		return e
	case <-time.After(d):
		ls.t.Fatalf("no label event within %v", d)
		return labelEvent{}
	}
}

func (ls *labelStream) want(d time.Duration, stage, version, from string) labelEvent {
	ls.t.Helper()
	e := ls.within(d)
	if e.VersionStage != stage || e.VersionId != version || e.RemovedFromVersionId != from {
		ls.t.Fatalf("event %+v, want %s moved %q -> %q", e, stage, from, version)
	}
	return e
}

// TestLabelChangesReachSubscribers: a subscriber learns of a label move
// within a second of the call that made it, through the whole server, and
// the stream outlives the server's read and write timeouts.
func TestLabelChangesReachSubscribers(t *testing.T) {
	s := openTestServer(t)
	s.http.ReadTimeout = 200 * time.Millisecond
	s.http.WriteTimeout = 200 * time.Millisecond
	runTestServer(t, s)
	ls, _ := subscribeLabels(t, s, `{"SecretIds":["app/db"]}`, testSecret)

	c := sdkClient(s)
	ctx := t.Context()
	created, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/db"), SecretString: aws.String("v1-value")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("other"), SecretString: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	e := ls.want(time.Second, "AWSCURRENT", aws.ToString(created.VersionId), "")
	if e.ARN != aws.ToString(created.ARN) || e.Name != "app/db" {
		t.Errorf("event names %s %s, want %s app/db", e.ARN, e.Name, aws.ToString(created.ARN))
	}
	if age := time.Since(time.Unix(0, int64(e.Date*1e9))); age < 0 || age > time.Minute {
		t.Errorf("event Date is %v old", age)
	}

	// Past both server timeouts, the stream still delivers.
	time.Sleep(500 * time.Millisecond)
	put, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/db"), SecretString: aws.String("v2-value")})
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := aws.ToString(created.VersionId), aws.ToString(put.VersionId)
	ls.want(time.Second, "AWSCURRENT", v2, v1)
	ls.want(time.Second, "AWSPREVIOUS", v1, "")

	// finishSecret's move, by UpdateSecretVersionStage: back to v1.
	if _, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: created.ARN, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v1), RemoveFromVersionId: aws.String(v2),
	}); err != nil {
		t.Fatal(err)
	}
	ls.want(time.Second, "AWSCURRENT", v1, v2)
	ls.want(time.Second, "AWSPREVIOUS", v2, v1)

	// The other secret's changes were filtered out; nothing else came.
	select {
	case e := <-ls.events:
		t.Errorf("unexpected event %+v", e)
	default:
	}
	// No value in any event.
	if raw := ls.text(); strings.Contains(raw, "-value") {
		t.Errorf("a secret value is in the stream:\n%s", raw)
	}
}

func TestLabelStreamRefusesBadSignature(t *testing.T) {
	s := openTestServer(t)
	runTestServer(t, s)
	ls, resp := subscribeLabels(t, s, `{}`, "not-the-secret-key-0123456789")
	if ls != nil {
		t.Fatal("subscribed with a wrong key")
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b.String(), "InvalidSignatureException") {
		t.Fatalf("answer %s %s", resp.Status, b.String())
	}
}

// TestShutdownEndsLabelStreams: open streams end when the server shuts
// down, so Shutdown does not wait for them until its timeout (Run would
// then fail with context.DeadlineExceeded).
func TestShutdownEndsLabelStreams(t *testing.T) {
	s := openTestServer(t)
	s.cfg.ShutdownTimeout = 20 * time.Second
	stop := runTestServer(t, s)
	var streams []*labelStream
	for range 3 {
		ls, _ := subscribeLabels(t, s, `{}`, testSecret)
		streams = append(streams, ls)
	}
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run = %v, want a clean shutdown", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for _, ls := range streams {
		select {
		case _, ok := <-ls.events:
			if ok {
				t.Error("event after shutdown")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("stream still open after shutdown")
		}
	}
}
