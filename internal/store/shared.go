package store

import (
	"context"
	"errors"
)

// Several processes on one store (the PostgreSQL backend).
//
// A Store that several rotor nodes use at once implements Shared: each node
// learns of the other nodes' commits through Watch, so that it can drop what
// it caches. A Write whose ctx carries a Fence (WithFence) commits only while
// the named lease is still held with that token; otherwise it returns an
// error wrapping ErrFenced and changes nothing. A store used by one process
// (SQLite) implements neither and ignores fences: there is no one to fence.

// ErrFenced is returned by a fenced Write when its lease has moved on to
// another holder: the caller is no longer the leader and must stop.
var ErrFenced = errors.New("store: fenced: the lease is held by another node")

// Fence names a lease (internal/lease) and the token of the tenure under
// which a Write may commit.
type Fence struct {
	Lease string
	Token int64
}

type fenceKey struct{}

// WithFence returns a ctx whose Writes commit only while f holds.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence WithFence put in ctx.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok
}

// Notice is what a process learns of another process's commit.
type Notice struct {
	// Topic and Payload are what the committed transaction published
	// (Publisher); both are "" for the notice every commit sends.
	Topic   string
	Payload string
	// Missed reports that notices may have been lost (the connection that
	// receives them failed and was re-established): drop every cache.
	Missed bool
}

// Shared is implemented by a Store that several processes use at once.
type Shared interface {
	// Watch registers fn. Every Write another process commits is reported
	// once it has committed, by one Notice per Publish in its transaction
	// and one with an empty Topic. Notices come in commit order, from one
	// goroutine; fn must not block.
	Watch(fn func(Notice))
}

// Publisher is implemented by the write transactions of a Shared store.
type Publisher interface {
	// Publish sends topic and payload (at most MaxPayload bytes together)
	// to the other processes' watchers if, and when, the transaction
	// commits.
	Publish(ctx context.Context, topic, payload string) error
}

// MaxPayload bounds a published topic and payload together.
const MaxPayload = 7000

// TopicVersions is implemented by a Shared store that counts, per topic,
// the committed transactions that published it, so that a cache of what
// those transactions change (access keys and policies, say) can check it
// is current before each use, without waiting for a notice.
type TopicVersions interface {
	// TopicVersion returns the count for topic (0 if it was never
	// published). Within a ctx from WithVersionMemo, the counts and the
	// Generation are read once and then reused.
	TopicVersion(ctx context.Context, topic string) (uint64, error)
}

// VersionMemo keeps the versions a store read for one request.
type VersionMemo struct {
	Filled bool
	Gen    uint64            // the store's Generation
	Topics map[string]uint64 // TopicVersion by topic
}

type memoKey struct{}

// WithVersionMemo returns a ctx in which a store's Generation and
// TopicVersion are read from the database once: for one short request, so
// that its several cache checks cost one query. Never give it to a
// long-lived task, which would then not see later commits.
func WithVersionMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &VersionMemo{})
}

// MemoFrom returns the memo WithVersionMemo put in ctx, or nil. It is not
// safe for concurrent use: one request's calls are sequential.
func MemoFrom(ctx context.Context) *VersionMemo {
	m, _ := ctx.Value(memoKey{}).(*VersionMemo)
	return m
}
