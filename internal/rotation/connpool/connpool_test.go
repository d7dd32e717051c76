package connpool_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rotor-secrets/rotor/internal/rotation/connpool"
)

// conn is a fake connection: the pool's behaviour does not depend on what
// a connection is, and a real server cannot fail a ping on cue.
type conn struct {
	id       int
	password string
	broken   bool // Ping fails
}

// fakes records what the pool does to connections.
type fakes struct {
	mu     sync.Mutex
	n      int
	closed []int
}

func (f *fakes) dial(password string) func(context.Context) (*conn, error) {
	return func(context.Context) (*conn, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.n++
		return &conn{id: f.n, password: password}, nil
	}
}

func (f *fakes) closedIDs() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.closed))
}

func (f *fakes) pool(opts connpool.Options[*conn]) *connpool.Pool[*conn] {
	opts.Ping = func(_ context.Context, c *conn) error {
		if c.broken {
			return errors.New("broken")
		}
		return nil
	}
	opts.Close = func(c *conn) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.closed = append(f.closed, c.id)
	}
	return connpool.New(opts)
}

var (
	master = connpool.Key{Engine: "postgres", Host: "db.example", Port: 5432, User: "admin", DBName: "postgres", TLS: "require"}
	other  = connpool.Key{Engine: "postgres", Host: "db.example", Port: 5432, User: "admin", DBName: "app", TLS: "require"}
)

// get checks out a connection and fails t on error.
func get(t *testing.T, p *connpool.Pool[*conn], f *fakes, key connpool.Key, password string) *connpool.Conn[*conn] {
	t.Helper()
	c, err := p.Get(t.Context(), key, password, f.dial(password))
	if err != nil {
		t.Fatal(err)
	}
	if c.C.password != password {
		t.Fatalf("got a connection opened with another password")
	}
	return c
}

func TestReuse(t *testing.T) {
	tests := []struct {
		name       string
		second     connpool.Key
		password   string
		wantReused bool
		wantClosed []int // after the second Get
	}{
		{"same key and password", master, "pw", true, nil},
		{"host differs only in case", func() connpool.Key { k := master; k.Host = "DB.example"; return k }(), "pw", true, nil},
		{"another password: the old connection is closed", master, "new-pw", false, []int{1}},
		{"another database", other, "pw", false, nil},
		{"another TLS setting", func() connpool.Key { k := master; k.TLS = "disable"; return k }(), "pw", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakes{}
			p := f.pool(connpool.Options[*conn]{})
			c := get(t, p, f, master, "pw")
			if c.Reused {
				t.Error("the first connection is reported reused")
			}
			c.Release(true)
			c2 := get(t, p, f, tc.second, tc.password)
			if c2.Reused != tc.wantReused {
				t.Errorf("Reused = %v, want %v", c2.Reused, tc.wantReused)
			}
			if got := f.closedIDs(); !slices.Equal(got, tc.wantClosed) {
				t.Errorf("closed %v, want %v", got, tc.wantClosed)
			}
			c2.Release(true)
		})
	}
}

func TestReleaseUnhealthyCloses(t *testing.T) {
	f := &fakes{}
	p := f.pool(connpool.Options[*conn]{})
	get(t, p, f, master, "pw").Release(false)
	if got := f.closedIDs(); !slices.Equal(got, []int{1}) {
		t.Fatalf("closed %v, want [1]", got)
	}
	if c := get(t, p, f, master, "pw"); c.Reused {
		t.Error("a connection released as unhealthy was reused")
	}
}

func TestFailedPingReconnects(t *testing.T) {
	f := &fakes{}
	p := f.pool(connpool.Options[*conn]{})
	a, b := get(t, p, f, master, "pw"), get(t, p, f, master, "pw")
	a.Release(true)
	b.Release(true)
	a.C.broken, b.C.broken = true, true
	c := get(t, p, f, master, "pw")
	if c.Reused || c.C.id != 3 {
		t.Errorf("got connection %d (reused %v), want a new one", c.C.id, c.Reused)
	}
	if got := f.closedIDs(); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("closed %v, want the broken [1 2]", got)
	}
}

func TestDialError(t *testing.T) {
	f := &fakes{}
	p := f.pool(connpool.Options[*conn]{})
	want := errors.New("login refused")
	_, err := p.Get(t.Context(), master, "pw", func(context.Context) (*conn, error) { return nil, want })
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if s := p.Stats(); s.Dials != 1 || s.Idle != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestMaxIdle(t *testing.T) {
	f := &fakes{}
	p := f.pool(connpool.Options[*conn]{Limits: connpool.Limits{MaxIdle: 2}})
	var cs []*connpool.Conn[*conn]
	for range 3 {
		cs = append(cs, get(t, p, f, master, "pw"))
	}
	for _, c := range cs {
		c.Release(true)
	}
	if got := f.closedIDs(); !slices.Equal(got, []int{3}) {
		t.Errorf("closed %v, want the third [3]", got)
	}
	if s := p.Stats(); s.Idle != 2 {
		t.Errorf("idle = %d, want 2", s.Idle)
	}
}

// Forget closes the idle connections of a user on a server, whatever the
// database, and those checked out when they come back; other users' stay.
func TestForget(t *testing.T) {
	f := &fakes{}
	p := f.pool(connpool.Options[*conn]{})
	idle := get(t, p, f, master, "pw")     // 1
	idleOther := get(t, p, f, other, "pw") // 2: same user, another database
	busy := get(t, p, f, master, "pw")     // 3
	app := master
	app.User = "app"
	unrelated := get(t, p, f, app, "pw") // 4
	idle.Release(true)
	idleOther.Release(true)
	unrelated.Release(true)

	p.Forget("postgres", "DB.EXAMPLE", 5432, "admin")
	if got := f.closedIDs(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("closed %v, want the idle [1 2]", got)
	}
	busy.Release(true)
	if got := f.closedIDs(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("closed %v, want [1 2 3]: a connection in use during Forget must not return", got)
	}
	if c := get(t, p, f, app, "pw"); !c.Reused {
		t.Error("another user's connection was not kept")
	}
}

// A login under way when Forget runs does not enter the pool.
func TestForgetDuringDial(t *testing.T) {
	f := &fakes{}
	p := f.pool(connpool.Options[*conn]{})
	c, err := p.Get(t.Context(), master, "pw", func(ctx context.Context) (*conn, error) {
		p.Forget("postgres", "db.example", 5432, "admin")
		return f.dial("pw")(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Release(true)
	if got := f.closedIDs(); !slices.Equal(got, []int{1}) {
		t.Errorf("closed %v, want [1]", got)
	}
}

func TestClose(t *testing.T) {
	f := &fakes{}
	p := f.pool(connpool.Options[*conn]{})
	idle, busy := get(t, p, f, master, "pw"), get(t, p, f, master, "pw")
	idle.Release(true)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.closedIDs(); !slices.Equal(got, []int{1}) {
		t.Fatalf("closed %v, want [1]", got)
	}
	busy.Release(true)
	// Get works after Close, without pooling.
	c := get(t, p, f, master, "pw")
	if c.Reused {
		t.Error("reused after Close")
	}
	c.Release(true)
	if got := f.closedIDs(); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("closed %v, want [1 2 3]", got)
	}
}

// Idle connections close after IdleTimeout without a Get to notice, and
// after MaxLifetime however often they are used.
func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakes{}
		p := f.pool(connpool.Options[*conn]{Limits: connpool.Limits{IdleTimeout: time.Minute, MaxLifetime: 10 * time.Minute}})
		get(t, p, f, master, "pw").Release(true)
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if got := f.closedIDs(); len(got) != 0 {
			t.Fatalf("closed %v before the idle timeout", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := f.closedIDs(); !slices.Equal(got, []int{1}) {
			t.Fatalf("closed %v after the idle timeout, want [1]", got)
		}
		if s := p.Stats(); s.Idle != 0 {
			t.Fatalf("idle = %d, want 0", s.Idle)
		}

		// Used every 30s: kept until MaxLifetime from its login.
		c := get(t, p, f, master, "pw")
		for i := 0; ; i++ {
			c.Release(true)
			time.Sleep(30 * time.Second)
			c = get(t, p, f, master, "pw")
			if !c.Reused {
				if i != 19 {
					t.Fatalf("connection replaced after %d reuses, want 19 (10 minutes)", i)
				}
				break
			}
		}
		c.Release(true)
		if got := f.closedIDs(); !slices.Equal(got, []int{1, 2}) {
			t.Fatalf("closed %v, want [1 2]", got)
		}
		p.Close()
	})
}

func TestConcurrentUse(t *testing.T) {
	f := &fakes{}
	p := f.pool(connpool.Options[*conn]{Limits: connpool.Limits{MaxIdle: 3}})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				pw := fmt.Sprint("pw", (i+j)%2)
				c, err := p.Get(context.Background(), master, pw, f.dial(pw))
				if err != nil {
					t.Error(err)
					return
				}
				if c.C.password != pw {
					t.Error("got a connection opened with another password")
				}
				if j%7 == 0 {
					p.Forget("postgres", "db.example", 5432, "admin")
				}
				c.Release(j%5 != 0)
			}
		})
	}
	wg.Wait()
	p.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.closed) != f.n {
		t.Errorf("%d connections opened, %d closed", f.n, len(f.closed))
	}
}
