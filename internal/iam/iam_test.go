package iam_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/auth/policy"
	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/secrets"
	"github.com/rotor-secrets/rotor/internal/store/sqlite"
)

const (
	account = "000000000000"
	rootARN = "arn:aws:iam::000000000000:root"
)

type env struct {
	t    *testing.T
	iam  *iam.Service
	svc  *secrets.Service
	keys *auth.StoreKeys
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "rotor.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, err := keyring.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.New(mk)
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewStoreKeys(st, kr)
	a := iam.New(iam.Config{Store: st, Keys: keys, AccountID: account, Region: "us-east-1"})
	svc := secrets.New(secrets.Config{Region: "us-east-1", AccountID: account, Store: st, Keyring: kr,
		Authorize: a.Authorize,
		CheckPolicy: func(doc string) (bool, error) {
			p, err := policy.ParseResourcePolicy(doc)
			if err != nil {
				return false, err
			}
			return p.IsPublic(), nil
		}})
	return &env{t: t, iam: a, svc: svc, keys: keys}
}

// as returns a request context for principal calling operation.
func (e *env) as(principal, operation string) (context.Context, *iam.Caller) {
	e.t.Helper()
	c := &iam.Caller{
		Principal: auth.Principal{ARN: principal, AccessKeyID: "AKRTTEST", Root: principal == rootARN},
		Operation: operation, SourceIP: "10.1.2.3", Time: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC),
	}
	ctx := iam.WithCaller(e.t.Context(), c)
	if err := e.iam.Prepare(ctx, c); err != nil {
		e.t.Fatal(err)
	}
	return ctx, c
}

func (e *env) root(op string) context.Context {
	ctx, _ := e.as(rootARN, op)
	return ctx
}

func (e *env) user(name string, docs ...string) string {
	e.t.Helper()
	if _, err := e.iam.CreateUser(e.root("rotor:CreateUser"), name); err != nil {
		e.t.Fatal(err)
	}
	for i, d := range docs {
		pname := name + "-" + string(rune('a'+i))
		if _, err := e.iam.CreatePolicy(e.root("rotor:CreatePolicy"), pname, "", d); err != nil {
			e.t.Fatal(err)
		}
		if err := e.iam.AttachUserPolicy(e.root("rotor:AttachUserPolicy"), name, pname); err != nil {
			e.t.Fatal(err)
		}
	}
	return "arn:aws:iam::000000000000:user/" + name
}

func (e *env) secret(name string, tags ...secrets.Tag) string {
	e.t.Helper()
	out, err := e.svc.CreateSecret(e.root("secretsmanager:CreateSecret"), secrets.CreateSecretInput{
		Name: name, Value: secrets.StringValue("v-" + name), Tags: tags})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.ARN
}

func allowDoc(action, resource string, extra ...string) string {
	cond := ""
	if len(extra) > 0 {
		cond = `,"Condition":` + extra[0]
	}
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + action + `","Resource":"` + resource + `"` + cond + `}]}`
}

const smARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:"

func wantDenied(t *testing.T, err error, principal, action string) {
	t.Helper()
	if secrets.KindOf(err) != secrets.KindAccessDenied {
		t.Fatalf("err = %v, want AccessDenied", err)
	}
	prefix := "User: " + principal + " is not authorized to perform: " + action + " on resource: "
	if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), " because ") {
		t.Fatalf("message = %q, want prefix %q and a reason", err.Error(), prefix)
	}
}

func TestAuthorizeSecretOperations(t *testing.T) {
	e := newEnv(t)
	appDB := e.secret("app/db")
	other := e.secret("other/db", secrets.Tag{Key: "team", Value: "payments"})
	reader := e.user("reader",
		allowDoc("secretsmanager:GetSecretValue", smARN+"app/*"),
		allowDoc("secretsmanager:Describe*", smARN+"*", `{"StringEquals":{"secretsmanager:ResourceTag/team":"payments"}}`))
	denier := e.user("denier",
		allowDoc("secretsmanager:*", "*"),
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"secretsmanager:PutSecretValue","Resource":"*"}]}`)
	nobody := e.user("nobody")

	get := func(p, id string) error {
		ctx, _ := e.as(p, "secretsmanager:GetSecretValue")
		_, err := e.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: id})
		return err
	}
	if err := get(reader, "app/db"); err != nil {
		t.Errorf("reader GetSecretValue app/db: %v", err)
	}
	wantDenied(t, get(reader, "other/db"), reader, "secretsmanager:GetSecretValue")
	wantDenied(t, get(nobody, appDB), nobody, "secretsmanager:GetSecretValue")

	// A missing secret: denied callers cannot tell it is missing.
	wantDenied(t, get(nobody, "ghost"), nobody, "secretsmanager:GetSecretValue")
	if err := get(reader, "app/ghost"); secrets.KindOf(err) != secrets.KindNotFound {
		t.Errorf("reader GetSecretValue app/ghost = %v, want ResourceNotFound", err)
	}

	// Tag conditions.
	ctx, _ := e.as(reader, "secretsmanager:DescribeSecret")
	if _, err := e.svc.DescribeSecret(ctx, other); err != nil {
		t.Errorf("reader DescribeSecret tagged secret: %v", err)
	}
	ctx, _ = e.as(reader, "secretsmanager:DescribeSecret")
	_, err := e.svc.DescribeSecret(ctx, appDB)
	wantDenied(t, err, reader, "secretsmanager:DescribeSecret")

	// An explicit deny beats an allow.
	ctx, _ = e.as(denier, "secretsmanager:PutSecretValue")
	_, err = e.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{SecretID: appDB, Value: secrets.StringValue("x")})
	if err == nil || !strings.HasSuffix(err.Error(), "with an explicit deny in an identity-based policy") {
		t.Errorf("denier PutSecretValue = %v, want explicit deny", err)
	}
	// Root may do everything.
	if _, err := e.svc.PutSecretValue(e.root("secretsmanager:PutSecretValue"),
		secrets.PutSecretValueInput{SecretID: appDB, Value: secrets.StringValue("y")}); err != nil {
		t.Errorf("root PutSecretValue: %v", err)
	}
	// No caller, not the system: refused.
	if _, err := e.svc.DescribeSecret(t.Context(), appDB); err == nil {
		t.Error("DescribeSecret without a caller succeeded")
	}
	if _, err := e.svc.DescribeSecret(iam.System(t.Context()), appDB); err != nil {
		t.Errorf("DescribeSecret as the system: %v", err)
	}
}

func TestAuthorizeResourcePolicy(t *testing.T) {
	e := newEnv(t)
	shared := e.secret("shared/cfg")
	guest := e.user("guest")
	acct := e.user("acct")
	doc := `{"Version":"2012-10-17","Statement":[` +
		`{"Effect":"Allow","Principal":{"AWS":"` + guest + `"},"Action":"secretsmanager:GetSecretValue","Resource":"*"},` +
		`{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"secretsmanager:*","Resource":"*"}]}`
	if _, err := e.svc.PutResourcePolicy(e.root("secretsmanager:PutResourcePolicy"), shared, doc, true); err != nil {
		t.Fatal(err)
	}
	ctx, _ := e.as(guest, "secretsmanager:GetSecretValue")
	if _, err := e.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: shared}); err != nil {
		t.Errorf("guest allowed by the resource policy: %v", err)
	}
	// Naming the account delegates to identity policies: acct has none.
	ctx, _ = e.as(acct, "secretsmanager:GetSecretValue")
	_, err := e.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: shared})
	wantDenied(t, err, acct, "secretsmanager:GetSecretValue")
}

func TestListSecretsFiltered(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"app/a", "app/b", "ops/c"} {
		e.secret(n)
	}
	lister := e.user("lister", allowDoc("secretsmanager:ListSecrets", smARN+"app/*"))
	nobody := e.user("nobody")
	ctx, _ := e.as(lister, "secretsmanager:ListSecrets")
	out, err := e.svc.ListSecrets(ctx, secrets.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range out.SecretList {
		names = append(names, d.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"app/a", "app/b"}) {
		t.Errorf("ListSecrets as lister = %v, want app/a app/b", names)
	}
	ctx, _ = e.as(nobody, "secretsmanager:ListSecrets")
	_, err = e.svc.ListSecrets(ctx, secrets.ListSecretsInput{})
	wantDenied(t, err, nobody, "secretsmanager:ListSecrets")
}

func TestBatchGetPerSecret(t *testing.T) {
	e := newEnv(t)
	a, b := e.secret("app/a"), e.secret("ops/b")
	u := e.user("batch",
		allowDoc("secretsmanager:BatchGetSecretValue", "*"),
		allowDoc("secretsmanager:GetSecretValue", smARN+"app/*"))
	ctx, c := e.as(u, "secretsmanager:BatchGetSecretValue")
	out, err := e.svc.BatchGetSecretValue(ctx, secrets.BatchGetSecretValueInput{SecretIDList: []string{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecretValues) != 1 || out.SecretValues[0].ARN != a {
		t.Errorf("values = %+v, want only %s", out.SecretValues, a)
	}
	if len(out.Errors) != 1 || out.Errors[0].SecretID != b || secrets.KindOf(out.Errors[0].Err) != secrets.KindAccessDenied {
		t.Errorf("errors = %+v, want AccessDenied for %s", out.Errors, b)
	}
	// The audit notes: the served version of a, the denial of b.
	if len(c.Accesses) != 1 || c.Accesses[0].SecretARN != a || c.Accesses[0].VersionID == "" ||
		c.Accesses[0].Action != secrets.ActionGetSecretValue {
		t.Errorf("Accesses = %+v", c.Accesses)
	}
	if len(c.Denied) != 1 || c.Denied[0].SecretARN != b {
		t.Errorf("Denied = %+v", c.Denied)
	}
}

func TestConditions(t *testing.T) {
	e := newEnv(t)
	s := e.secret("app/db")
	if _, err := e.svc.PutSecretValue(e.root("secretsmanager:PutSecretValue"),
		secrets.PutSecretValueInput{SecretID: s, Value: secrets.StringValue("2")}); err != nil {
		t.Fatal(err)
	}
	u := e.user("cond",
		allowDoc("secretsmanager:GetSecretValue", smARN+"${aws:username}-not/*"),
		allowDoc("secretsmanager:GetSecretValue", "*", `{"StringEquals":{"secretsmanager:VersionStage":"AWSCURRENT"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`))
	ctx, _ := e.as(u, "secretsmanager:GetSecretValue")
	if _, err := e.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: s}); err != nil {
		t.Errorf("AWSCURRENT from 10.1.2.3: %v", err)
	}
	ctx, _ = e.as(u, "secretsmanager:GetSecretValue")
	_, err := e.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: s, VersionStage: "AWSPREVIOUS"})
	wantDenied(t, err, u, "secretsmanager:GetSecretValue")
	ctx, c := e.as(u, "secretsmanager:GetSecretValue")
	c.SourceIP = "192.168.1.1"
	_, err = e.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: s})
	wantDenied(t, err, u, "secretsmanager:GetSecretValue")

	// ${aws:username} in a resource.
	own := e.secret("cond/key")
	u2 := e.user("u2", allowDoc("secretsmanager:GetSecretValue", smARN+"${aws:username}/*"))
	ctx, _ = e.as(u2, "secretsmanager:GetSecretValue")
	_, err = e.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: own})
	wantDenied(t, err, u2, "secretsmanager:GetSecretValue")
	e.secret("u2/key")
	ctx, _ = e.as(u2, "secretsmanager:GetSecretValue")
	if _, err := e.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: "u2/key"}); err != nil {
		t.Errorf("u2 reading u2/key: %v", err)
	}
}

func TestTagConditionsOnCreate(t *testing.T) {
	e := newEnv(t)
	u := e.user("creator", allowDoc("secretsmanager:CreateSecret", "*",
		`{"StringEquals":{"aws:RequestTag/team":"payments"},"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}`))
	ctx, _ := e.as(u, "secretsmanager:CreateSecret")
	_, err := e.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "x", Tags: []secrets.Tag{{Key: "team", Value: "ops"}}})
	wantDenied(t, err, u, "secretsmanager:CreateSecret")
	ctx, _ = e.as(u, "secretsmanager:CreateSecret")
	_, err = e.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "x", Tags: []secrets.Tag{{Key: "team", Value: "payments"}, {Key: "cost", Value: "1"}}})
	wantDenied(t, err, u, "secretsmanager:CreateSecret")
	ctx, _ = e.as(u, "secretsmanager:CreateSecret")
	if _, err := e.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: "x", Tags: []secrets.Tag{{Key: "team", Value: "payments"}}}); err != nil {
		t.Errorf("tagged create: %v", err)
	}
}

func TestAdminOperations(t *testing.T) {
	e := newEnv(t)
	admin := e.user("admin", allowDoc("rotor:*", "*"))
	plain := e.user("plain")
	ctx, _ := e.as(plain, "rotor:CreateUser")
	_, err := e.iam.CreateUser(ctx, "x")
	wantDenied(t, err, plain, "rotor:CreateUser")

	ctx, _ = e.as(admin, "rotor:CreateUser")
	if _, err := e.iam.CreateUser(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	wantKind := func(err error, k iam.Kind) {
		t.Helper()
		ie, ok := err.(*iam.Error)
		if !ok || ie.Kind != k {
			t.Fatalf("err = %v, want iam kind %d", err, k)
		}
	}
	_, err = e.iam.CreateUser(e.root("rotor:CreateUser"), "svc")
	wantKind(err, iam.KindEntityExists)
	_, err = e.iam.CreateUser(e.root("rotor:CreateUser"), "bad name")
	wantKind(err, iam.KindInvalidInput)
	_, err = e.iam.CreatePolicy(e.root("rotor:CreatePolicy"), "p", "", `{"Statement":[]}`)
	wantKind(err, iam.KindMalformedPolicy)
	err = e.iam.AttachUserPolicy(e.root("rotor:AttachUserPolicy"), "svc", "missing")
	wantKind(err, iam.KindNoSuchEntity)

	k1, err := e.iam.CreateAccessKey(e.root("rotor:CreateAccessKey"), "svc")
	if err != nil || k1.Secret == "" {
		t.Fatalf("CreateAccessKey = %+v, %v", k1, err)
	}
	if _, err := e.iam.CreateAccessKey(e.root("rotor:CreateAccessKey"), "svc"); err != nil {
		t.Fatal(err)
	}
	_, err = e.iam.CreateAccessKey(e.root("rotor:CreateAccessKey"), "svc")
	wantKind(err, iam.KindLimitExceeded)
	keys, err := e.iam.ListAccessKeys(e.root("rotor:ListAccessKeys"), "svc")
	if err != nil || len(keys) != 2 || keys[0].Secret != "" || keys[1].Secret != "" {
		t.Fatalf("ListAccessKeys = %+v, %v", keys, err)
	}

	// Deactivation and deletion apply to the very next lookup.
	if _, _, err := e.keys.SecretKey(t.Context(), k1.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if err := e.iam.UpdateAccessKey(e.root("rotor:UpdateAccessKey"), "svc", k1.AccessKeyID, iam.StatusInactive); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.keys.SecretKey(t.Context(), k1.AccessKeyID); err != auth.ErrUnknownKey {
		t.Errorf("deactivated key: err = %v, want ErrUnknownKey", err)
	}
	err = e.iam.UpdateAccessKey(e.root("rotor:UpdateAccessKey"), "plain", k1.AccessKeyID, iam.StatusActive)
	wantKind(err, iam.KindNoSuchEntity) // another user's key
	if err := e.iam.UpdateAccessKey(e.root("rotor:UpdateAccessKey"), "svc", k1.AccessKeyID, iam.StatusActive); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.keys.SecretKey(t.Context(), k1.AccessKeyID); err != nil {
		t.Errorf("reactivated key: %v", err)
	}
	if err := e.iam.DeleteUser(e.root("rotor:DeleteUser"), "svc"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.keys.SecretKey(t.Context(), k1.AccessKeyID); err != auth.ErrUnknownKey {
		t.Errorf("key of a deleted user: err = %v, want ErrUnknownKey", err)
	}

	// Policy changes apply to the next request.
	if _, err := e.iam.CreatePolicy(e.root("rotor:CreatePolicy"), "grow", "", allowDoc("secretsmanager:ListSecrets", "*")); err != nil {
		t.Fatal(err)
	}
	if err := e.iam.AttachUserPolicy(e.root("rotor:AttachUserPolicy"), "plain", "arn:aws:iam::000000000000:policy/grow"); err != nil {
		t.Fatal(err)
	}
	ctx, _ = e.as(plain, "secretsmanager:ListSecrets")
	if _, err := e.svc.ListSecrets(ctx, secrets.ListSecretsInput{}); err != nil {
		t.Errorf("ListSecrets after attach: %v", err)
	}
	err = e.iam.DeletePolicy(e.root("rotor:DeletePolicy"), "grow")
	wantKind(err, iam.KindDeleteConflict)
	if _, err := e.iam.UpdatePolicy(e.root("rotor:UpdatePolicy"), "grow", allowDoc("secretsmanager:GetSecretValue", "*")); err != nil {
		t.Fatal(err)
	}
	ctx, _ = e.as(plain, "secretsmanager:ListSecrets")
	_, err = e.svc.ListSecrets(ctx, secrets.ListSecretsInput{})
	wantDenied(t, err, plain, "secretsmanager:ListSecrets")
}

// TestSessionPolicy: temporary credentials (a rotation function's) have
// their session policy as their only identity policy.
func TestSessionPolicy(t *testing.T) {
	e := newEnv(t)
	mine, other := e.secret("app/db"), e.secret("other/db")
	as := func(op string) context.Context {
		c := &iam.Caller{
			Principal: auth.Principal{ARN: "arn:aws:sts::000000000000:assumed-role/rotor-rotation-function/f", AccessKeyID: "ASIATEST",
				SessionPolicy: allowDoc("secretsmanager:GetSecretValue", mine)},
			Operation: op, Time: time.Now(),
		}
		ctx := iam.WithCaller(t.Context(), c)
		if err := e.iam.Prepare(ctx, c); err != nil {
			t.Fatal(err)
		}
		return ctx
	}
	if _, err := e.svc.GetSecretValue(as("secretsmanager:GetSecretValue"), secrets.GetSecretValueInput{SecretID: mine}); err != nil {
		t.Errorf("the session's own secret: %v", err)
	}
	_, err := e.svc.GetSecretValue(as("secretsmanager:GetSecretValue"), secrets.GetSecretValueInput{SecretID: other})
	wantDenied(t, err, "arn:aws:sts::000000000000:assumed-role/rotor-rotation-function/f", "secretsmanager:GetSecretValue")
	_, err = e.svc.PutSecretValue(as("secretsmanager:PutSecretValue"), secrets.PutSecretValueInput{SecretID: mine, Value: secrets.StringValue("x")})
	wantDenied(t, err, "arn:aws:sts::000000000000:assumed-role/rotor-rotation-function/f", "secretsmanager:PutSecretValue")
}
