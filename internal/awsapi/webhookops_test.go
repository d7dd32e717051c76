package awsapi

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/webhook"
)

// fakeWebhooks is a function-field WebhookAdmin.
type fakeWebhooks struct {
	parked  func(after int64, limit int) ([]store.OutboxEntry, error)
	redrive func(seq int64) error
	pending int
	nParked int
}

func (f *fakeWebhooks) Parked(_ context.Context, after int64, limit int) ([]store.OutboxEntry, error) {
	return f.parked(after, limit)
}

func (f *fakeWebhooks) Redrive(_ context.Context, seq int64) error { return f.redrive(seq) }

func (f *fakeWebhooks) Backlog(context.Context) (int, int, error) { return f.pending, f.nParked, nil }

func webhookHandler(t *testing.T, f *fakeWebhooks) *Handler {
	t.Helper()
	h, _ := testHandler(t, &fakeBackend{}, nil)
	h.webhooks = f
	return h
}

func TestListParkedEvents(t *testing.T) {
	entry := store.OutboxEntry{
		Seq: 7, Target: "ops", EventID: "evt-1", Body: `{"type":"secret.rotated","secret":"db"}`,
		CreatedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), Attempts: 8, Parked: true,
		LastError: "HTTP 503", NextAttemptAt: time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC),
	}
	type call struct {
		after int64
		limit int
	}
	var calls []call
	f := &fakeWebhooks{pending: 3, nParked: 2, parked: func(after int64, limit int) ([]store.OutboxEntry, error) {
		calls = append(calls, call{after, limit})
		if after > 0 {
			return nil, nil
		}
		return []store.OutboxEntry{entry}, nil
	}}
	h := webhookHandler(t, f)

	w := post(h, "rotor.ListParkedEvents", `{"MaxResults":1}`)
	const want = `{"Events":[{"Seq":7,"Target":"ops","EventId":"evt-1","CreatedDate":1714564800,"Attempts":8,` +
		`"LastError":"HTTP 503","Event":"{\"type\":\"secret.rotated\",\"secret\":\"db\"}"}],"NextToken":"Nw","Pending":3,"Parked":2}`
	if w.Code != 200 || w.Body.String() != want {
		t.Fatalf("got %d %s\nwant %s", w.Code, w.Body, want)
	}
	w = post(h, "rotor.ListParkedEvents", `{"NextToken":"Nw"}`)
	if w.Code != 200 || w.Body.String() != `{"Events":[],"Pending":3,"Parked":2}` {
		t.Fatalf("second page: got %d %s", w.Code, w.Body)
	}
	if fmt.Sprint(calls) != fmt.Sprint([]call{{0, 1}, {7, defaultParkedResults}}) {
		t.Errorf("Parked calls = %v", calls)
	}

	// A page that is not full is the last.
	w = post(h, "rotor.ListParkedEvents", `{}`)
	if got := expect(t, w, 200); got["NextToken"] != nil {
		t.Errorf("NextToken on a short page: %s", w.Body)
	}
}

func TestListParkedEventsInvalid(t *testing.T) {
	tests := []struct{ name, body, code string }{
		{"max results zero", `{"MaxResults":0}`, "ValidationException"},
		{"max results too many", `{"MaxResults":1001}`, "ValidationException"},
		{"bad token", `{"NextToken":"-"}`, "InvalidNextTokenException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := webhookHandler(t, &fakeWebhooks{parked: func(int64, int) ([]store.OutboxEntry, error) {
				t.Error("Parked called for an invalid request")
				return nil, nil
			}})
			wantError(t, post(h, "rotor.ListParkedEvents", tt.body), 400, tt.code)
		})
	}
}

func TestRedriveEvent(t *testing.T) {
	var got []int64
	f := &fakeWebhooks{redrive: func(seq int64) error {
		got = append(got, seq)
		if seq == 99 {
			return fmt.Errorf("webhook: redrive 99: %w", store.ErrNotFound)
		}
		if seq == 98 {
			return errors.New("webhook: redrive 98: database is locked")
		}
		if seq == 97 {
			return fmt.Errorf("%w: %q", webhook.ErrUnknownTarget, "gone")
		}
		return nil
	}}
	h := webhookHandler(t, f)

	if w := post(h, "rotor.RedriveEvent", `{"Seq":7}`); w.Code != 200 || w.Body.String() != `{}` {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
	msg := wantError(t, post(h, "rotor.RedriveEvent", `{"Seq":99}`), 400, "ResourceNotFoundException")
	if msg != "No event with this Seq is waiting for delivery." {
		t.Errorf("message = %q", msg)
	}
	wantError(t, post(h, "rotor.RedriveEvent", `{"Seq":97}`), 400, "InvalidRequestException")
	wantError(t, post(h, "rotor.RedriveEvent", `{"Seq":98}`), 500, codeInternal)
	for _, body := range []string{`{}`, `{"Seq":0}`, `{"Seq":-3}`} {
		wantError(t, post(h, "rotor.RedriveEvent", body), 400, "ValidationException")
	}
	wantError(t, post(h, "rotor.RedriveEvent", `{"Seq":"7"}`), 400, "SerializationException")
	if fmt.Sprint(got) != "[7 99 97 98]" {
		t.Errorf("Redrive calls = %v", got)
	}
}

func TestWebhookOperationsAuthorization(t *testing.T) {
	f := &fakeWebhooks{
		parked:  func(int64, int) ([]store.OutboxEntry, error) { return nil, nil },
		redrive: func(int64) error { t.Error("Redrive called for a refused caller"); return nil },
	}
	h := webhookHandler(t, f)
	h.iam = newIAMFixture(t, allowAll()).iam
	wantError(t, post(h, "rotor.ListParkedEvents", `{}`), 400, "AccessDeniedException")
	wantError(t, post(h, "rotor.RedriveEvent", `{"Seq":1}`), 400, "AccessDeniedException")
}

func TestWebhookOperationsServedOnlyWithWebhooks(t *testing.T) {
	h, _ := testHandler(t, &fakeBackend{}, nil)
	for _, target := range []string{"rotor.ListParkedEvents", "rotor.RedriveEvent"} {
		wantError(t, post(h, target, `{"Seq":1}`), 400, "UnknownOperationException")
	}
}
