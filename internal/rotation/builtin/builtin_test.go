package builtin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/password"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/rotation/builtin"
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
	f.labels[from] = []string{"AWSPREVIOUS"}
	f.labels[token] = append(f.labels[token], "AWSCURRENT")
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

func TestParseVariants(t *testing.T) {
	fn, sf, rf := setup(rotator.SingleUser, map[string]any{"engine": "postgres", "host": "h", "username": "app", "password": "p", "port": "6543", "ssl": true})
	sf.values[token] = `{"engine":"postgres","host":"h","username":"app","password":"n","port":"6543","ssl":true}`
	if err := invoke(t, fn, rotation.StepSet); err != nil {
		t.Fatal(err)
	}
	if p := rf.sets[0].Pending; p.Port != 6543 || p.SSLMode != "require" {
		t.Fatalf("pending = %+v", p)
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
