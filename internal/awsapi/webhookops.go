package awsapi

import (
	"context"
	"errors"
	"strconv"

	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store"
	"github.com/rotor-secrets/rotor/internal/webhook"
)

// rotor.ListParkedEvents and rotor.RedriveEvent: the webhook events that
// gave up after too many failed deliveries, and sending one again. Served
// when Config.Webhooks is set; the caller needs the operation's action on
// "*".

var webhookOperations = rotorOps(
	op("ListParkedEvents", listParkedEventsIn, listParkedEvents),
	op("RedriveEvent", redriveEventIn, redriveEvent),
)

// Bounds of ListParkedEvents' MaxResults.
const (
	defaultParkedResults = 100
	maxParkedResults     = 1000
)

type listParkedEventsRequest struct {
	MaxResults *int64
	NextToken  string
}

type redriveEventRequest struct {
	Seq *int64
}

type parkedEventOut struct {
	Seq         int64
	Target      string
	EventId     string
	CreatedDate epochTime `json:",omitzero"`
	Attempts    int
	LastError   string `json:",omitempty"`
	// Event is the body as it is delivered, a JSON document in a string.
	Event string
}

type listParkedEventsOut struct {
	Events    []parkedEventOut
	NextToken string `json:",omitempty"`
	Pending   int
	Parked    int
}

type listParkedInput struct {
	max   int
	after int64
}

func listParkedEventsIn(w *listParkedEventsRequest) (listParkedInput, error) {
	in := listParkedInput{max: defaultParkedResults}
	if w.MaxResults != nil {
		if *w.MaxResults < 1 || *w.MaxResults > maxParkedResults {
			return in, validationError("maxResults", "Member must have value between 1 and "+strconv.Itoa(maxParkedResults))
		}
		in.max = int(*w.MaxResults)
	}
	if w.NextToken != "" {
		seq, ok := decodeSeqToken(w.NextToken)
		if !ok {
			return in, errInvalidNextToken
		}
		in.after = int64(seq)
	}
	return in, nil
}

func listParkedEvents(ctx context.Context, h *Handler, in listParkedInput) (any, error) {
	if h.iam != nil {
		if err := h.iam.Check(ctx, "*"); err != nil {
			return nil, err
		}
	}
	entries, err := h.webhooks.Parked(ctx, in.after, in.max)
	if err != nil {
		return nil, err
	}
	pending, parked, err := h.webhooks.Backlog(ctx)
	if err != nil {
		return nil, err
	}
	out := listParkedEventsOut{Events: make([]parkedEventOut, len(entries)), Pending: pending, Parked: parked}
	for i, e := range entries {
		out.Events[i] = parkedEventOut{
			Seq: e.Seq, Target: e.Target, EventId: e.EventID, CreatedDate: epochTime(e.CreatedAt),
			Attempts: e.Attempts, LastError: e.LastError, Event: e.Body,
		}
	}
	// A full page may be the last one; the page after it is then empty.
	if len(entries) == in.max && len(entries) > 0 {
		out.NextToken = encodeSeqToken(uint64(entries[len(entries)-1].Seq))
	}
	return out, nil
}

func redriveEventIn(w *redriveEventRequest) (int64, error) {
	if w.Seq == nil {
		return 0, validationError("seq", "Member must not be null")
	}
	if *w.Seq < 1 {
		return 0, validationError("seq", "Member must have value greater than or equal to 1")
	}
	return *w.Seq, nil
}

func redriveEvent(ctx context.Context, h *Handler, seq int64) (any, error) {
	if h.iam != nil {
		if err := h.iam.Check(ctx, "*"); err != nil {
			return nil, err
		}
	}
	if err := h.webhooks.Redrive(ctx, seq); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, &secrets.Error{Kind: secrets.KindNotFound, Msg: "No event with this Seq is waiting for delivery."}
		case errors.Is(err, webhook.ErrUnknownTarget):
			return nil, &secrets.Error{Kind: secrets.KindInvalidRequest, Msg: "The webhook of this event is no longer configured; add it again to redrive the event."}
		}
		return nil, err
	}
	return emptyOut{}, nil
}
