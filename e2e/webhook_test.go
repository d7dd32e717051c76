package e2e

// Webhooks through the built server: events that happen while the receiver
// is down all arrive, signed, once it is up; events that keep failing are
// parked, listed, and delivered when redriven.

import (
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/webhook"
)

const deliveryTimeout = 30 * time.Second // for every expected event to arrive

// webhookEvent is an EventBridge event as a receiver decodes it.
type webhookEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// labelDetail is the detail of "Secret Label Updated".
type labelDetail struct {
	Name, LabelUpdated, VersionID, PreviousVersionID string
	Removed                                          bool
}

func (d *labelDetail) UnmarshalJSON(b []byte) error {
	var w struct {
		Name              string `json:"name"`
		LabelUpdated      string `json:"labelUpdated"`
		VersionID         string `json:"versionId"`
		PreviousVersionID string `json:"previousVersionId"`
		Removed           bool   `json:"removed"`
	}
	err := json.Unmarshal(b, &w)
	*d = labelDetail(w)
	return err
}

// rotationDetail is the part of a rotation event's detail the tests read.
type rotationDetail struct {
	EventName           string `json:"eventName"`
	AdditionalEventData struct {
		SecretID string `json:"SecretId"`
	} `json:"additionalEventData"`
	Rotor struct {
		VersionID string `json:"versionId"`
	} `json:"rotor"`
}

// delivery is one event as the receiver got it, first delivery first.
type delivery struct {
	ev       webhookEvent
	body     []byte
	header   http.Header
	attempts []int // X-Rotor-Delivery-Attempt of each delivery of it
}

// receiver is a webhook endpoint that checks signatures and keeps each
// event once, by id, answering status (200 unless set).
type receiver struct {
	secret []byte
	status atomic.Int32

	mu       sync.Mutex
	events   map[string]*delivery
	order    []string // event ids in order of first arrival
	requests int      // every request, refused ones included
	badSigs  []string
	bodyIDs  []string // id headers that disagree with the body
	arrived  chan struct{}
}

func newReceiver(secret string) *receiver {
	r := &receiver{secret: []byte(secret), events: map[string]*delivery{}, arrived: make(chan struct{})}
	r.status.Store(http.StatusOK)
	return r
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if err := webhook.Verify(rc.secret, r.Header, body, time.Now(), 0); err != nil {
		rc.badSigs = append(rc.badSigs, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if status := int(rc.status.Load()); status != http.StatusOK {
		http.Error(w, "not now", status)
		return
	}
	var ev webhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if id := r.Header.Get("X-Rotor-Event-Id"); id != ev.ID {
		rc.bodyIDs = append(rc.bodyIDs, id+" != "+ev.ID)
	}
	attempt, _ := strconv.Atoi(r.Header.Get("X-Rotor-Delivery-Attempt"))
	d := rc.events[ev.ID]
	if d == nil {
		d = &delivery{ev: ev, body: body, header: r.Header.Clone()}
		rc.events[ev.ID] = d
		rc.order = append(rc.order, ev.ID)
	}
	d.attempts = append(d.attempts, attempt)
	close(rc.arrived)
	rc.arrived = make(chan struct{})
	w.WriteHeader(http.StatusNoContent)
}

// snapshot returns the events received so far, in order of arrival.
func (rc *receiver) snapshot() []*delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]*delivery, 0, len(rc.order))
	for _, id := range rc.order {
		out = append(out, rc.events[id])
	}
	return out
}

// waitFor waits until done accepts what has arrived.
func (rc *receiver) waitFor(t testing.TB, what string, done func([]*delivery) bool) []*delivery {
	t.Helper()
	deadline := time.NewTimer(deliveryTimeout)
	defer deadline.Stop()
	for {
		rc.mu.Lock()
		arrived := rc.arrived
		rc.mu.Unlock()
		got := rc.snapshot()
		if done(got) {
			return got
		}
		select {
		case <-arrived:
		case <-deadline.C:
			t.Fatalf("%s: not within %v; %d events arrived", what, deliveryTimeout, len(got))
		}
	}
}

// parked is the answer of rotor.ListParkedEvents.
type parked struct {
	Events []struct {
		Seq       int64
		Target    string
		EventId   string
		Attempts  int
		LastError string
		Event     string
	}
	Pending, Parked int
}

func listParked(t testing.TB, srv *server) parked {
	t.Helper()
	var p parked
	rotorOK(t, srv, rootKey(), "rotor.ListParkedEvents", map[string]any{}, &p)
	return p
}

// waitBacklog polls rotor.ListParkedEvents until cond holds.
func waitBacklog(t testing.TB, srv *server, what string, cond func(parked) bool) parked {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(deliveryTimeout)
	defer deadline.Stop()
	for {
		p := listParked(t, srv)
		if cond(p) {
			return p
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: not within %v; last: pending %d, parked %d", what, deliveryTimeout, p.Pending, p.Parked)
		}
	}
}

// labelKey names a label event: secret ARN, label, version.
func labelKey(arn, label, version string) string { return arn + " " + label + " " + version }

func TestWebhookDelivery(t *testing.T) {
	t.Parallel()

	t.Run("receiver down, then up", func(t *testing.T) {
		t.Parallel()
		secret := "whsec-" + randomText(t, 24)
		addr := freeAddr(t) // nothing listens there until the receiver comes up
		dbAddr := freeAddr(t)
		srv := startServer(t,
			withArgs(append(rotationFlags(1), "--webhook", "r=http://"+addr+"/hook",
				"--webhook-retry-base", "100ms", "--webhook-max-attempts", "1000")...),
			withEnv("ROTOR_WEBHOOK_SECRET="+secret))
		c := client(t, srv)
		ctx := t.Context()
		values := []string{randomText(t, 30), randomText(t, 30), randomText(t, 30)}

		// The changes, while nothing listens.
		want := map[string]labelDetail{}
		expect := func(name, arn, label, version, previous string) {
			want[labelKey(arn, label, version)] = labelDetail{Name: name, LabelUpdated: label, VersionID: version, PreviousVersionID: previous}
		}
		a := uniqueName(t)
		ca := createString(t, c, a, values[0])
		aARN := aws.ToString(ca.ARN)
		expect(a, aARN, "AWSCURRENT", aws.ToString(ca.VersionId), "")
		prev := aws.ToString(ca.VersionId)
		for _, v := range values[1:] {
			p := putString(t, c, a, v)
			expect(a, aARN, "AWSCURRENT", aws.ToString(p.VersionId), prev)
			prev = aws.ToString(p.VersionId)
		}
		b := uniqueName(t)
		cb := createString(t, c, b, "b")
		expect(b, aws.ToString(cb.ARN), "AWSCURRENT", aws.ToString(cb.VersionId), "")
		_, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId: aws.String(b), VersionStage: aws.String("BLUE"), MoveToVersionId: cb.VersionId,
		})
		must(t, err)
		expect(b, aws.ToString(cb.ARN), "BLUE", aws.ToString(cb.VersionId), "")

		// A rotation whose database is unreachable: it starts and fails.
		host, port, _ := net.SplitHostPort(dbAddr)
		portN, _ := strconv.Atoi(port)
		r := uniqueName(t)
		cr := createString(t, c, r, dbCreds{Engine: "postgres", Host: host, Port: portN, Username: "app", Password: initialPassword()}.json(t))
		rARN := aws.ToString(cr.ARN)
		expect(r, rARN, "AWSCURRENT", aws.ToString(cr.VersionId), "")
		version := rotate(t, c, r, fnPGSingle)
		waitStatus(t, srv, r, "the rotation to give up", func(st rotationStatus) bool {
			return st.InProgress != nil && st.InProgress.GaveUp || st.InProgress == nil && len(st.History) > 0 && st.History[0].VersionId == version
		})

		// Everything is waiting in the outbox, and delivery was tried.
		waitBacklog(t, srv, "the events to queue", func(p parked) bool { return p.Pending >= len(want)+2 })
		if p := listParked(t, srv); p.Parked != 0 {
			t.Fatalf("%d events parked while the receiver was down", p.Parked)
		}

		// Up.
		rc := newReceiver(secret)
		ln, err := net.Listen("tcp", addr)
		must(t, err)
		hs := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })

		rotationEvents := func(got []*delivery) (started, failed bool) {
			for _, d := range got {
				var rd rotationDetail
				if d.ev.DetailType == "AWS Service Event via CloudTrail" && json.Unmarshal(d.ev.Detail, &rd) == nil && rd.AdditionalEventData.SecretID == rARN {
					started = started || rd.EventName == "RotationStarted"
					failed = failed || rd.EventName == "RotationFailed"
				}
			}
			return started, failed
		}
		rc.waitFor(t, "every event", func(got []*delivery) bool {
			labels := 0
			for _, d := range got {
				if d.ev.DetailType == "Secret Label Updated" {
					labels++
				}
			}
			started, failed := rotationEvents(got)
			return labels >= len(want) && started && failed
		})
		p := waitBacklog(t, srv, "an empty outbox", func(p parked) bool { return p.Pending == 0 && p.Parked == 0 })
		got := rc.snapshot() // all delivered now

		rc.mu.Lock()
		if len(rc.badSigs) > 0 || len(rc.bodyIDs) > 0 {
			t.Errorf("bad signatures %v, X-Rotor-Event-Id disagreeing with the body %v", rc.badSigs, rc.bodyIDs)
		}
		rc.mu.Unlock()
		gotLabels := map[string]labelDetail{}
		var rotations []rotationDetail
		for _, d := range got {
			ev := d.ev
			if ev.Version != "0" || ev.Source != "aws.secretsmanager" || ev.Account != accountID || ev.Region != region || len(ev.Resources) != 1 {
				t.Errorf("event %s: version %q source %q account %q region %q resources %v", ev.ID, ev.Version, ev.Source, ev.Account, ev.Region, ev.Resources)
				continue
			}
			if _, err := time.Parse(time.RFC3339, ev.Time); err != nil || !strings.HasSuffix(ev.Time, "Z") {
				t.Errorf("event %s: time %q is not RFC 3339 UTC", ev.ID, ev.Time)
			}
			for _, v := range append(values, "whsec-") {
				if strings.Contains(string(d.body), v) {
					t.Errorf("event %s carries a secret: %s", ev.ID, d.body)
				}
			}
			switch ev.DetailType {
			case "Secret Label Updated":
				var ld labelDetail
				must(t, json.Unmarshal(ev.Detail, &ld))
				k := labelKey(ev.Resources[0], ld.LabelUpdated, ld.VersionID)
				if _, dup := gotLabels[k]; dup {
					t.Errorf("two events (distinct ids) for %s", k)
				}
				gotLabels[k] = ld
			case "AWS Service Event via CloudTrail":
				var rd rotationDetail
				must(t, json.Unmarshal(ev.Detail, &rd))
				if ev.Resources[0] != rARN || rd.Rotor.VersionID != version {
					t.Errorf("rotation event %s for %v, version %s; want %s, %s", rd.EventName, ev.Resources, rd.Rotor.VersionID, rARN, version)
				}
				rotations = append(rotations, rd)
			default:
				t.Errorf("event %s: detail-type %q", ev.ID, ev.DetailType)
			}
		}
		if !maps.Equal(gotLabels, want) {
			t.Errorf("label events:\n got %v\nwant %v", gotLabels, want)
		}
		// The rotation events are those the audit log recorded.
		var audited []string
		for _, rec := range readAudit(t, auditLogPath(srv.dataDir)) {
			if rec.Type == "rotation" && rec.SecretARN == rARN {
				audited = append(audited, rec.EventName)
			}
		}
		var delivered []string
		for _, rd := range rotations {
			delivered = append(delivered, rd.EventName)
		}
		slices.Sort(audited)
		slices.Sort(delivered)
		if !slices.Equal(delivered, audited) || !slices.Contains(delivered, "RotationStarted") || !slices.Contains(delivered, "RotationFailed") {
			t.Errorf("rotation events delivered %v, audited %v", delivered, audited)
		}
		// The first event waited for the receiver: it was retried.
		if first := got[0]; slices.Max(first.attempts) < 2 {
			t.Errorf("first event %s arrived at attempt %v; want a retry", first.ev.ID, first.attempts)
		}
		t.Logf("%d events, %d label and %d rotation; backlog pending %d parked %d", len(got), len(gotLabels), len(rotations), p.Pending, p.Parked)
	})

	t.Run("parked, then redriven", func(t *testing.T) {
		t.Parallel()
		secret := "whsec-" + randomText(t, 24)
		rc := newReceiver(secret)
		rc.status.Store(http.StatusInternalServerError)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		hs := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
		srv := startServer(t,
			withArgs("--webhook", "p=http://"+ln.Addr().String()+"/hook", "--webhook-retry-base", "100ms", "--webhook-max-attempts", "2"),
			withEnv("ROTOR_WEBHOOK_SECRET="+secret))
		c := client(t, srv)
		name := uniqueName(t)
		created := createString(t, c, name, "first")
		put := putString(t, c, name, "second")

		// The list and the counts are read one after the other: wait until
		// both show the second event parked.
		p := waitBacklog(t, srv, "two parked events", func(p parked) bool {
			return p.Parked == 2 && p.Pending == 0 && len(p.Events) == 2
		})
		if len(p.Events) != 2 {
			t.Fatalf("rotor.ListParkedEvents lists %d events, says %d parked", len(p.Events), p.Parked)
		}
		var versions []string
		for _, e := range p.Events {
			var ev webhookEvent
			var ld labelDetail
			if err := json.Unmarshal([]byte(e.Event), &ev); err != nil || json.Unmarshal(ev.Detail, &ld) != nil {
				t.Fatalf("parked event %d is not an event: %v\n%s", e.Seq, err, e.Event)
			}
			if e.Target != "p" || e.EventId != ev.ID || e.Attempts != 2 || !strings.Contains(e.LastError, "500") || ev.DetailType != "Secret Label Updated" {
				t.Errorf("parked event %+v", e)
			}
			versions = append(versions, ld.VersionID)
		}
		if want := []string{aws.ToString(created.VersionId), aws.ToString(put.VersionId)}; !slices.Equal(versions, want) {
			t.Errorf("parked events for versions %v, want %v", versions, want)
		}
		rc.mu.Lock()
		tries := rc.requests
		rc.mu.Unlock()
		if tries != 4 {
			t.Errorf("the receiver saw %d requests, want 2 attempts of 2 events", tries)
		}

		r := callRotor(t, srv, rootKey(), "rotor.RedriveEvent", map[string]any{"Seq": p.Events[1].Seq + 1000})
		wantError(t, r, http.StatusBadRequest, "ResourceNotFoundException")

		rc.status.Store(http.StatusOK)
		for _, e := range p.Events {
			rotorOK(t, srv, rootKey(), "rotor.RedriveEvent", map[string]any{"Seq": e.Seq}, nil)
		}
		got := rc.waitFor(t, "the redriven events", func(got []*delivery) bool { return len(got) == 2 })
		for i, d := range got {
			if d.ev.ID != p.Events[i].EventId || string(d.body) != p.Events[i].Event {
				t.Errorf("delivery %d: event %s %s, want the parked %s %s", i, d.ev.ID, d.body, p.Events[i].EventId, p.Events[i].Event)
			}
		}
		waitBacklog(t, srv, "an empty outbox", func(p parked) bool { return p.Pending == 0 && p.Parked == 0 })
	})
}
