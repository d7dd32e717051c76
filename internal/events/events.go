// Package events carries what happens to secrets from the domain to the
// parts of Rotor that react to it. Today that is one kind of event, a
// staging label moving between a secret's versions (LabelChange), and one
// carrier, an in-process Hub that fans the changes out to subscribers such
// as the rotor.SubscribeLabelChanges stream.
//
// Contract:
//
//   - A LabelChange describes a commit that happened: the domain publishes
//     only after its transaction committed, all the changes of one call in
//     one Publish, in the order the call made them. It never carries a
//     secret value.
//   - Publish never blocks. Each subscriber has a bounded buffer; when a
//     change does not fit, the subscriber's buffered changes are dropped
//     and replaced by one LabelChange with Resync set, followed by the
//     changes published after it. A subscriber that sees Resync has missed
//     changes and must re-read whatever it tracks.
//   - Delivery is in-process and best-effort: nothing is stored, a
//     subscriber sees only changes published while it is subscribed, and
//     events do not survive a restart. Consumers keep a fallback (the
//     client's TTL polling).
//
// A Hub is safe for concurrent use by any number of publishers and
// subscribers.
package events

import (
	"context"
	"sync"
	"time"
)

// LabelChange is one staging label that moved: attached to VersionID,
// taken from FromVersionID, or both.
type LabelChange struct {
	SecretARN string
	Name      string
	Label     string // the staging label, e.g. AWSCURRENT
	// VersionID is the version that carries Label after the change; ""
	// when the label was removed from the secret.
	VersionID string
	// FromVersionID is the version that carried Label before; "" when no
	// version had it.
	FromVersionID string
	Time          time.Time
	// Resync marks the notice a subscriber gets instead of the changes
	// that overflowed its buffer; every other field is zero.
	Resync bool
}

// Removed reports whether the change took Label off the secret altogether.
func (c LabelChange) Removed() bool { return !c.Resync && c.VersionID == "" }

// DefaultBuffer is a subscriber's buffer when NewHub is given 0.
const DefaultBuffer = 256

// Hub fans label changes out to subscribers. Create it with NewHub.
type Hub struct {
	buffer int

	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch chan LabelChange
}

// NewHub returns a hub whose subscribers each buffer up to buffer changes
// (0: DefaultBuffer; at least 2, so that a Resync notice always fits).
func NewHub(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	buffer = max(buffer, 2)
	return &Hub{buffer: buffer, subs: make(map[*subscriber]struct{})}
}

// Subscribe registers a subscriber and returns its channel and a function
// that unsubscribes it. The channel receives every change published from
// now on (or Resync notices, see the package comment) and is closed when
// the subscriber is removed: by the returned function, which may be called
// any number of times, or when ctx ends.
func (h *Hub) Subscribe(ctx context.Context) (<-chan LabelChange, func()) {
	s := &subscriber{ch: make(chan LabelChange, h.buffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	unsubscribe := func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, s)
			// Closed under the lock: Publish never sends on a closed channel.
			close(s.ch)
			h.mu.Unlock()
		})
	}
	stop := context.AfterFunc(ctx, unsubscribe)
	return s.ch, func() {
		stop()
		unsubscribe()
	}
}

// Publish delivers changes to every subscriber without blocking.
func (h *Hub) Publish(changes ...LabelChange) {
	if len(changes) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for _, c := range changes {
			s.send(c)
		}
	}
}

// Subscribers returns the number of current subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// send delivers c or, when the buffer is full, replaces the buffer's
// content with a Resync notice followed by c. The caller holds the hub's
// lock, so no other send runs concurrently; the subscriber may be
// receiving meanwhile, which only makes room.
func (s *subscriber) send(c LabelChange) {
	select {
	case s.ch <- c:
		return
	default:
	}
	for drained := false; !drained; {
		select {
		case <-s.ch:
		default:
			drained = true
		}
	}
	s.ch <- LabelChange{Resync: true}
	s.ch <- c
}
