package awsapi

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

const subscribeTarget = "rotor.SubscribeLabelChanges"

// streamHandler is a test handler serving label streams from a new hub.
func streamHandler(t *testing.T, f *fakeBackend) (*Handler, *events.Hub, chan struct{}, *syncBuffer) {
	t.Helper()
	h, logs := testHandler(t, f, nil)
	hub := events.NewHub(4)
	done := make(chan struct{})
	h.events, h.done = hub, done
	return h, hub, done, logs
}

// sseReader reads a stream's events: "event NAME DATA" or "comment TEXT".
type sseReader struct {
	t    *testing.T
	r    *bufio.Reader
	resp *http.Response
}

func subscribe(t *testing.T, url, body string) *sseReader {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(headerTarget, subscribeTarget)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("status %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	if resp.Header.Get(headerRequestID) == "" {
		t.Error("no request id on the stream")
	}
	return &sseReader{t: t, r: bufio.NewReader(resp.Body), resp: resp}
}

// next returns the next event or comment, failing after 10 s.
func (s *sseReader) next() string {
	s.t.Helper()
	type result struct {
		v   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var event, data string
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- result{err: err}
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && event != "":
				ch <- result{v: "event " + event + " " + data}
				return
			case strings.HasPrefix(line, ": "):
				ch <- result{v: "comment " + line[2:]}
				return
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return "error " + r.err.Error()
		}
		return r.v
	case <-time.After(10 * time.Second):
		s.t.Fatal("no event within 10s")
		return ""
	}
}

func waitSubscribers(t *testing.T, hub *events.Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for hub.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", hub.Subscribers(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

const streamARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-AbCdEf"

func TestLabelStream(t *testing.T) {
	f := &fakeBackend{out: secrets.Description{ARN: streamARN, Name: "app/db"}}
	h, hub, _, logs := streamHandler(t, f)
	h.heartbeat = time.Hour
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	s := subscribe(t, srv.URL, `{"SecretIds":["app/db"]}`)
	if got := s.next(); got != "event ready {}" {
		t.Fatalf("first event = %q", got)
	}
	when := time.Date(2026, 1, 1, 0, 0, 0, 500e6, time.UTC)
	hub.Publish(
		events.LabelChange{SecretARN: streamARN, Name: "app/db", Label: "AWSCURRENT", VersionID: "v2", FromVersionID: "v1", Time: when},
		events.LabelChange{SecretARN: "arn:other", Name: "other", Label: "AWSCURRENT", VersionID: "x", Time: when},
		events.LabelChange{SecretARN: streamARN, Name: "app/db", Label: "AWSPENDING", FromVersionID: "v2", Time: when},
	)
	want := []string{
		`event label {"ARN":"` + streamARN + `","Name":"app/db","VersionStage":"AWSCURRENT","VersionId":"v2","RemovedFromVersionId":"v1","Date":1767225600.5}`,
		`event label {"ARN":"` + streamARN + `","Name":"app/db","VersionStage":"AWSPENDING","RemovedFromVersionId":"v2","Date":1767225600.5}`,
	}
	for _, w := range want {
		if got := s.next(); got != w {
			t.Errorf("event = %s\nwant    %s", got, w)
		}
	}
	// The filter id was resolved through the service.
	f.mu.Lock()
	in := f.in
	f.mu.Unlock()
	if in != "app/db" {
		t.Errorf("DescribeSecret called with %v", in)
	}
	// One log line, when the stream ends.
	s.resp.Body.Close()
	srv.Close()
	if !strings.Contains(logs.String(), `"operation":"SubscribeLabelChanges","status":200`) {
		t.Errorf("no request log line for the stream:\n%s", logs)
	}
}

func TestLabelStreamUnfilteredAndResync(t *testing.T) {
	h, hub, _, _ := streamHandler(t, &fakeBackend{})
	h.heartbeat = time.Hour
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s := subscribe(t, srv.URL, `{}`)
	if got := s.next(); got != "event ready {}" {
		t.Fatalf("first event = %q", got)
	}
	// The notice the hub puts in place of dropped changes (see the events
	// package's tests for the overflow itself), then any secret's change.
	hub.Publish(events.LabelChange{Resync: true})
	hub.Publish(events.LabelChange{SecretARN: "arn:s", Name: "s", Label: "blue", VersionID: "v", Time: time.Unix(1, 0)})
	if got := s.next(); got != "event resync {}" {
		t.Errorf("event = %q, want resync", got)
	}
	if got, want := s.next(), `event label {"ARN":"arn:s","Name":"s","VersionStage":"blue","VersionId":"v","Date":1}`; got != want {
		t.Errorf("event = %s, want %s", got, want)
	}
}

func TestLabelStreamHeartbeat(t *testing.T) {
	h, _, _, _ := streamHandler(t, &fakeBackend{})
	h.heartbeat = 10 * time.Millisecond
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s := subscribe(t, srv.URL, `{"SecretIds":[]}`)
	s.next() // ready
	for range 3 {
		if got := s.next(); got != "comment heartbeat" {
			t.Fatalf("got %q, want a heartbeat", got)
		}
	}
}

// TestLabelStreamOutlivesServerTimeouts: a stream outlasts the server's
// ReadTimeout and WriteTimeout, which are for one-shot answers.
func TestLabelStreamOutlivesServerTimeouts(t *testing.T) {
	h, hub, _, _ := streamHandler(t, &fakeBackend{})
	h.heartbeat = 20 * time.Millisecond
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	s := subscribe(t, srv.URL, `{}`)
	s.next() // ready
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if got := s.next(); got != "comment heartbeat" {
			t.Fatalf("stream ended before its time: %q", got)
		}
	}
	hub.Publish(events.LabelChange{SecretARN: "arn:s", Name: "s", Label: "AWSCURRENT", VersionID: "v"})
	for {
		got := s.next()
		if strings.HasPrefix(got, "event label") {
			break
		}
		if got != "comment heartbeat" {
			t.Fatalf("got %q, want the label event", got)
		}
	}
}

func TestLabelStreamEndsWhenDone(t *testing.T) {
	h, hub, done, _ := streamHandler(t, &fakeBackend{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s := subscribe(t, srv.URL, `{}`)
	s.next()
	close(done)
	if got := s.next(); !strings.HasPrefix(got, "error EOF") {
		t.Fatalf("after done: %q, want the end of the stream", got)
	}
	waitSubscribers(t, hub, 0)
}

func TestLabelStreamClientLeaves(t *testing.T) {
	h, hub, _, _ := streamHandler(t, &fakeBackend{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader(`{}`))
	req.Header.Set(headerTarget, subscribeTarget)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, hub, 1)
	cancel()
	resp.Body.Close()
	waitSubscribers(t, hub, 0)
}

func TestLabelStreamErrors(t *testing.T) {
	long := strings.Repeat("x", 2049)
	tests := []struct {
		name     string
		body     string
		err      error
		noEvents bool
		want     string
	}{
		{"not JSON", `{`, nil, false, "SerializationException"},
		{"wrong shape", `{"SecretIds":"a"}`, nil, false, "SerializationException"},
		{"empty id", `{"SecretIds":[""]}`, nil, false, "InvalidParameterException"},
		{"long id", `{"SecretIds":["` + long + `"]}`, nil, false, "InvalidParameterException"},
		{"too many ids", `{"SecretIds":[` + strings.Repeat(`"a",`, 100) + `"a"]}`, nil, false, "InvalidParameterException"},
		{"service failure", `{"SecretIds":["a"]}`, &secrets.Error{Kind: secrets.KindInternal, Msg: "read"}, false, "InternalServiceError"},
		{"not served", `{}`, nil, true, "UnknownOperationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, hub, _, _ := streamHandler(t, &fakeBackend{err: tt.err})
			if tt.noEvents {
				h.events = nil
			}
			w := post(h, subscribeTarget, tt.body)
			if code, _ := errorBody(t, w); code != tt.want {
				t.Errorf("__type = %q, want %q (status %d)", code, tt.want, w.Code)
			}
			if n := hub.Subscribers(); n != 0 {
				t.Errorf("%d subscribers left", n)
			}
		})
	}
}

// TestLabelStreamMissingSecretMatchesByName: an id that names no secret
// yet is not an error; it matches by name (a partial ARN by its name).
func TestLabelStreamMissingSecretMatchesByName(t *testing.T) {
	f := &fakeBackend{err: &secrets.Error{Kind: secrets.KindNotFound, Msg: "Secrets Manager can't find the specified secret."}}
	h, hub, _, _ := streamHandler(t, f)
	h.heartbeat = time.Hour
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s := subscribe(t, srv.URL, `{"SecretIds":["arn:aws:secretsmanager:us-east-1:000000000000:secret:later"]}`)
	s.next()
	hub.Publish(
		events.LabelChange{SecretARN: "arn:x", Name: "other", Label: "AWSCURRENT", VersionID: "v"},
		events.LabelChange{SecretARN: "arn:aws:secretsmanager:us-east-1:000000000000:secret:later-AbCdEf", Name: "later", Label: "AWSCURRENT", VersionID: "v"},
	)
	if got := s.next(); !strings.Contains(got, `"Name":"later"`) {
		t.Fatalf("event = %q, want the change of later", got)
	}
}

func TestLabelStreamAuthFailure(t *testing.T) {
	f := &fakeBackend{}
	h, hub, _, _ := streamHandler(t, f)
	h.auth = authFunc(func(context.Context, *http.Request, []byte) (auth.Principal, error) {
		return auth.Principal{}, &auth.Error{Code: auth.CodeInvalidSignature, Msg: "bad signature"}
	})
	w := post(h, subscribeTarget, `{}`)
	if w.Code != 400 || w.Header().Get("Content-Type") != contentType {
		t.Fatalf("status %d %s, want a 400 JSON error", w.Code, w.Header().Get("Content-Type"))
	}
	if f.calls != 0 || hub.Subscribers() != 0 {
		t.Error("an unauthenticated request subscribed")
	}
}
