package awsapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/rotor-secrets/rotor/internal/arn"
	"github.com/rotor-secrets/rotor/internal/events"
	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// rotor.SubscribeLabelChanges: push invalidation, which AWS does not have.
//
// Request: POST / with X-Amz-Target rotor.SubscribeLabelChanges, signed
// like every request, and the body {"SecretIds":["name or ARN", …]}. The
// list is an optional filter (at most maxSubscribeIDs entries); an empty
// one subscribes to every secret the caller may watch: those on whose ARN
// an identity policy allows rotor:SubscribeLabelChanges (root: all). An id is matched against a change's secret name
// and ARN, and, when it names an existing secret (a partial ARN, say),
// against that secret's ARN; an id that names no secret yet is not an
// error, so a client may subscribe before the secret is created.
//
// Response: 200 with Content-Type text/event-stream (server-sent events):
//
//	event: ready            once, when the subscription is in place: every
//	data: {}                change committed after it is delivered
//
//	event: label            one per staging label moved, in commit order
//	data: {"ARN":…,"Name":…,"VersionStage":"AWSCURRENT","VersionId":…,
//	       "RemovedFromVersionId":…,"Date":1767225600.123}
//
//	event: resync           changes were dropped (this subscriber was too
//	data: {}                slow): re-read everything it tracks
//
//	: heartbeat             a comment every Config.Heartbeat
//
// VersionId is absent when the label was removed from the secret,
// RemovedFromVersionId when no version had it before. No event carries a
// secret value. Each event is flushed as it is written. The stream ends
// when the client goes away, when a write stalls for streamWriteTimeout,
// or when the server shuts down (Config.Done); clients reconnect, and
// treat a reconnection like resync since changes in between are lost.

// DefaultHeartbeat is how often an idle stream sends a keep-alive comment.
const DefaultHeartbeat = 15 * time.Second

const (
	maxSubscribeIDs = 100
	// streamWriteTimeout bounds each write to a stream; it replaces the
	// server's WriteTimeout, which is meant for one-shot answers.
	streamWriteTimeout = 30 * time.Second
)

// streamOp is an operation whose response is a stream of events rather
// than one JSON body.
type streamOp struct {
	name   string
	decode func(body []byte) (any, error)
	// open validates the input and subscribes; an error is answered as any
	// operation's error. run then writes the stream until it ends.
	open func(ctx context.Context, h *Handler, in any) (run func(ctx context.Context, w http.ResponseWriter) error, err error)
}

// streams maps X-Amz-Target values to streaming operations.
var streams = map[string]*streamOp{
	rotorPrefix + "SubscribeLabelChanges": {
		name: "SubscribeLabelChanges",
		decode: func(body []byte) (any, error) {
			var w subscribeLabelChangesRequest
			if err := decodeJSON(body, &w); err != nil {
				return nil, err
			}
			return subscribeLabelChangesIn(&w)
		},
		open: openLabelStream,
	},
}

// streamOp returns the streaming operation of target, if this handler
// serves it.
func (h *Handler) streamOp(target string) (*streamOp, bool) {
	if h.events == nil {
		return nil, false
	}
	s, ok := streams[target]
	return s, ok
}

// serveStream opens the stream and runs it; once it has started, failures
// only end it.
func (h *Handler) serveStream(ctx context.Context, w http.ResponseWriter, r *http.Request, x *exchange, in any) error {
	run, err := x.stream.open(ctx, h, in)
	if err != nil {
		return err
	}
	if err := h.record(r, x); err != nil {
		return err
	}
	x.streamed = true
	if err := run(ctx, w); err != nil {
		h.log.DebugContext(ctx, "stream ended", "request_id", x.info.id, "reason", err.Error())
	}
	return nil
}

type subscribeLabelChangesRequest struct {
	SecretIds []string
}

func subscribeLabelChangesIn(w *subscribeLabelChangesRequest) ([]string, error) {
	if len(w.SecretIds) > maxSubscribeIDs {
		return nil, &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: "SecretIds can list at most 100 secrets."}
	}
	for _, id := range w.SecretIds {
		if id == "" || len(id) > 2048 {
			return nil, &secrets.Error{Kind: secrets.KindInvalidParameter, Msg: "Each of SecretIds must be a secret name or ARN of 1 to 2048 characters."}
		}
	}
	return w.SecretIds, nil
}

// labelFilter selects the changes a subscriber asked for; empty: all.
type labelFilter map[string]bool

func (f labelFilter) match(c events.LabelChange) bool {
	return len(f) == 0 || f[c.SecretARN] || f[c.Name]
}

type labelChangeOut struct {
	ARN                  string
	Name                 string
	VersionStage         string
	VersionId            string `json:",omitempty"`
	RemovedFromVersionId string `json:",omitempty"`
	Date                 epochTime
}

// stillAllowed ends a stream whose caller lost access while it ran: its
// key deactivated or deleted. It also reloads the caller's policies, so a
// detached policy stops the changes it allowed.
func (h *Handler) stillAllowed(ctx context.Context) error {
	if h.iam == nil {
		return nil
	}
	c := iam.CallerFrom(ctx)
	if c == nil {
		return errUnsubscribed
	}
	if err := h.iam.Refresh(ctx, c); err != nil {
		return streamEnd("caller's access revoked: " + err.Error())
	}
	return nil
}

// mayWatch reports whether the caller may see changes of c's secret:
// rotor:SubscribeLabelChanges must be allowed on its ARN by an identity
// policy (resource policies are not consulted for the stream).
func (h *Handler) mayWatch(ctx context.Context, c events.LabelChange) bool {
	if h.iam == nil {
		return true
	}
	return h.iam.Authorize(ctx, &secrets.Access{SecretARN: c.SecretARN, Name: c.Name, Listing: true}) == nil
}

func openLabelStream(ctx context.Context, h *Handler, in any) (func(context.Context, http.ResponseWriter) error, error) {
	ids := in.([]string)
	if h.iam != nil {
		// The call as a whole: some identity policy must allow it.
		if err := h.iam.Authorize(ctx, &secrets.Access{Listing: true}); err != nil {
			return nil, err
		}
	}
	filter := make(labelFilter, 2*len(ids))
	for _, id := range ids {
		filter[id] = true
		d, err := h.svc.DescribeSecret(ctx, id)
		switch {
		case err == nil:
			filter[d.ARN] = true
		case secrets.KindOf(err) == secrets.KindNotFound:
			// Not there (yet): match the name it gives.
			if sid, ok := arn.ParseSecretID(id); ok && sid.IsARN {
				filter[sid.Tail] = true
			}
		default:
			return nil, err
		}
	}
	ch, unsubscribe := h.events.Subscribe(ctx)
	return func(ctx context.Context, w http.ResponseWriter) error {
		defer unsubscribe()
		return h.runLabelStream(ctx, w, ch, filter)
	}, nil
}

func (h *Handler) runLabelStream(ctx context.Context, w http.ResponseWriter, ch <-chan events.LabelChange, filter labelFilter) error {
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would end the request (its background read
	// cancels the context) and its WriteTimeout would cut the stream: lift
	// both for this connection and bound each write instead.
	_ = rc.SetReadDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // reverse proxies: do not buffer
	hdr.Del("Content-Length")
	w.WriteHeader(http.StatusOK)

	send := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := send([]byte("event: ready\ndata: {}\n\n")); err != nil {
		return err
	}
	tick := time.NewTicker(h.heartbeat)
	defer tick.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.done:
			return errServerDone
		case <-tick.C:
			if err := h.stillAllowed(ctx); err != nil {
				return err
			}
			if err := send([]byte(": heartbeat\n\n")); err != nil {
				return err
			}
		case c, ok := <-ch:
			if !ok {
				return errUnsubscribed
			}
			if err := h.stillAllowed(ctx); err != nil {
				return err
			}
			switch {
			case c.Resync:
				buf = append(buf[:0], "event: resync\ndata: {}\n\n"...)
			case filter.match(c) && h.mayWatch(ctx, c):
				data, err := json.Marshal(labelChangeOut{
					ARN: c.SecretARN, Name: c.Name, VersionStage: c.Label,
					VersionId: c.VersionID, RemovedFromVersionId: c.FromVersionID, Date: epochTime(c.Time),
				})
				if err != nil {
					return err
				}
				buf = append(append(append(buf[:0], "event: label\ndata: "...), data...), "\n\n"...)
			default:
				continue
			}
			if err := send(buf); err != nil {
				return err
			}
		}
	}
}

type streamEnd string

func (e streamEnd) Error() string { return string(e) }

const (
	errServerDone   = streamEnd("server shutting down")
	errUnsubscribed = streamEnd("unsubscribed")
)
