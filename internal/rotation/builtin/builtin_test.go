package builtin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/dbtest"
	"github.com/rotor-secrets/rotor/internal/password"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/rotation/builtin"
	redisrot "github.com/rotor-secrets/rotor/internal/rotation/redis"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
)

// secretsFake is an in-memory secrets API: one secret's versions and labels,
// plus other secrets by id (for masterarn). The secrets domain has its own
// tests; this one is about the steps.
type secretsFake struct {
	values map[string]string   // version id → value
	labels map[string][]string // version id → labels
	others map[string]string   // secret id → AWSCURRENT value
}

func (f *secretsFake) Describe(context.Context, string) (builtin.Description, error) {
	return builtin.Description{ARN: "arn:db", RotationEnabled: true, Versions: f.labels}, nil
}

func (f *secretsFake) Value(_ context.Context, id, version, stage string) (string, error) {
	if id != "db" {
		if v, ok := f.others[id]; ok {
			return v, nil
		}
		return "", builtin.ErrNotFound
	}
	for vid, labels := range f.labels {
		if (version == "" || vid == version) && (stage == "" || slices.Contains(labels, stage)) {
			if v, ok := f.values[vid]; ok {
				return v, nil
			}
		}
	}
	return "", builtin.ErrNotFound
}

func (f *secretsFake) PutPending(_ context.Context, _, token, value string) error {
	f.values[token] = value
	if !slices.Contains(f.labels[token], "AWSPENDING") {
		f.labels[token] = append(f.labels[token], "AWSPENDING")
	}
	return nil
}

func (f *secretsFake) MoveCurrent(_ context.Context, _, token, from string) error {
	// As the domain does: AWSPREVIOUS leaves the version that had it, and
	// AWSPENDING the version that becomes current.
	for id, labels := range f.labels {
		f.labels[id] = slices.DeleteFunc(labels, func(l string) bool { return l == "AWSPREVIOUS" })
	}
	f.labels[from] = []string{"AWSPREVIOUS"}
	f.labels[token] = append(slices.DeleteFunc(f.labels[token], func(l string) bool { return l == "AWSPENDING" }), "AWSCURRENT")
	return nil
}

// rotatorFake records requests.
type rotatorFake struct {
	sets  []rotator.SetRequest
	tests []rotator.TestRequest
}

func (r *rotatorFake) Set(_ context.Context, req rotator.SetRequest) error {
	r.sets = append(r.sets, req)
	return nil
}

func (r *rotatorFake) Test(_ context.Context, req rotator.TestRequest) error {
	r.tests = append(r.tests, req)
	return nil
}

const token = "00000000-0000-4000-8000-000000000001"

func setup(strategy rotator.Strategy, current map[string]any) (*builtin.Function, *secretsFake, *rotatorFake) {
	cur, _ := json.Marshal(current)
	sf := &secretsFake{
		values: map[string]string{"v0": string(cur)},
		labels: map[string][]string{"v0": {"AWSCURRENT"}, token: {"AWSPENDING"}},
		others: map[string]string{"arn:master": `{"engine":"postgres","username":"admin","password":"master-pw"}`},
	}
	rf := &rotatorFake{}
	pw := password.Defaults()
	pw.ExcludeCharacters = `:/@"'\`
	fn := builtin.New(builtin.Config{Secrets: sf, Rotator: rf, Strategy: strategy, Engines: []string{"postgres"},
		DefaultPort: 5432, MaxUserLen: 63, Password: pw})
	return fn, sf, rf
}

func invoke(t *testing.T, fn *builtin.Function, step rotation.Step) error {
	t.Helper()
	return fn.Invoke(t.Context(), rotation.Event{Step: step, SecretID: "db", ClientRequestToken: token})
}

var appSecret = map[string]any{"engine": "postgres", "host": "db.internal", "username": "app", "password": "old-pw",
	"dbname": "shop", "masterarn": "arn:master", "team": "payments"}

func TestFourStepsAlternating(t *testing.T) {
	fn, sf, rf := setup(rotator.AlternatingUsers, appSecret)
	for _, step := range rotation.Steps {
		if err := invoke(t, fn, step); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	var pending map[string]any
	if err := json.Unmarshal([]byte(sf.values[token]), &pending); err != nil {
		t.Fatal(err)
	}
	pw, _ := pending["password"].(string)
	if pending["username"] != "app_clone" || len(pw) != 32 || strings.ContainsAny(pw, `:/@"'\`) || pw == "old-pw" {
		t.Fatalf("pending = %v", pending)
	}
	if pending["team"] != "payments" || pending["masterarn"] != "arn:master" || pending["dbname"] != "shop" {
		t.Fatalf("fields of the secret were not kept: %v", pending)
	}
	if len(rf.sets) != 1 {
		t.Fatalf("%d Set calls", len(rf.sets))
	}
	req := rf.sets[0]
	if req.Pending.Username != "app_clone" || req.Current.Username != "app" || req.Master == nil ||
		req.Master.Username != "admin" || req.Master.Host != "db.internal" || req.Pending.Port != 5432 || req.Pending.DBName != "shop" {
		t.Fatalf("SetRequest = %+v master %+v", req, req.Master)
	}
	if len(rf.tests) != 1 || rf.tests[0].Credentials.Username != "app_clone" {
		t.Fatalf("Test calls = %+v", rf.tests)
	}
	if !slices.Contains(sf.labels[token], "AWSCURRENT") || !slices.Equal(sf.labels["v0"], []string{"AWSPREVIOUS"}) {
		t.Fatalf("labels after finish = %v", sf.labels)
	}
	// Every step is now a no-op: the version is AWSCURRENT.
	for _, step := range rotation.Steps {
		if err := invoke(t, fn, step); err != nil {
			t.Fatalf("repeated %s: %v", step, err)
		}
	}
	if len(rf.sets) != 1 {
		t.Fatal("a repeated setSecret on a finished rotation touched the database")
	}
}

func TestCreateIsIdempotent(t *testing.T) {
	fn, sf, _ := setup(rotator.SingleUser, appSecret)
	if err := invoke(t, fn, rotation.StepCreate); err != nil {
		t.Fatal(err)
	}
	first := sf.values[token]
	if err := invoke(t, fn, rotation.StepCreate); err != nil {
		t.Fatal(err)
	}
	if sf.values[token] != first {
		t.Fatal("a repeated createSecret changed the pending value")
	}
	if !strings.Contains(first, `"username":"app"`) {
		t.Fatalf("single-user changed the user: %s", first)
	}
}

func TestGate(t *testing.T) {
	fn, sf, _ := setup(rotator.SingleUser, appSecret)
	delete(sf.labels, token)
	if err := invoke(t, fn, rotation.StepCreate); err == nil || !strings.Contains(err.Error(), "no stage for rotation") {
		t.Fatalf("unknown version: %v", err)
	}
	sf.labels[token] = []string{"custom"}
	if err := invoke(t, fn, rotation.StepCreate); err == nil || !strings.Contains(err.Error(), "not AWSPENDING") {
		t.Fatalf("version without AWSPENDING: %v", err)
	}
}

func TestSetRefusals(t *testing.T) {
	noMaster := map[string]any{"engine": "postgres", "host": "h", "username": "app", "password": "p"}
	cases := []struct {
		name     string
		strategy rotator.Strategy
		current  map[string]any
		pending  string
		want     string
	}{
		{"alternating without masterarn", rotator.AlternatingUsers, noMaster,
			`{"engine":"postgres","host":"h","username":"app_clone","password":"n"}`, "masterarn"},
		{"single-user changing the user", rotator.SingleUser, noMaster,
			`{"engine":"postgres","host":"h","username":"other","password":"n"}`, "cannot change the user name"},
		{"pending on another host", rotator.SingleUser, noMaster,
			`{"engine":"postgres","host":"elsewhere","username":"app","password":"n"}`, "another database"},
		{"wrong engine", rotator.SingleUser, noMaster,
			`{"engine":"mysql","host":"h","username":"app","password":"n"}`, `engine "mysql"`},
		{"not JSON", rotator.SingleUser, noMaster, `password=hunter2`, "not a JSON object"},
		{"no password", rotator.SingleUser, noMaster, `{"engine":"postgres","host":"h","username":"app"}`, `no "password"`},
		{"bad port", rotator.SingleUser, noMaster, `{"engine":"postgres","host":"h","username":"app","password":"n","port":"x"}`, "port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fn, sf, rf := setup(c.strategy, c.current)
			sf.values[token] = c.pending
			err := invoke(t, fn, rotation.StepSet)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), `"n"`) {
				t.Fatalf("error leaks a value: %v", err)
			}
			if len(rf.sets) != 0 {
				t.Fatal("the rotator was called with a refused request")
			}
		})
	}
}

// finisherFake is a rotatorFake with a Finish that records its requests
// and fails while err is set.
type finisherFake struct {
	rotatorFake
	finishes []rotator.FinishRequest
	err      error
}

func (r *finisherFake) Finish(_ context.Context, req rotator.FinishRequest) error {
	r.finishes = append(r.finishes, req)
	return r.err
}

func TestFinishGetsPreviousAndMaster(t *testing.T) {
	cur, _ := json.Marshal(appSecret)
	sf := &secretsFake{
		values: map[string]string{"v0": string(cur)},
		labels: map[string][]string{"v0": {"AWSCURRENT"}, token: {"AWSPENDING"}},
		others: map[string]string{"arn:master": `{"username":"admin","password":"master-pw"}`},
	}
	rf := &finisherFake{}
	fn := builtin.New(builtin.Config{Secrets: sf, Rotator: rf, Strategy: rotator.SingleUser, Engines: []string{"postgres"},
		DefaultPort: 5432, MaxUserLen: 63, Password: password.Defaults()})
	for _, step := range rotation.Steps[:3] {
		if err := invoke(t, fn, step); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	rf.err = errors.New("target down")
	if err := invoke(t, fn, rotation.StepFinish); err == nil || !strings.Contains(err.Error(), "target down") {
		t.Fatalf("finishSecret with a failing Finish: %v", err)
	}
	// AWSCURRENT moved; the retried finishSecret calls Finish again.
	rf.err = nil
	if err := invoke(t, fn, rotation.StepFinish); err != nil {
		t.Fatalf("retried finishSecret: %v", err)
	}
	if len(rf.finishes) != 2 {
		t.Fatalf("%d Finish calls, want 2", len(rf.finishes))
	}
	req := rf.finishes[1]
	var pending map[string]any
	if err := json.Unmarshal([]byte(sf.values[token]), &pending); err != nil {
		t.Fatal(err)
	}
	if req.Strategy != rotator.SingleUser || req.Current.Password != pending["password"] || req.Current.Username != "app" {
		t.Errorf("Current = %v", req.Current)
	}
	if req.Previous == nil || req.Previous.Password != "old-pw" {
		t.Errorf("Previous = %v, want the old credentials", req.Previous)
	}
	if req.Master == nil || req.Master.Username != "admin" || req.Master.Password != "master-pw" || req.Master.Host != "db.internal" {
		t.Errorf("Master = %v, want admin at the secret's host", req.Master)
	}

	// Without masterarn, Finish gets no master; the rotator decides.
	noMaster := maps.Clone(appSecret)
	delete(noMaster, "masterarn")
	_, sf2, _ := setup(rotator.SingleUser, noMaster)
	rf2 := &finisherFake{}
	fn2 := builtin.New(builtin.Config{Secrets: sf2, Rotator: rf2, Strategy: rotator.SingleUser, Engines: []string{"postgres"},
		DefaultPort: 5432, MaxUserLen: 63, Password: password.Defaults()})
	for _, step := range rotation.Steps {
		if err := invoke(t, fn2, step); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	if len(rf2.finishes) != 1 || rf2.finishes[0].Master != nil || rf2.finishes[0].Previous == nil {
		t.Errorf("Finish requests = %+v", rf2.finishes)
	}
}

func TestParseVariants(t *testing.T) {
	fn, sf, rf := setup(rotator.SingleUser, map[string]any{"engine": "postgres", "host": "h", "username": "app", "password": "p", "port": "6543", "ssl": true})
	sf.values[token] = `{"engine":"postgres","host":"h","username":"app","password":"n","port":"6543","ssl":true}`
	if err := invoke(t, fn, rotation.StepSet); err != nil {
		t.Fatal(err)
	}
	if p := rf.sets[0].Pending; p.Port != 6543 || p.SSLMode != "require" {
		t.Fatalf("pending = %+v", p)
	}
	for _, tc := range []struct {
		fields string
		want   string
	}{
		{`"tls":true`, "require"},
		{`"tls":"false"`, "disable"},
		{`"ssl":false,"tls":true`, "disable"},
		{`"sslmode":"verify-full","tls":false`, "verify-full"},
		{`"tls":"maybe"`, ""},
	} {
		fn, sf, rf := setup(rotator.SingleUser, map[string]any{"engine": "postgres", "host": "h", "username": "app", "password": "p"})
		sf.values[token] = `{"engine":"postgres","host":"h","username":"app","password":"n",` + tc.fields + `}`
		if err := invoke(t, fn, rotation.StepSet); err != nil {
			t.Fatal(err)
		}
		if got := rf.sets[0].Pending.SSLMode; got != tc.want {
			t.Errorf("%s: sslmode %q, want %q", tc.fields, got, tc.want)
		}
	}
}

func TestTestStepOfATestRotation(t *testing.T) {
	fn, _, rf := setup(rotator.SingleUser, appSecret)
	// The placeholder of a test rotation has no value: testSecret checks the current credentials.
	if err := invoke(t, fn, rotation.StepTest); err != nil {
		t.Fatal(err)
	}
	if len(rf.tests) != 1 || rf.tests[0].Credentials.Password != "old-pw" {
		t.Fatalf("tests = %+v", rf.tests)
	}
	if got := fmt.Sprint(rf.tests[0].Credentials); strings.Contains(got, "old-pw") {
		t.Fatalf("credentials print their password: %s", got)
	}
}

// TestRedisEndToEnd rotates a Redis ACL user through the four steps against
// a real server, with and without a master secret: between setSecret and
// finishSecret the old and the new password both log in, afterwards only
// the new one.
func TestRedisEndToEnd(t *testing.T) {
	t.Parallel()
	r := dbtest.StartRedis(t)
	rot := redisrot.New(redisrot.Options{})
	t.Cleanup(func() { rot.Close() })
	admin, _ := json.Marshal(map[string]any{"username": r.AdminUser, "password": r.AdminPassword})

	for _, tc := range []struct {
		name      string
		masterARN string
		rules     []string
	}{
		// An application's user: no ACL command; the admin changes it.
		{"with masterarn", "arn:redis-admin", []string{"~app:*", "+get", "+set"}},
		// A user allowed to change its own passwords (an admin's own secret).
		{"without masterarn", "", []string{"+ping", "+acl|setuser", "+acl|save"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oldPW := "old pw with ' and \" quotes"
			user := r.CreateUser(t, "e2e", oldPW, tc.rules...)
			secret := map[string]any{"engine": "redis", "host": r.Host, "port": r.Port, "username": user, "password": oldPW}
			if tc.masterARN != "" {
				secret["masterarn"] = tc.masterARN
			}
			cur, _ := json.Marshal(secret)
			sf := &secretsFake{
				values: map[string]string{"v0": string(cur)},
				labels: map[string][]string{"v0": {"AWSCURRENT"}},
				others: map[string]string{"arn:redis-admin": string(admin)},
			}
			pw := password.Defaults()
			pw.ExcludeCharacters = `:/@"'\`
			fn := builtin.New(builtin.Config{Secrets: sf, Rotator: rot, Strategy: rotator.SingleUser,
				Engines: redisrot.Engines(), DefaultPort: redisrot.DefaultPort, Password: pw})
			login := func(pw string) error { return r.CanLogin(t.Context(), user, pw) }
			passwordOf := func(version string) string {
				var v map[string]any
				if err := json.Unmarshal([]byte(sf.values[version]), &v); err != nil {
					t.Fatal(err)
				}
				s, _ := v["password"].(string)
				return s
			}

			current, older := oldPW, ""
			for i, tok := range []string{token, "00000000-0000-4000-8000-000000000002"} {
				sf.labels[tok] = []string{"AWSPENDING"}
				run := func(step rotation.Step) {
					t.Helper()
					if err := fn.Invoke(t.Context(), rotation.Event{Step: step, SecretID: "db", ClientRequestToken: tok}); err != nil {
						t.Fatalf("rotation %d, %s: %v", i+1, step, err)
					}
				}
				run(rotation.StepCreate)
				next := passwordOf(tok)
				if next == current || len(next) != 32 {
					t.Fatalf("rotation %d: pending password of %d characters", i+1, len(next))
				}
				run(rotation.StepSet)
				run(rotation.StepSet) // a repeated step
				if err := login(current); err != nil {
					t.Fatalf("rotation %d: the current password no longer logs in after setSecret: %v", i+1, err)
				}
				if err := login(next); err != nil {
					t.Fatalf("rotation %d: the pending password does not log in after setSecret: %v", i+1, err)
				}
				run(rotation.StepTest)
				if err := login(current); err != nil {
					t.Fatalf("rotation %d: the current password no longer logs in after testSecret: %v", i+1, err)
				}
				run(rotation.StepFinish)
				run(rotation.StepFinish) // a repeated step
				if err := login(next); err != nil {
					t.Fatalf("rotation %d: the new password does not log in after finishSecret: %v", i+1, err)
				}
				if err := login(current); err != nil {
					t.Fatalf("rotation %d: the previous password after finishSecret: %v (it lives until the next rotation)", i+1, err)
				}
				if older != "" {
					if err := login(older); !dbtest.IsRedisAuthFailure(err) {
						t.Fatalf("rotation %d: the password before the previous one: %v, want WRONGPASS", i+1, err)
					}
				}
				if !slices.Contains(sf.labels[tok], "AWSCURRENT") {
					t.Fatalf("rotation %d: labels = %v", i+1, sf.labels)
				}
				reply, err := r.Do(t.Context(), "ACL", "GETUSER", user)
				if err != nil {
					t.Fatal(err)
				}
				got := fmt.Sprint(reply)
				if !strings.Contains(got, "passwords ["+sha256Hex(next)+" "+sha256Hex(current)+"]") &&
					!strings.Contains(got, "passwords ["+sha256Hex(current)+" "+sha256Hex(next)+"]") {
					t.Errorf("rotation %d: ACL GETUSER = %v, want exactly the new and the previous password", i+1, got)
				}
				older, current = current, next
			}
		})
	}
}

// sha256Hex is how Redis stores a password.
func sha256Hex(pw string) string {
	sum := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(sum[:])
}

// TestMasterInheritsTLSMode: a master secret with only a login reaches the
// user's server as the user's secret says — TLS mode included — unless it
// sets its own.
func TestMasterInheritsTLSMode(t *testing.T) {
	for _, tc := range []struct{ master, want string }{
		{`{"username":"admin","password":"master-pw"}`, "require"},
		{`{"username":"admin","password":"master-pw","ssl":false}`, "disable"},
	} {
		user := maps.Clone(appSecret)
		user["ssl"] = true
		cur, _ := json.Marshal(user)
		sf := &secretsFake{
			values: map[string]string{"v0": string(cur)},
			labels: map[string][]string{"v0": {"AWSCURRENT"}, token: {"AWSPENDING"}},
			others: map[string]string{"arn:master": tc.master},
		}
		rf := &finisherFake{}
		fn := builtin.New(builtin.Config{Secrets: sf, Rotator: rf, Strategy: rotator.SingleUser, Engines: []string{"postgres"},
			DefaultPort: 5432, MaxUserLen: 63, Password: password.Defaults()})
		for _, step := range rotation.Steps {
			if err := invoke(t, fn, step); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
		}
		if len(rf.finishes) != 1 || rf.finishes[0].Master == nil || rf.finishes[0].Master.SSLMode != tc.want {
			t.Errorf("master %s: Finish requests %+v, want the master's sslmode %q", tc.master, rf.finishes, tc.want)
		}
	}
}
