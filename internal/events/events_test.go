package events

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func change(n int) LabelChange {
	return LabelChange{SecretARN: "arn:s", Name: "s", Label: "AWSCURRENT", VersionID: fmt.Sprint(n)}
}

// drain returns what ch holds now without waiting.
func drain(ch <-chan LabelChange) []LabelChange {
	var out []LabelChange
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, c)
		default:
			return out
		}
	}
}

func TestPublishReachesEverySubscriberInOrder(t *testing.T) {
	h := NewHub(0)
	a, stopA := h.Subscribe(t.Context())
	defer stopA()
	b, stopB := h.Subscribe(t.Context())
	defer stopB()
	h.Publish(change(1), change(2))
	h.Publish(change(3))
	for name, ch := range map[string]<-chan LabelChange{"a": a, "b": b} {
		got := drain(ch)
		if len(got) != 3 {
			t.Fatalf("%s got %d changes, want 3: %+v", name, len(got), got)
		}
		for i, c := range got {
			if want := fmt.Sprint(i + 1); c.VersionID != want || c.Resync {
				t.Errorf("%s[%d] = %+v, want version %s", name, i, c, want)
			}
		}
	}
}

func TestPublishWithoutSubscribers(t *testing.T) {
	h := NewHub(0)
	h.Publish(change(1)) // must not block or panic
	h.Publish()
}

func TestSubscriberSeesOnlyLaterChanges(t *testing.T) {
	h := NewHub(0)
	h.Publish(change(1))
	ch, stop := h.Subscribe(t.Context())
	defer stop()
	h.Publish(change(2))
	got := drain(ch)
	if len(got) != 1 || got[0].VersionID != "2" {
		t.Fatalf("got %+v, want only change 2", got)
	}
}

func TestSlowSubscriberIsMarkedForResync(t *testing.T) {
	h := NewHub(4)
	slow, stopSlow := h.Subscribe(t.Context())
	defer stopSlow()
	fast, stopFast := h.Subscribe(t.Context())
	defer stopFast()

	var fastGot []LabelChange
	for i := 1; i <= 10; i++ {
		h.Publish(change(i)) // never blocks, although slow never reads
		fastGot = append(fastGot, drain(fast)...)
	}
	if len(fastGot) != 10 {
		t.Errorf("fast subscriber got %d changes, want 10", len(fastGot))
	}
	got := drain(slow)
	if len(got) == 0 || !got[0].Resync {
		t.Fatalf("slow subscriber got %+v, want a Resync notice first", got)
	}
	if got[0].Removed() {
		t.Error("a Resync notice reports Removed")
	}
	// After the notice: the newest changes, ending with the last one.
	if last := got[len(got)-1]; last.VersionID != "10" {
		t.Errorf("last change = %+v, want version 10", last)
	}
	if len(got) > 4 {
		t.Errorf("slow subscriber holds %d entries, more than its buffer of 4", len(got))
	}
	// Once it keeps up again, delivery is normal.
	h.Publish(change(11))
	if got := drain(slow); len(got) != 1 || got[0].VersionID != "11" {
		t.Errorf("after resync got %+v, want change 11", got)
	}
}

func TestUnsubscribeClosesTheChannel(t *testing.T) {
	h := NewHub(0)
	ch, stop := h.Subscribe(t.Context())
	stop()
	stop() // idempotent
	if _, ok := <-ch; ok {
		t.Fatal("channel open after unsubscribe")
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d after unsubscribe", n)
	}
	h.Publish(change(1)) // no send on the closed channel
}

func TestContextEndUnsubscribes(t *testing.T) {
	h := NewHub(0)
	ctx, cancel := context.WithCancel(t.Context())
	ch, stop := h.Subscribe(ctx)
	defer stop()
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("received a change, want the channel closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("channel not closed after the context ended")
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d", n)
	}
}

func TestRemoved(t *testing.T) {
	tests := []struct {
		name string
		c    LabelChange
		want bool
	}{
		{"attached", LabelChange{Label: "AWSPENDING", VersionID: "v2"}, false},
		{"moved", LabelChange{Label: "AWSCURRENT", VersionID: "v2", FromVersionID: "v1"}, false},
		{"removed", LabelChange{Label: "AWSPENDING", FromVersionID: "v2"}, true},
		{"resync", LabelChange{Resync: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Removed(); got != tt.want {
				t.Errorf("Removed() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestConcurrentUse runs publishers, readers and unsubscribes together; the
// race detector and the absence of a panic (send on closed channel) are
// the assertions.
func TestConcurrentUse(t *testing.T) {
	h := NewHub(8)
	var pubs, subs sync.WaitGroup
	published := make(chan struct{})
	for n := range 8 {
		subs.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ch, stop := h.Subscribe(ctx)
			for i := 0; i < 50; i++ {
				select {
				case <-ch:
				case <-published:
					i = 50
				}
			}
			if n%2 == 0 {
				cancel()
			} else {
				stop()
			}
			for range ch { // until closed
			}
		})
	}
	for p := range 4 {
		pubs.Go(func() {
			for i := range 200 {
				h.Publish(change(p*1000 + i))
			}
		})
	}
	pubs.Wait()
	close(published)
	subs.Wait()
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("Subscribers() = %d after every subscriber left", n)
	}
}
