package e2e

// Access control through the built server: users, access keys, managed
// identity policies and resource policies, decided per request as IAM
// decides them, with AWS's AccessDeniedException message.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// The reasons that end AWS's denial messages.
const (
	reasonExplicitIdentity = "with an explicit deny in an identity-based policy"
	reasonImplicitPrefix   = "because no identity-based policy allows the "
)

// deniedMessage is AWS's AccessDeniedException message for an implicit
// (explicit false) or explicit deny of action on resource to principal.
func deniedMessage(principal, action, resource string, explicit bool) string {
	reason := reasonImplicitPrefix + action + " action"
	if explicit {
		reason = reasonExplicitIdentity
	}
	return "User: " + principal + " is not authorized to perform: " + action + " on resource: " + resource + " " + reason
}

// The outcomes a matrix cell expects.
const (
	allowed  = "allowed"
	implicit = "implicit deny"
	explicit = "explicit deny"
	notFound = "ResourceNotFoundException"
)

// secretOp is an operation on one secret as a cell calls it.
type secretOp struct {
	action string
	call   func(ctx context.Context, c *secretsmanager.Client, id string) error
}

var matrixOps = map[string]secretOp{
	"GetSecretValue": {"secretsmanager:GetSecretValue", func(ctx context.Context, c *secretsmanager.Client, id string) error {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		return err
	}},
	"GetSecretValue(AWSPREVIOUS)": {"secretsmanager:GetSecretValue", func(ctx context.Context, c *secretsmanager.Client, id string) error {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id), VersionStage: aws.String("AWSPREVIOUS")})
		return err
	}},
	"DescribeSecret": {"secretsmanager:DescribeSecret", func(ctx context.Context, c *secretsmanager.Client, id string) error {
		_, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		return err
	}},
	"ListSecretVersionIds": {"secretsmanager:ListSecretVersionIds", func(ctx context.Context, c *secretsmanager.Client, id string) error {
		_, err := c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(id)})
		return err
	}},
	"PutSecretValue": {"secretsmanager:PutSecretValue", func(ctx context.Context, c *secretsmanager.Client, id string) error {
		_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String("written by the matrix")})
		return err
	}},
	"GetResourcePolicy": {"secretsmanager:GetResourcePolicy", func(ctx context.Context, c *secretsmanager.Client, id string) error {
		_, err := c.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(id)})
		return err
	}},
}

// actor is a principal with its client.
type actor struct {
	arn string
	key aws.Credentials
	c   *secretsmanager.Client
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	root := client(t, srv)
	ctx := t.Context()

	// The secrets. app-a/db has an AWSPREVIOUS version; shared/cfg is
	// tagged for the payments team and lets app-b read it by its resource
	// policy.
	arns := map[string]string{}
	for _, s := range []struct {
		name string
		tags []types.Tag
	}{
		{"app-a/db", nil},
		{"app-b/db", nil},
		{"shared/cfg", []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}},
		{"tenant-x/key", nil},
		{"tenant-y/key", nil},
	} {
		out, err := root.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.name), SecretString: aws.String("value of " + s.name), Tags: s.tags})
		must(t, err)
		arns[s.name] = aws.ToString(out.ARN)
	}
	putString(t, root, "app-a/db", "second value of app-a/db")
	_, err := root.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{
		SecretId: aws.String("shared/cfg"), BlockPublicPolicy: aws.Bool(true),
		ResourcePolicy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + userARN("app-b") +
			`"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`),
	})
	must(t, err)

	// The policies.
	appA := newPolicy(t, srv, "app-a-read", policyDoc(
		`{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret","secretsmanager:ListSecrets"],"Resource":"`+secretARNPrefix+`app-a/*"}`,
		`{"Effect":"Allow","Action":"secretsmanager:BatchGetSecretValue","Resource":"*"}`,
	))
	appB := newPolicy(t, srv, "app-b-all-but-put", policyDoc(
		`{"Effect":"Allow","Action":"secretsmanager:*","Resource":"`+secretARNPrefix+`app-b/*"}`,
		`{"Effect":"Deny","Action":"secretsmanager:PutSecretValue","Resource":"*"}`,
	))
	payments := newPolicy(t, srv, "payments-team", policyDoc(
		`{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],"Resource":"*",`+
			`"Condition":{"StringEquals":{"secretsmanager:ResourceTag/team":"payments"}}}`,
	))
	currentOnly := newPolicy(t, srv, "app-a-current-only", policyDoc(
		`{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+secretARNPrefix+`app-a/*",`+
			`"Condition":{"StringEquals":{"secretsmanager:VersionStage":"AWSCURRENT"}}}`,
	))
	readAppA := newPolicy(t, srv, "app-a-get", policyDoc(
		`{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+secretARNPrefix+`app-a/*"}`,
	))
	// The same fence around two networks: the loopback network, where the
	// test's requests come from, and TEST-NET-1, where they do not.
	fence := func(cidr string) string {
		return policyDoc(`{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"` + cidr + `"}}}`)
	}
	loopbackOnly := newPolicy(t, srv, "only-from-loopback", fence("127.0.0.0/8"))
	testNetOnly := newPolicy(t, srv, "only-from-test-net-1", fence("192.0.2.0/24"))
	ownPrefix := newPolicy(t, srv, "own-prefix", policyDoc(
		`{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+secretARNPrefix+`${aws:username}/*"}`,
	))
	userAdmin := newPolicy(t, srv, "create-users", policyDoc(
		`{"Effect":"Allow","Action":"rotor:CreateUser","Resource":"arn:aws:iam::`+accountID+`:user/*"}`,
	))

	// The principals.
	actors := map[string]actor{"root": {arn: "arn:aws:iam::" + accountID + ":root", key: *rootKey(), c: root}}
	for name, policies := range map[string][]string{
		"app-a":        {appA},
		"app-b":        {appB},
		"auditor":      {payments},
		"admin-less":   nil,
		"current-only": {currentOnly},
		"ip-loopback":  {readAppA, loopbackOnly},
		"ip-test-net":  {readAppA, testNetOnly},
		"tenant-x":     {ownPrefix},
		"tenant-y":     {ownPrefix},
		"user-admin":   {userAdmin},
	} {
		key := newUser(t, srv, name, policies...)
		actors[name] = actor{arn: userARN(name), key: key, c: keyClient(srv, key)}
	}

	cells := []struct {
		who, op, secret string
		want            string
	}{
		// Root may do everything.
		{"root", "GetSecretValue", "app-a/db", allowed},
		{"root", "GetSecretValue", "shared/cfg", allowed},
		{"root", "DescribeSecret", "app-b/db", allowed},
		{"root", "PutSecretValue", "tenant-y/key", allowed},
		{"root", "GetSecretValue", "app-a/missing", notFound},

		// Identity policy on a prefix.
		{"app-a", "GetSecretValue", "app-a/db", allowed},
		{"app-a", "GetSecretValue(AWSPREVIOUS)", "app-a/db", allowed},
		{"app-a", "DescribeSecret", "app-a/db", allowed},
		{"app-a", "PutSecretValue", "app-a/db", implicit},
		{"app-a", "ListSecretVersionIds", "app-a/db", implicit},
		{"app-a", "GetSecretValue", "app-b/db", implicit},
		{"app-a", "GetSecretValue", "shared/cfg", implicit}, // the resource policy names app-b only
		{"app-a", "GetSecretValue", "app-a/missing", notFound},
		{"app-a", "GetSecretValue", "app-b/missing", implicit}, // a denied caller cannot probe

		// secretsmanager:* with an explicit Deny, and a resource policy.
		{"app-b", "GetSecretValue", "app-b/db", allowed},
		{"app-b", "DescribeSecret", "app-b/db", allowed},
		{"app-b", "ListSecretVersionIds", "app-b/db", allowed},
		{"app-b", "GetResourcePolicy", "app-b/db", allowed},
		{"app-b", "PutSecretValue", "app-b/db", explicit},
		{"app-b", "GetSecretValue", "app-a/db", implicit},
		{"app-b", "GetSecretValue", "shared/cfg", allowed}, // by shared/cfg's resource policy
		{"app-b", "DescribeSecret", "shared/cfg", implicit},
		{"app-b", "GetSecretValue", "app-b/missing", notFound},

		// A resource tag condition.
		{"auditor", "GetSecretValue", "shared/cfg", allowed},
		{"auditor", "DescribeSecret", "shared/cfg", allowed},
		{"auditor", "PutSecretValue", "shared/cfg", implicit},
		{"auditor", "GetSecretValue", "app-a/db", implicit},
		{"auditor", "GetSecretValue", "app-b/db", implicit},

		// No policy at all.
		{"admin-less", "GetSecretValue", "app-a/db", implicit},
		{"admin-less", "DescribeSecret", "shared/cfg", implicit},
		{"admin-less", "GetSecretValue", "app-a/missing", implicit},

		// A version stage condition.
		{"current-only", "GetSecretValue", "app-a/db", allowed},
		{"current-only", "GetSecretValue(AWSPREVIOUS)", "app-a/db", implicit},
		{"current-only", "GetSecretValue", "app-b/db", implicit},

		// A source IP condition, on both sides.
		{"ip-loopback", "GetSecretValue", "app-a/db", allowed},
		{"ip-test-net", "GetSecretValue", "app-a/db", explicit},

		// ${aws:username} in a resource.
		{"tenant-x", "GetSecretValue", "tenant-x/key", allowed},
		{"tenant-x", "GetSecretValue", "tenant-y/key", implicit},
		{"tenant-y", "GetSecretValue", "tenant-y/key", allowed},
		{"tenant-y", "GetSecretValue", "tenant-x/key", implicit},
	}
	for _, tc := range cells {
		t.Run(tc.who+"/"+tc.op+"/"+tc.secret, func(t *testing.T) {
			a, op := actors[tc.who], matrixOps[tc.op]
			err := op.call(t.Context(), a.c, tc.secret)
			switch tc.want {
			case allowed:
				must(t, err)
			case notFound:
				wantCode(t, err, notFound)
			default:
				wantCode(t, err, "AccessDeniedException")
				resource := arns[tc.secret]
				if resource == "" {
					resource = secretARNPrefix + tc.secret // a missing secret: the name's ARN
				}
				if got, want := apiMessage(err), deniedMessage(a.arn, op.action, resource, tc.want == explicit); got != want {
					t.Errorf("message:\n got %q\nwant %q", got, want)
				}
			}
		})
	}

	t.Run("ListSecrets", func(t *testing.T) {
		for _, tc := range []struct {
			who  string
			want []string // nil: denied
		}{
			{"root", []string{"app-a/db", "app-b/db", "shared/cfg", "tenant-x/key", "tenant-y/key"}},
			{"app-a", []string{"app-a/db"}},
			{"app-b", []string{"app-b/db"}},
			{"admin-less", nil},
			{"auditor", nil},
		} {
			a := actors[tc.who]
			var names []string
			p := secretsmanager.NewListSecretsPaginator(a.c, &secretsmanager.ListSecretsInput{})
			var err error
			for p.HasMorePages() && err == nil {
				var out *secretsmanager.ListSecretsOutput
				if out, err = p.NextPage(ctx); err == nil {
					for _, s := range out.SecretList {
						names = append(names, aws.ToString(s.Name))
					}
				}
			}
			if tc.want == nil {
				wantCode(t, err, "AccessDeniedException")
				if got, want := apiMessage(err), deniedMessage(a.arn, "secretsmanager:ListSecrets", "*", false); got != want {
					t.Errorf("%s: message:\n got %q\nwant %q", tc.who, got, want)
				}
				continue
			}
			must(t, err)
			slices.Sort(names)
			if !slices.Equal(names, tc.want) {
				t.Errorf("%s: ListSecrets = %v, want %v", tc.who, names, tc.want)
			}
		}
	})

	t.Run("BatchGetSecretValue mixed", func(t *testing.T) {
		out, err := actors["app-a"].c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{
			SecretIdList: []string{"app-a/db", "app-b/db", "shared/cfg", "app-a/missing"},
		})
		must(t, err)
		var got []string
		for _, v := range out.SecretValues {
			got = append(got, aws.ToString(v.Name)+"="+aws.ToString(v.SecretString))
		}
		if want := []string{"app-a/db=second value of app-a/db"}; !slices.Equal(got, want) {
			t.Errorf("SecretValues = %v, want %v", got, want)
		}
		errs := map[string]string{}
		for _, e := range out.Errors {
			errs[aws.ToString(e.SecretId)] = aws.ToString(e.ErrorCode)
			if aws.ToString(e.ErrorCode) == "AccessDeniedException" && strings.Contains(aws.ToString(e.Message), "value of") {
				t.Errorf("error message for %s carries a value: %q", aws.ToString(e.SecretId), aws.ToString(e.Message))
			}
		}
		want := map[string]string{"app-b/db": "AccessDeniedException", "shared/cfg": "AccessDeniedException", "app-a/missing": notFound}
		if !maps.Equal(errs, want) {
			t.Errorf("Errors = %v, want %v", errs, want)
		}
	})

	t.Run("BatchGetSecretValue without the action", func(t *testing.T) {
		a := actors["app-b"] // secretsmanager:* on app-b/* does not cover Resource "*"
		_, err := a.c.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"app-b/db"}})
		wantCode(t, err, "AccessDeniedException")
		if got, want := apiMessage(err), deniedMessage(a.arn, "secretsmanager:BatchGetSecretValue", "*", false); got != want {
			t.Errorf("message:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("rotor.CreateUser needs rotor:CreateUser", func(t *testing.T) {
		a := actors["app-a"]
		r := callRotor(t, srv, &a.key, "rotor.CreateUser", map[string]string{"UserName": "made-by-app-a"})
		wantError(t, r, http.StatusBadRequest, "AccessDeniedException")
		if got, want := r.message(), deniedMessage(a.arn, "rotor:CreateUser", userARN("made-by-app-a"), false); got != want {
			t.Errorf("message:\n got %q\nwant %q", got, want)
		}
		admin := actors["user-admin"]
		rotorOK(t, srv, &admin.key, "rotor.CreateUser", map[string]string{"UserName": "made-by-user-admin"}, nil)
		// rotor:CreateUser is all it may do.
		r = callRotor(t, srv, &admin.key, "rotor.CreateAccessKey", map[string]string{"UserName": "made-by-user-admin"})
		wantError(t, r, http.StatusBadRequest, "AccessDeniedException")
		r = callRotor(t, srv, &admin.key, "rotor.AttachUserPolicy", map[string]string{"UserName": "user-admin", "PolicyArn": appB})
		wantError(t, r, http.StatusBadRequest, "AccessDeniedException")
	})

	t.Run("public resource policies", func(t *testing.T) {
		public := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
		b := actors["app-b"].c
		_, err := b.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{
			SecretId: aws.String("app-b/db"), ResourcePolicy: aws.String(public), BlockPublicPolicy: aws.Bool(true),
		})
		wantCode(t, err, "PublicPolicyException")
		v, err := b.ValidateResourcePolicy(ctx, &secretsmanager.ValidateResourcePolicyInput{SecretId: aws.String("app-b/db"), ResourcePolicy: aws.String(public)})
		must(t, err)
		if v.PolicyValidationPassed || len(v.ValidationErrors) == 0 || aws.ToString(v.ValidationErrors[0].ErrorMessage) == "" {
			t.Errorf("ValidateResourcePolicy of a public policy: passed %v, findings %+v; want findings", v.PolicyValidationPassed, v.ValidationErrors)
		}
		a := actors["app-a"]
		_, err = a.c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{
			SecretId: aws.String("app-a/db"), ResourcePolicy: aws.String(public), BlockPublicPolicy: aws.Bool(true),
		})
		wantCode(t, err, "AccessDeniedException")
		if got, want := apiMessage(err), deniedMessage(a.arn, "secretsmanager:PutResourcePolicy", arns["app-a/db"], false); got != want {
			t.Errorf("message:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("SubscribeLabelChanges per secret", func(t *testing.T) {
		watcherKey := newUser(t, srv, "watcher-a", newPolicy(t, srv, "watch-app-a", policyDoc(
			`{"Effect":"Allow","Action":"rotor:SubscribeLabelChanges","Resource":"`+secretARNPrefix+`app-a/*"}`)))
		denied := actors["admin-less"].key
		r := callRotor(t, srv, &denied, "rotor.SubscribeLabelChanges", map[string]any{})
		wantError(t, r, http.StatusBadRequest, "AccessDeniedException")

		// Naming a secret the watcher may not watch is refused outright.
		r = callRotor(t, srv, &watcherKey, "rotor.SubscribeLabelChanges", map[string]any{"SecretIds": []string{"app-a/db", "app-b/db"}})
		wantError(t, r, http.StatusBadRequest, "AccessDeniedException")
		if got, want := r.message(), deniedMessage(userARN("watcher-a"), "rotor:SubscribeLabelChanges", arns["app-b/db"], false); got != want {
			t.Errorf("message:\n got %q\nwant %q", got, want)
		}

		all := subscribe(t, srv, watcherKey, map[string]any{})
		named := subscribe(t, srv, watcherKey, map[string]any{"SecretIds": []string{"app-a/db"}})
		rootAll := subscribe(t, srv, *rootKey(), map[string]any{})
		putString(t, root, "app-b/db", "a change app-a's watcher may not see")
		put := putString(t, root, "app-a/db", "a change app-a's watcher may see")
		// The app-a change comes after the app-b one: once it is seen,
		// an app-b change would have been seen before it.
		for _, tc := range []struct {
			desc string
			s    *labelStream
			want []string // secret names of the events before app-a's AWSCURRENT
		}{
			{"watcher, all", all, nil},
			{"watcher, naming app-a/db", named, nil},
			{"root, all", rootAll, []string{"app-b/db"}},
		} {
			names := tc.s.until(t, func(e labelStreamEvent) bool {
				return e.Name == "app-a/db" && e.VersionStage == "AWSCURRENT" && e.VersionId == aws.ToString(put.VersionId)
			})
			var before []string
			for _, e := range names {
				if e.Name != "app-a/db" && !slices.Contains(before, e.Name) {
					before = append(before, e.Name)
				}
			}
			if !slices.Equal(before, tc.want) {
				t.Errorf("%s: changes of %v came first, want %v", tc.desc, before, tc.want)
			}
		}
	})

	t.Run("CreateSecret under a prefix", func(t *testing.T) {
		a := actors["app-b"]
		_, err := a.c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app-b/new"), SecretString: aws.String("v")})
		must(t, err)
		_, err = a.c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app-a/new"), SecretString: aws.String("v")})
		wantCode(t, err, "AccessDeniedException")
		// The resource is the ARN the secret would have had.
		pattern := regexp.MustCompile(`^` + regexp.QuoteMeta("User: "+a.arn+" is not authorized to perform: secretsmanager:CreateSecret on resource: "+secretARNPrefix+"app-a/new-") +
			`[A-Za-z0-9]{6} ` + regexp.QuoteMeta(reasonImplicitPrefix+"secretsmanager:CreateSecret action") + `$`)
		if got := apiMessage(err); !pattern.MatchString(got) {
			t.Errorf("message %q does not match %s", got, pattern)
		}
		if _, err := root.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app-a/new")}); apiCode(err) != notFound {
			t.Errorf("a denied CreateSecret created the secret (DescribeSecret: %v)", err)
		}
	})
}

// TestAccessKeyLifecycle changes a user's key and policies and checks that
// each change applies to the very next request.
func TestAccessKeyLifecycle(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)
	ctx := t.Context()
	name := uniqueName(t)
	createString(t, client(t, srv), name, "lifecycle value")
	user := uniqueUser("lifecycle")
	pol := newPolicy(t, srv, uniqueUser("lifecycle-read"), policyDoc(
		`{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+secretARNPrefix+name+`-??????"}`,
	))
	key := newUser(t, srv, user, pol)
	c := keyClient(srv, key)
	get := func() error {
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		return err
	}
	setStatus := func(status string) {
		t.Helper()
		rotorOK(t, srv, rootKey(), "rotor.UpdateAccessKey", map[string]string{"UserName": user, "AccessKeyId": key.AccessKeyID, "Status": status}, nil)
	}

	must(t, get())
	setStatus("Inactive")
	wantCode(t, get(), "UnrecognizedClientException")
	setStatus("Active")
	must(t, get())

	rotorOK(t, srv, rootKey(), "rotor.DetachUserPolicy", map[string]string{"UserName": user, "PolicyArn": pol}, nil)
	wantCode(t, get(), "AccessDeniedException")
	attachPolicy(t, srv, user, pol)
	must(t, get())

	// A user's key may not change its own status without a policy that
	// allows it.
	r := callRotor(t, srv, &key, "rotor.UpdateAccessKey", map[string]string{"UserName": user, "AccessKeyId": key.AccessKeyID, "Status": "Inactive"})
	wantError(t, r, http.StatusBadRequest, "AccessDeniedException")

	rotorOK(t, srv, rootKey(), "rotor.DeleteAccessKey", map[string]string{"UserName": user, "AccessKeyId": key.AccessKeyID}, nil)
	wantCode(t, get(), "UnrecognizedClientException")

	// Deleting the user ends its other keys at once.
	second := newAccessKey(t, srv, user)
	c = keyClient(srv, second)
	must(t, get())
	rotorOK(t, srv, rootKey(), "rotor.DeleteUser", map[string]string{"UserName": user}, nil)
	wantCode(t, get(), "UnrecognizedClientException")
}

// TestAuthorizationAWSCLI drives the AWS CLI with a limited user's key,
// given only through the environment.
func TestAuthorizationAWSCLI(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)
	root := client(t, srv)
	mine, theirs := uniqueName(t), uniqueName(t)
	createString(t, root, mine, "readable by the CLI user")
	createString(t, root, theirs, "not readable by the CLI user")
	user := uniqueUser("cli")
	key := newUser(t, srv, user, newPolicy(t, srv, uniqueUser("cli-read"), policyDoc(
		`{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"`+secretARNPrefix+mine+`-??????"}`,
	)))

	awsBin.once.Do(func() { awsBin.path, awsBin.err = findAWS() })
	if awsBin.err != nil {
		t.Fatalf("the AWS CLI (aws) is not on PATH (%v): `make test` installs it (scripts/test-deps.sh), or apt-get install awscli", awsBin.err)
	}
	env := append(cleanEnv("AWS_", "HOME="),
		"HOME="+t.TempDir(),
		"AWS_ACCESS_KEY_ID="+key.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+key.SecretAccessKey,
		"AWS_DEFAULT_REGION="+region,
		"AWS_CONFIG_FILE=/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
	)
	run := func(id string) (stdout, stderr string, code int) {
		cmd := exec.CommandContext(t.Context(), awsBin.path, "secretsmanager", "get-secret-value",
			"--endpoint-url", srv.endpoint(), "--secret-id", id, "--query", "SecretString", "--output", "text")
		cmd.Env = env
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("aws: %v", err)
		}
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}

	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		out, errb, code := run(mine)
		if code != 0 || strings.TrimSpace(out) != "readable by the CLI user" {
			t.Errorf("get-secret-value %s: exit %d, stdout %q, stderr %q", mine, code, out, errb)
		}
	})
	t.Run("denied", func(t *testing.T) {
		t.Parallel()
		out, errb, code := run(theirs)
		if code == 0 || !strings.Contains(errb, "AccessDeniedException") || strings.Contains(out+errb, "not readable") {
			t.Errorf("get-secret-value %s: exit %d, stdout %q, stderr %q; want a failure naming AccessDeniedException", theirs, code, out, errb)
		}
		if !strings.Contains(errb, "User: "+userARN(user)+" is not authorized to perform: secretsmanager:GetSecretValue") {
			t.Errorf("stderr %q does not carry AWS's denial message", errb)
		}
	})
}

// labelStreamEvent is the data of a "label" event of
// rotor.SubscribeLabelChanges.
type labelStreamEvent struct {
	ARN, Name, VersionStage, VersionId, RemovedFromVersionId string
}

// labelStream is an open rotor.SubscribeLabelChanges subscription.
type labelStream struct {
	events chan labelStreamEvent
}

// subscribe opens a subscription signed with key and returns once it is
// ready; it ends with the test.
func subscribe(t *testing.T, srv *server, key aws.Credentials, body any) *labelStream {
	t.Helper()
	b, err := json.Marshal(body)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	req := rawRequest{target: "rotor.SubscribeLabelChanges", body: b, key: &key}.build(t, srv)
	req = req.WithContext(ctx)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("rotor.SubscribeLabelChanges: %s %s", resp.Status, msg)
	}
	s := &labelStream{events: make(chan labelStreamEvent, 1000)}
	ready := make(chan struct{})
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "ready":
				close(ready)
			case strings.HasPrefix(line, "data: ") && event == "label":
				var e labelStreamEvent
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e) == nil {
					s.events <- e
				}
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(httpTimeout):
		t.Fatal("rotor.SubscribeLabelChanges: no ready event")
	}
	return s
}

// until returns the events up to and including the first that stop
// accepts.
func (s *labelStream) until(t *testing.T, stop func(labelStreamEvent) bool) []labelStreamEvent {
	t.Helper()
	var out []labelStreamEvent
	timeout := time.After(httpTimeout)
	for {
		select {
		case e, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended after %+v", out)
			}
			out = append(out, e)
			if stop(e) {
				return out
			}
		case <-timeout:
			t.Fatalf("no awaited event within %v; got %+v", httpTimeout, out)
		}
	}
}

// TestLabelStreamRevocation: a rotor.SubscribeLabelChanges stream opened
// by a user stops carrying changes once the user may no longer watch them
// (policy detached, key deleted): the stream ends or stays silent.
func TestLabelStreamRevocation(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)
	root := client(t, srv)
	name := uniqueName(t)
	createString(t, root, name, "v1")
	pol := newPolicy(t, srv, uniqueUser("watch"), policyDoc(
		`{"Effect":"Allow","Action":"rotor:SubscribeLabelChanges","Resource":"`+secretARNPrefix+name+`-??????"}`))
	for _, revoke := range []string{"DetachUserPolicy", "DeleteAccessKey", "DeleteUser"} {
		t.Run(revoke, func(t *testing.T) {
			user := uniqueUser("watcher")
			key := newUser(t, srv, user, pol)
			watcher := subscribe(t, srv, key, map[string]any{"SecretIds": []string{name}})
			witness := subscribe(t, srv, *rootKey(), map[string]any{"SecretIds": []string{name}})
			before := putString(t, root, name, "seen by the watcher")
			isCurrent := func(v *string) func(labelStreamEvent) bool {
				return func(e labelStreamEvent) bool { return e.VersionStage == "AWSCURRENT" && e.VersionId == aws.ToString(v) }
			}
			watcher.until(t, isCurrent(before.VersionId))

			switch revoke {
			case "DetachUserPolicy":
				rotorOK(t, srv, rootKey(), "rotor.DetachUserPolicy", map[string]string{"UserName": user, "PolicyArn": pol}, nil)
			case "DeleteAccessKey":
				rotorOK(t, srv, rootKey(), "rotor.DeleteAccessKey", map[string]string{"UserName": user, "AccessKeyId": key.AccessKeyID}, nil)
			case "DeleteUser":
				rotorOK(t, srv, rootKey(), "rotor.DeleteUser", map[string]string{"UserName": user}, nil)
			}
			after := putString(t, root, name, "not for the watcher any more")
			witness.until(t, isCurrent(after.VersionId))
			// The witness has it: the watcher would have it within moments.
			timeout := time.After(2 * time.Second)
			for {
				select {
				case e, ok := <-watcher.events:
					if !ok {
						return // the stream ended: fine
					}
					if e.VersionId == aws.ToString(after.VersionId) {
						t.Fatalf("after %s the open stream still delivered %+v", revoke, e)
					}
				case <-timeout:
					return
				}
			}
		})
	}
}
