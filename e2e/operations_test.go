package e2e

// Every Secrets Manager operation Rotor serves, driven through
// aws-sdk-go-v2 against the shared server, with AWS's results and error
// codes. Each test uses its own secret names, so all run in parallel.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

const (
	maxValueLen = 65536
	// A version id that no test ever creates.
	unknownVersionID = "00000000-0000-4000-8000-00000000dead"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// arnPattern matches the ARN AWS gives a secret called name.
func arnPattern(name string) *regexp.Regexp {
	return regexp.MustCompile(`^arn:aws:secretsmanager:` + region + `:` + accountID + `:secret:` + regexp.QuoteMeta(name) + `-[A-Za-z0-9]{6}$`)
}

// token returns a ClientRequestToken (a UUID) unique to this run.
func token(t testing.TB) string {
	n := nameSeq.Add(1)
	return fmt.Sprintf("%08x-e2e0-4000-8000-%012x", time.Now().UnixNano()&0xffffffff, n)
}

func createString(t testing.TB, c *secretsmanager.Client, name, value string) *secretsmanager.CreateSecretOutput {
	t.Helper()
	out, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
	return out
}

func putString(t testing.TB, c *secretsmanager.Client, id, value string) *secretsmanager.PutSecretValueOutput {
	t.Helper()
	out, err := c.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(value)})
	if err != nil {
		t.Fatalf("PutSecretValue %s: %v", id, err)
	}
	return out
}

func describe(t testing.TB, c *secretsmanager.Client, id string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	out, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("DescribeSecret %s: %v", id, err)
	}
	return out
}

// getString reads the AWSCURRENT string value of id.
func getString(t testing.TB, c *secretsmanager.Client, id string) string {
	t.Helper()
	out, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetSecretValue %s: %v", id, err)
	}
	return aws.ToString(out.SecretString)
}

// wantStages fails t unless id's VersionIdsToStages is want.
func wantStages(t testing.TB, c *secretsmanager.Client, id string, want map[string][]string) {
	t.Helper()
	got := describe(t, c, id).VersionIdsToStages
	if !sameStages(got, want) {
		t.Errorf("VersionIdsToStages = %v, want %v", got, want)
	}
}

// sameStages compares version → labels maps, ignoring label order.
func sameStages(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for id, la := range a {
		lb, ok := b[id]
		if !ok || !sameSet(la, lb) {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// wantTime fails t unless got is set and within [from-slack, to+slack].
func wantTime(t testing.TB, field string, got *time.Time, from, to time.Time) {
	t.Helper()
	const slack = 2 * time.Second
	switch {
	case got == nil:
		t.Errorf("%s is not set", field)
	case got.Before(from.Add(-slack)) || got.After(to.Add(slack)):
		t.Errorf("%s = %v, want between %v and %v", field, got.UTC(), from.UTC(), to.UTC())
	}
}

func midnightUTC(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func TestCreateSecret(t *testing.T) {
	t.Parallel()
	srv := sharedServer(t)
	c := client(t, srv)

	t.Run("string with description and tags", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		out, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
			Name:         aws.String(name),
			Description:  aws.String("the app's database"),
			SecretString: aws.String(`{"username":"app","password":"pw"}`),
			Tags:         []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("team"), Value: aws.String("")}},
		})
		must(t, err)
		if !arnPattern(name).MatchString(aws.ToString(out.ARN)) {
			t.Errorf("ARN = %q, want %v", aws.ToString(out.ARN), arnPattern(name))
		}
		if got := aws.ToString(out.Name); got != name {
			t.Errorf("Name = %q, want %q", got, name)
		}
		vid := aws.ToString(out.VersionId)
		if !uuidPattern.MatchString(vid) {
			t.Errorf("VersionId = %q, want a UUID", vid)
		}
		if got := getString(t, c, name); got != `{"username":"app","password":"pw"}` {
			t.Errorf("value = %q", got)
		}
		d := describe(t, c, aws.ToString(out.ARN))
		if got := aws.ToString(d.Description); got != "the app's database" {
			t.Errorf("Description = %q", got)
		}
		if got := tagMap(d.Tags); !maps.Equal(got, map[string]string{"env": "prod", "team": ""}) {
			t.Errorf("Tags = %v", got)
		}
		if !sameStages(d.VersionIdsToStages, map[string][]string{vid: {"AWSCURRENT"}}) {
			t.Errorf("VersionIdsToStages = %v", d.VersionIdsToStages)
		}
	})

	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		value := []byte{0, 1, 2, 0xfe, 0xff, '"', '\\', '\n', 0x80}
		out, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretBinary: value})
		must(t, err)
		got, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: out.ARN})
		must(t, err)
		if !bytes.Equal(got.SecretBinary, value) || got.SecretString != nil {
			t.Errorf("got SecretBinary %x, SecretString %v; want %x and no string", got.SecretBinary, got.SecretString, value)
		}
	})

	t.Run("no value", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		out, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name)})
		must(t, err)
		if out.VersionId != nil {
			t.Errorf("VersionId = %q, want none", *out.VersionId)
		}
		_, err = c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		wantCode(t, err, "ResourceNotFoundException")
		if d := describe(t, c, name); len(d.VersionIdsToStages) != 0 {
			t.Errorf("VersionIdsToStages = %v, want none", d.VersionIdsToStages)
		}
		v, err := c.ListSecretVersionIds(t.Context(), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name), IncludeDeprecated: aws.Bool(true)})
		must(t, err)
		if len(v.Versions) != 0 {
			t.Errorf("Versions = %v, want none", v.Versions)
		}
	})

	t.Run("duplicate name", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		createString(t, c, name, "one")
		_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("one")})
		wantCode(t, err, "ResourceExistsException")
		_, err = c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name)})
		wantCode(t, err, "ResourceExistsException")
	})

	t.Run("same token and value is idempotent", func(t *testing.T) {
		t.Parallel()
		name, tok := uniqueName(t), token(t)
		in := &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("v")}
		first, err := c.CreateSecret(t.Context(), in)
		must(t, err)
		again, err := c.CreateSecret(t.Context(), in)
		must(t, err)
		if aws.ToString(again.ARN) != aws.ToString(first.ARN) || aws.ToString(again.VersionId) != tok || aws.ToString(first.VersionId) != tok {
			t.Errorf("retry gave ARN %q version %q; first ARN %q version %q; want both version %q",
				aws.ToString(again.ARN), aws.ToString(again.VersionId), aws.ToString(first.ARN), aws.ToString(first.VersionId), tok)
		}
		wantStages(t, c, name, map[string][]string{tok: {"AWSCURRENT"}})
	})

	t.Run("same token other value", func(t *testing.T) {
		t.Parallel()
		name, tok := uniqueName(t), token(t)
		_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("v1")})
		must(t, err)
		_, err = c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("v2")})
		wantCode(t, err, "ResourceExistsException")
		if got := getString(t, c, name); got != "v1" {
			t.Errorf("value = %q, want v1", got)
		}
	})

	t.Run("sdk generated token becomes the version id", func(t *testing.T) {
		t.Parallel()
		rec := &recordingTokens{}
		c := clientWithKey(srv, testAccessKeyID, testSecretAccessKey, func(o *secretsmanager.Options) { o.IdempotencyTokenProvider = rec })
		name := uniqueName(t)
		out, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("x")})
		must(t, err)
		toks := rec.tokens()
		if len(toks) != 1 || aws.ToString(out.VersionId) != toks[0] {
			t.Errorf("VersionId = %q, SDK generated %q", aws.ToString(out.VersionId), toks)
		}
	})

	t.Run("invalid names", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ name, code string }{
			{"has space", "InvalidParameterException"},
			{"star*", "InvalidParameterException"},
			{"semi;colon", "InvalidParameterException"},
			{"caf\u00e9", "InvalidParameterException"},
			{"back\\slash", "InvalidParameterException"},
			{strings.Repeat("n", 513), "ValidationException"},
		} {
			_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(tc.name), SecretString: aws.String("v")})
			if got := apiCode(err); got != tc.code {
				t.Errorf("CreateSecret(Name %.20q…): error code %q, want %q", tc.name, got, tc.code)
			}
		}
		long := namePrefix(t) + "/" + strings.Repeat("n", 512-len(namePrefix(t))-1)
		_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(long)})
		must(t, err)
	})

	t.Run("value size limit", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			desc string
			in   secretsmanager.CreateSecretInput
			code string
		}{
			{"string 65536", secretsmanager.CreateSecretInput{SecretString: aws.String(strings.Repeat("s", maxValueLen))}, ""},
			{"binary 65536", secretsmanager.CreateSecretInput{SecretBinary: bytes.Repeat([]byte{0xab}, maxValueLen)}, ""},
			{"string 65537", secretsmanager.CreateSecretInput{SecretString: aws.String(strings.Repeat("s", maxValueLen+1))}, "ValidationException"},
			{"binary 65537", secretsmanager.CreateSecretInput{SecretBinary: bytes.Repeat([]byte{0xab}, maxValueLen+1)}, "ValidationException"},
			{"both string and binary", secretsmanager.CreateSecretInput{SecretString: aws.String("s"), SecretBinary: []byte("b")}, "InvalidParameterException"},
		} {
			in := tc.in
			in.Name = aws.String(uniqueName(t))
			_, err := c.CreateSecret(t.Context(), &in)
			if got := apiCode(err); got != tc.code {
				t.Errorf("%s: error code %q, want %q", tc.desc, got, tc.code)
			}
			if tc.code != "" {
				_, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: in.Name})
				if got := apiCode(err); got != "ResourceNotFoundException" {
					t.Errorf("%s: the refused CreateSecret left a secret behind (DescribeSecret: %v)", tc.desc, err)
				}
			}
		}
	})
}

// recordingTokens is an IdempotencyTokenProvider that remembers what it
// handed out.
type recordingTokens struct {
	mu   sync.Mutex
	toks []string
}

func (r *recordingTokens) GetIdempotencyToken() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tok := fmt.Sprintf("6e2e0000-0000-4000-8000-%012d", int64(len(r.toks))+nameSeq.Add(1))
	r.toks = append(r.toks, tok)
	return tok, nil
}

func (r *recordingTokens) tokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.toks)
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestGetSecretValue(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	ctx := t.Context()

	name := uniqueName(t)
	tok1, tok2 := token(t), token(t)
	before := time.Now()
	created, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(tok1), SecretString: aws.String("first")})
	must(t, err)
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok2), SecretString: aws.String("second")})
	must(t, err)
	after := time.Now()
	fullARN := aws.ToString(created.ARN)
	partialARN := fullARN[:len(fullARN)-7] // without "-XXXXXX"

	tests := []struct {
		desc              string
		id, version, stag string
		want              string   // value, when no error
		wantStages        []string // of the returned version
		code              string
	}{
		{desc: "by name", id: name, want: "second", wantStages: []string{"AWSCURRENT"}},
		{desc: "by full ARN", id: fullARN, want: "second", wantStages: []string{"AWSCURRENT"}},
		{desc: "by partial ARN", id: partialARN, want: "second", wantStages: []string{"AWSCURRENT"}},
		{desc: "by VersionId", id: name, version: tok1, want: "first", wantStages: []string{"AWSPREVIOUS"}},
		{desc: "by VersionStage", id: name, stag: "AWSPREVIOUS", want: "first", wantStages: []string{"AWSPREVIOUS"}},
		{desc: "AWSCURRENT explicitly", id: fullARN, stag: "AWSCURRENT", want: "second", wantStages: []string{"AWSCURRENT"}},
		{desc: "VersionId and matching VersionStage", id: name, version: tok2, stag: "AWSCURRENT", want: "second", wantStages: []string{"AWSCURRENT"}},
		{desc: "VersionId and mismatching VersionStage", id: name, version: tok1, stag: "AWSCURRENT", code: "InvalidRequestException"},
		{desc: "unknown VersionId", id: name, version: unknownVersionID, code: "ResourceNotFoundException"},
		{desc: "unknown VersionStage", id: name, stag: "NOSUCHLABEL", code: "ResourceNotFoundException"},
		{desc: "unknown name", id: name + "/nope", code: "ResourceNotFoundException"},
		{desc: "full ARN with another suffix", id: partialARN + "-AAAAAA", code: "ResourceNotFoundException"},
		{desc: "ARN in another region", id: strings.Replace(fullARN, region, "eu-west-1", 1), code: "ResourceNotFoundException"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(tc.id)}
			if tc.version != "" {
				in.VersionId = aws.String(tc.version)
			}
			if tc.stag != "" {
				in.VersionStage = aws.String(tc.stag)
			}
			out, err := c.GetSecretValue(t.Context(), in)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				return
			}
			must(t, err)
			if got := aws.ToString(out.SecretString); got != tc.want {
				t.Errorf("SecretString = %q, want %q", got, tc.want)
			}
			if aws.ToString(out.ARN) != fullARN || aws.ToString(out.Name) != name {
				t.Errorf("ARN, Name = %q, %q; want %q, %q", aws.ToString(out.ARN), aws.ToString(out.Name), fullARN, name)
			}
			if !sameSet(out.VersionStages, tc.wantStages) {
				t.Errorf("VersionStages = %v, want %v", out.VersionStages, tc.wantStages)
			}
			wantVersion := tok2
			if tc.want == "first" {
				wantVersion = tok1
			}
			if got := aws.ToString(out.VersionId); got != wantVersion {
				t.Errorf("VersionId = %q, want %q", got, wantVersion)
			}
			wantTime(t, "CreatedDate", out.CreatedDate, before, after)
		})
	}

	t.Run("scheduled for deletion", func(t *testing.T) {
		name := uniqueName(t)
		createString(t, c, name, "v")
		_, err := c.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
		must(t, err)
		_, err = c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		wantCode(t, err, "InvalidRequestException")
	})
}

func TestBatchGetSecretValue(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))

	t.Run("ids with a missing one", func(t *testing.T) {
		t.Parallel()
		a, b := uniqueName(t), uniqueName(t)
		createString(t, c, a, "value-a")
		bOut, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(b), SecretBinary: []byte{0, 1, 2}})
		must(t, err)
		missing := uniqueName(t)
		out, err := c.BatchGetSecretValue(t.Context(), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{a, missing, aws.ToString(bOut.ARN)}})
		must(t, err)
		got := map[string]types.SecretValueEntry{}
		for _, v := range out.SecretValues {
			got[aws.ToString(v.Name)] = v
		}
		if len(out.SecretValues) != 2 || aws.ToString(got[a].SecretString) != "value-a" || !bytes.Equal(got[b].SecretBinary, []byte{0, 1, 2}) {
			t.Errorf("SecretValues = %+v", out.SecretValues)
		}
		if v := got[a]; !sameSet(v.VersionStages, []string{"AWSCURRENT"}) || v.VersionId == nil || v.CreatedDate == nil || !arnPattern(a).MatchString(aws.ToString(v.ARN)) {
			t.Errorf("entry for %s = %+v; want ARN, VersionId, VersionStages [AWSCURRENT], CreatedDate", a, v)
		}
		if len(out.Errors) != 1 {
			t.Fatalf("Errors = %+v, want one", out.Errors)
		}
		e := out.Errors[0]
		if aws.ToString(e.SecretId) != missing || aws.ToString(e.ErrorCode) != "ResourceNotFoundException" || aws.ToString(e.Message) == "" {
			t.Errorf("Errors[0] = {SecretId %q ErrorCode %q Message %q}, want %q ResourceNotFoundException with a message",
				aws.ToString(e.SecretId), aws.ToString(e.ErrorCode), aws.ToString(e.Message), missing)
		}
	})

	t.Run("filters with pagination", func(t *testing.T) {
		t.Parallel()
		prefix := namePrefix(t) + "/"
		want := map[string]string{}
		for i := range 5 {
			name := prefix + fmt.Sprint(i)
			want[name] = "value-" + fmt.Sprint(i)
			createString(t, c, name, want[name])
		}
		p := secretsmanager.NewBatchGetSecretValuePaginator(c, &secretsmanager.BatchGetSecretValueInput{
			Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{prefix}}},
			MaxResults: aws.Int32(2),
		})
		got := map[string]string{}
		pages := 0
		for p.HasMorePages() {
			page, err := p.NextPage(t.Context())
			must(t, err)
			pages++
			if len(page.SecretValues) > 2 {
				t.Errorf("page %d has %d values, MaxResults is 2", pages, len(page.SecretValues))
			}
			if len(page.Errors) != 0 {
				t.Errorf("page %d: Errors %+v", pages, page.Errors)
			}
			for _, v := range page.SecretValues {
				if _, dup := got[aws.ToString(v.Name)]; dup {
					t.Errorf("%s returned twice", aws.ToString(v.Name))
				}
				got[aws.ToString(v.Name)] = aws.ToString(v.SecretString)
			}
			if pages > 10 {
				t.Fatal("more than 10 pages for 5 secrets")
			}
		}
		if !maps.Equal(got, want) || pages < 3 {
			t.Errorf("got %v in %d pages, want %v in at least 3", got, pages, want)
		}
	})

	t.Run("ids and filters together", func(t *testing.T) {
		t.Parallel()
		_, err := c.BatchGetSecretValue(t.Context(), &secretsmanager.BatchGetSecretValueInput{
			SecretIdList: []string{uniqueName(t)},
			Filters:      []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"x"}}},
		})
		wantCode(t, err, "InvalidParameterException")
	})
}

func TestPutSecretValue(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))

	t.Run("labels move", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		name := uniqueName(t)
		v1 := aws.ToString(createString(t, c, name, "v1").VersionId)
		out2 := putString(t, c, name, "v2")
		v2 := aws.ToString(out2.VersionId)
		if !uuidPattern.MatchString(v2) || !sameSet(out2.VersionStages, []string{"AWSCURRENT"}) || aws.ToString(out2.Name) != name || !arnPattern(name).MatchString(aws.ToString(out2.ARN)) {
			t.Errorf("PutSecretValue = {ARN %q Name %q VersionId %q VersionStages %v}", aws.ToString(out2.ARN), aws.ToString(out2.Name), v2, out2.VersionStages)
		}
		wantStages(t, c, name, map[string][]string{v2: {"AWSCURRENT"}, v1: {"AWSPREVIOUS"}})
		v3 := aws.ToString(putString(t, c, name, "v3").VersionId)
		wantStages(t, c, name, map[string][]string{v3: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}})
		if got := getString(t, c, name); got != "v3" {
			t.Errorf("AWSCURRENT value = %q, want v3", got)
		}

		// AWSPENDING alone leaves AWSCURRENT where it is.
		pending, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(name), SecretString: aws.String("v4"), VersionStages: []string{"AWSPENDING"},
		})
		must(t, err)
		v4 := aws.ToString(pending.VersionId)
		if !sameSet(pending.VersionStages, []string{"AWSPENDING"}) {
			t.Errorf("VersionStages = %v, want [AWSPENDING]", pending.VersionStages)
		}
		wantStages(t, c, name, map[string][]string{v3: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}, v4: {"AWSPENDING"}})
		if got := getString(t, c, name); got != "v3" {
			t.Errorf("AWSCURRENT value = %q, want v3", got)
		}
		p, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("AWSPENDING")})
		must(t, err)
		if aws.ToString(p.SecretString) != "v4" || aws.ToString(p.VersionId) != v4 {
			t.Errorf("AWSPENDING = %q (%s), want v4 (%s)", aws.ToString(p.SecretString), aws.ToString(p.VersionId), v4)
		}

		// Explicit AWSCURRENT plus a custom label.
		out5, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(name), SecretString: aws.String("v5"), VersionStages: []string{"AWSCURRENT", "blue"},
		})
		must(t, err)
		v5 := aws.ToString(out5.VersionId)
		d := describe(t, c, name)
		if !sameSet(d.VersionIdsToStages[v5], []string{"AWSCURRENT", "blue"}) || !sameSet(d.VersionIdsToStages[v3], []string{"AWSPREVIOUS"}) {
			t.Errorf("VersionIdsToStages = %v; want %s: [AWSCURRENT blue], %s: [AWSPREVIOUS]", d.VersionIdsToStages, v5, v3)
		}
	})

	t.Run("first version is AWSCURRENT whatever the stages", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name)})
		must(t, err)
		out, err := c.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(name), SecretString: aws.String("v"), VersionStages: []string{"AWSPENDING"},
		})
		must(t, err)
		if got := getString(t, c, name); got != "v" {
			t.Errorf("AWSCURRENT value = %q, want v", got)
		}
		wantStages(t, c, name, map[string][]string{aws.ToString(out.VersionId): {"AWSCURRENT", "AWSPENDING"}})
	})

	t.Run("token idempotency", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		name, tok := uniqueName(t), token(t)
		createString(t, c, name, "v1")
		in := &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("v2")}
		first, err := c.PutSecretValue(ctx, in)
		must(t, err)
		again, err := c.PutSecretValue(ctx, in)
		must(t, err)
		if aws.ToString(first.VersionId) != tok || aws.ToString(again.VersionId) != tok {
			t.Errorf("VersionIds %q, %q; want the token %q", aws.ToString(first.VersionId), aws.ToString(again.VersionId), tok)
		}
		_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("other")})
		wantCode(t, err, "ResourceExistsException")
		_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretBinary: []byte("v2")})
		wantCode(t, err, "ResourceExistsException")
		vers, err := c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name), IncludeDeprecated: aws.Bool(true)})
		must(t, err)
		if len(vers.Versions) != 2 {
			t.Errorf("%d versions after retries, want 2", len(vers.Versions))
		}
		if got := getString(t, c, name); got != "v2" {
			t.Errorf("AWSCURRENT value = %q, want v2", got)
		}
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		createString(t, c, name, "v1")
		for _, tc := range []struct {
			desc string
			in   secretsmanager.PutSecretValueInput
			code string
		}{
			{"unknown secret", secretsmanager.PutSecretValueInput{SecretId: aws.String(name + "/nope"), SecretString: aws.String("v")}, "ResourceNotFoundException"},
			{"value too large", secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(strings.Repeat("x", maxValueLen+1))}, "ValidationException"},
			{"both values", secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("v"), SecretBinary: []byte("v")}, "InvalidParameterException"},
			{"token too short", secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("v"), ClientRequestToken: aws.String("short")}, "ValidationException"},
		} {
			_, err := c.PutSecretValue(t.Context(), &tc.in)
			if got := apiCode(err); got != tc.code {
				t.Errorf("%s: error code %q, want %q (%v)", tc.desc, got, tc.code, err)
			}
		}
		if got := getString(t, c, name); got != "v1" {
			t.Errorf("value after refused writes = %q, want v1", got)
		}
	})
}

func TestUpdateSecret(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))

	t.Run("description only creates no version", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		v1 := aws.ToString(createString(t, c, name, "v1").VersionId)
		created := describe(t, c, name)
		before := time.Now()
		out, err := c.UpdateSecret(t.Context(), &secretsmanager.UpdateSecretInput{SecretId: aws.String(name), Description: aws.String("new description")})
		must(t, err)
		if out.VersionId != nil {
			t.Errorf("VersionId = %q, want none", *out.VersionId)
		}
		if aws.ToString(out.Name) != name || aws.ToString(out.ARN) != aws.ToString(created.ARN) {
			t.Errorf("ARN, Name = %q, %q", aws.ToString(out.ARN), aws.ToString(out.Name))
		}
		d := describe(t, c, name)
		if got := aws.ToString(d.Description); got != "new description" {
			t.Errorf("Description = %q", got)
		}
		if !sameStages(d.VersionIdsToStages, map[string][]string{v1: {"AWSCURRENT"}}) {
			t.Errorf("VersionIdsToStages = %v", d.VersionIdsToStages)
		}
		wantTime(t, "LastChangedDate", d.LastChangedDate, before, time.Now())
	})

	t.Run("value creates a version", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		v1 := aws.ToString(createString(t, c, name, "v1").VersionId)
		out, err := c.UpdateSecret(t.Context(), &secretsmanager.UpdateSecretInput{SecretId: aws.String(name), SecretString: aws.String("v2"), Description: aws.String("d")})
		must(t, err)
		v2 := aws.ToString(out.VersionId)
		if !uuidPattern.MatchString(v2) {
			t.Fatalf("VersionId = %q, want a UUID", v2)
		}
		wantStages(t, c, name, map[string][]string{v2: {"AWSCURRENT"}, v1: {"AWSPREVIOUS"}})
		if got := getString(t, c, name); got != "v2" {
			t.Errorf("value = %q, want v2", got)
		}
		out3, err := c.UpdateSecret(t.Context(), &secretsmanager.UpdateSecretInput{SecretId: aws.String(name), SecretBinary: []byte{9, 9}})
		must(t, err)
		got, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		must(t, err)
		if !bytes.Equal(got.SecretBinary, []byte{9, 9}) || aws.ToString(got.VersionId) != aws.ToString(out3.VersionId) {
			t.Errorf("after binary update: %x (%s)", got.SecretBinary, aws.ToString(got.VersionId))
		}
	})

	t.Run("token of an existing version with another value", func(t *testing.T) {
		t.Parallel()
		name, tok := uniqueName(t), token(t)
		_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("v1")})
		must(t, err)
		_, err = c.UpdateSecret(t.Context(), &secretsmanager.UpdateSecretInput{SecretId: aws.String(name), ClientRequestToken: aws.String(tok), SecretString: aws.String("v2")})
		wantCode(t, err, "ResourceExistsException")
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		_, err := c.UpdateSecret(t.Context(), &secretsmanager.UpdateSecretInput{SecretId: aws.String(uniqueName(t)), Description: aws.String("d")})
		wantCode(t, err, "ResourceNotFoundException")
		name := uniqueName(t)
		createString(t, c, name, "v")
		_, err = c.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
		must(t, err)
		_, err = c.UpdateSecret(t.Context(), &secretsmanager.UpdateSecretInput{SecretId: aws.String(name), SecretString: aws.String("v2")})
		wantCode(t, err, "InvalidRequestException")
	})
}

func TestDescribeSecret(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	ctx := t.Context()
	name := uniqueName(t)

	before := time.Now()
	out, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(name), SecretString: aws.String("v1"), Description: aws.String("described"),
		Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	})
	must(t, err)
	created := time.Now()
	d := describe(t, c, name)
	if aws.ToString(d.ARN) != aws.ToString(out.ARN) || aws.ToString(d.Name) != name || aws.ToString(d.Description) != "described" {
		t.Errorf("ARN, Name, Description = %q, %q, %q", aws.ToString(d.ARN), aws.ToString(d.Name), aws.ToString(d.Description))
	}
	if !maps.Equal(tagMap(d.Tags), map[string]string{"k": "v"}) {
		t.Errorf("Tags = %v", tagMap(d.Tags))
	}
	if !sameStages(d.VersionIdsToStages, map[string][]string{aws.ToString(out.VersionId): {"AWSCURRENT"}}) {
		t.Errorf("VersionIdsToStages = %v", d.VersionIdsToStages)
	}
	wantTime(t, "CreatedDate", d.CreatedDate, before, created)
	wantTime(t, "LastChangedDate", d.LastChangedDate, before, created)
	if d.LastAccessedDate != nil {
		t.Errorf("LastAccessedDate = %v before any read, want none", d.LastAccessedDate)
	}
	if d.RotationEnabled != nil || d.RotationLambdaARN != nil || d.RotationRules != nil || d.LastRotatedDate != nil || d.NextRotationDate != nil {
		t.Errorf("rotation fields set on a secret never rotated: enabled %v lambda %v rules %v", d.RotationEnabled, d.RotationLambdaARN, d.RotationRules)
	}
	if d.DeletedDate != nil || d.KmsKeyId != nil {
		t.Errorf("DeletedDate %v, KmsKeyId %v; want neither", d.DeletedDate, d.KmsKeyId)
	}

	// LastAccessedDate: set by reads, at day granularity.
	readAt := time.Now()
	getString(t, c, name)
	d = describe(t, c, name)
	if d.LastAccessedDate == nil {
		t.Fatal("LastAccessedDate not set after GetSecretValue")
	}
	if got := d.LastAccessedDate.UTC(); !got.Equal(midnightUTC(readAt)) && !got.Equal(midnightUTC(time.Now())) {
		t.Errorf("LastAccessedDate = %v, want midnight UTC of the day read (%v)", got, midnightUTC(readAt))
	}
	// Reads do not change LastChangedDate; writes do.
	wantTime(t, "LastChangedDate after a read", d.LastChangedDate, before, created)
	changedAt := time.Now()
	putString(t, c, name, "v2")
	wantTime(t, "LastChangedDate after a write", describe(t, c, name).LastChangedDate, changedAt, time.Now())

	// Deletion: still describable, with DeletedDate.
	deletedAt := time.Now()
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
	must(t, err)
	d = describe(t, c, name)
	wantTime(t, "DeletedDate", d.DeletedDate, deletedAt, time.Now())

	_, err = c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name + "/nope")})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestListSecrets(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	ctx := t.Context()
	prefix := namePrefix(t) + "/"
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	specs := []struct {
		name, desc string
		tags       []types.Tag
	}{
		{"alpha", "Primary database credentials", []types.Tag{tag("env", "prod"), tag("team", "core")}},
		{"beta", "cache token", []types.Tag{tag("env", "dev")}},
		{"gamma", "", []types.Tag{tag("owner", "Alice")}},
		{"delta", "to be deleted", nil},
	}
	for _, s := range specs {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(prefix + s.name), SecretString: aws.String("v"), Tags: s.tags}
		if s.desc != "" {
			in.Description = aws.String(s.desc)
		}
		_, err := c.CreateSecret(ctx, in)
		must(t, err)
	}
	_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(prefix + "delta")})
	must(t, err)

	mine := types.Filter{Key: types.FilterNameStringTypeName, Values: []string{prefix}}
	f := func(key types.FilterNameStringType, values ...string) types.Filter {
		return types.Filter{Key: key, Values: values}
	}
	tests := []struct {
		desc    string
		filters []types.Filter
		planned bool
		want    []string
	}{
		{"name prefix", []types.Filter{mine}, false, []string{"alpha", "beta", "gamma"}},
		{"name is a prefix match", []types.Filter{f("name", prefix+"al")}, false, []string{"alpha"}},
		{"name is case-sensitive", []types.Filter{f("name", prefix+"ALPHA")}, false, nil},
		{"name negated", []types.Filter{mine, f("name", "!"+prefix+"a")}, false, []string{"beta", "gamma"}},
		{"description, case-insensitive prefix", []types.Filter{mine, f("description", "primary")}, false, []string{"alpha"}},
		{"description negated", []types.Filter{mine, f("description", "!primary")}, false, []string{"beta", "gamma"}},
		{"tag-key", []types.Filter{mine, f("tag-key", "env")}, false, []string{"alpha", "beta"}},
		{"tag-key negated", []types.Filter{mine, f("tag-key", "!env")}, false, []string{"gamma"}},
		{"tag-value", []types.Filter{mine, f("tag-value", "prod")}, false, []string{"alpha"}},
		{"tag-value is case-sensitive", []types.Filter{mine, f("tag-value", "alice")}, false, nil},
		{"tag-key and tag-value", []types.Filter{mine, f("tag-key", "env"), f("tag-value", "dev")}, false, []string{"beta"}},
		{"several values are alternatives", []types.Filter{mine, f("tag-value", "prod", "dev")}, false, []string{"alpha", "beta"}},
		{"all: a word of the description", []types.Filter{mine, f("all", "token")}, false, []string{"beta"}},
		{"all: case-insensitive tag value", []types.Filter{mine, f("all", "ALICE")}, false, []string{"gamma"}},
		{"all negated", []types.Filter{mine, f("all", "!cache")}, false, []string{"alpha", "gamma"}},
		{"IncludePlannedDeletion", []types.Filter{mine}, true, []string{"alpha", "beta", "gamma", "delta"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			out, err := c.ListSecrets(t.Context(), &secretsmanager.ListSecretsInput{Filters: tc.filters, IncludePlannedDeletion: aws.Bool(tc.planned)})
			must(t, err)
			var got []string
			for _, e := range out.SecretList {
				got = append(got, strings.TrimPrefix(aws.ToString(e.Name), prefix))
			}
			if !sameSet(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("entries", func(t *testing.T) {
		out, err := c.ListSecrets(t.Context(), &secretsmanager.ListSecretsInput{Filters: []types.Filter{mine}, IncludePlannedDeletion: aws.Bool(true)})
		must(t, err)
		for _, e := range out.SecretList {
			n := strings.TrimPrefix(aws.ToString(e.Name), prefix)
			d := describe(t, c, aws.ToString(e.ARN))
			if !sameStages(e.SecretVersionsToStages, d.VersionIdsToStages) || len(e.SecretVersionsToStages) != 1 {
				t.Errorf("%s: SecretVersionsToStages = %v, DescribeSecret says %v", n, e.SecretVersionsToStages, d.VersionIdsToStages)
			}
			if aws.ToString(e.Description) != aws.ToString(d.Description) || !maps.Equal(tagMap(e.Tags), tagMap(d.Tags)) || e.CreatedDate == nil {
				t.Errorf("%s: entry %+v does not match DescribeSecret", n, e)
			}
			if (n == "delta") != (e.DeletedDate != nil) {
				t.Errorf("%s: DeletedDate = %v", n, e.DeletedDate)
			}
		}
	})

	t.Run("invalid NextToken", func(t *testing.T) {
		_, err := c.ListSecrets(t.Context(), &secretsmanager.ListSecretsInput{NextToken: aws.String("not-a-token")})
		wantCode(t, err, "InvalidNextTokenException")
	})
}

func TestListSecretsPaging(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	prefix := namePrefix(t) + "/"
	const n = 27
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("%s%02d", prefix, i))
	}
	// Created in a shuffled order, so that name order is not creation order.
	order := slices.Clone(names)
	for i := range order {
		j := (i*7 + 3) % n
		order[i], order[j] = order[j], order[i]
	}
	for _, name := range order {
		createString(t, c, name, "v")
	}

	list := func(t *testing.T, by types.SortByType, dir types.SortOrderType) []types.SecretListEntry {
		t.Helper()
		p := secretsmanager.NewListSecretsPaginator(c, &secretsmanager.ListSecretsInput{
			Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{prefix}}},
			SortBy:  by, SortOrder: dir, MaxResults: aws.Int32(5),
		})
		var all []types.SecretListEntry
		pages := 0
		for p.HasMorePages() {
			page, err := p.NextPage(t.Context())
			must(t, err)
			if len(page.SecretList) > 5 {
				t.Errorf("page of %d entries, MaxResults is 5", len(page.SecretList))
			}
			all = append(all, page.SecretList...)
			if pages++; pages > 2*n {
				t.Fatal("paginator does not end")
			}
		}
		if pages < n/5 {
			t.Errorf("%d pages for %d secrets of at most 5", pages, n)
		}
		return all
	}
	namesOf := func(es []types.SecretListEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, aws.ToString(e.Name))
		}
		return out
	}

	t.Run("name asc", func(t *testing.T) {
		if got := namesOf(list(t, types.SortByTypeName, types.SortOrderTypeAsc)); !slices.Equal(got, names) {
			t.Errorf("got %v, want %v", got, names)
		}
	})
	t.Run("name desc", func(t *testing.T) {
		want := slices.Clone(names)
		slices.Reverse(want)
		if got := namesOf(list(t, types.SortByTypeName, types.SortOrderTypeDesc)); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("created-date asc", func(t *testing.T) {
		es := list(t, types.SortByTypeCreatedDate, types.SortOrderTypeAsc)
		if got := namesOf(es); !sameSet(got, names) {
			t.Fatalf("got %v, want every one of %v once", got, names)
		}
		for i := 1; i < len(es); i++ {
			if es[i].CreatedDate.Before(*es[i-1].CreatedDate) {
				t.Errorf("%s created %v listed after %s created %v", aws.ToString(es[i].Name), es[i].CreatedDate, aws.ToString(es[i-1].Name), es[i-1].CreatedDate)
			}
		}
	})
	t.Run("default order", func(t *testing.T) {
		if got := namesOf(list(t, "", "")); !sameSet(got, names) || len(got) != n {
			t.Errorf("got %v, want every one of %v once", got, names)
		}
	})
}

func TestListSecretVersionIds(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	ctx := t.Context()
	name := uniqueName(t)
	created := createString(t, c, name, "v1")
	v1 := aws.ToString(created.VersionId)
	v2 := aws.ToString(putString(t, c, name, "v2").VersionId)
	v3 := aws.ToString(putString(t, c, name, "v3").VersionId)
	v4 := aws.ToString(putString(t, c, name, "v4").VersionId)
	stagesOf := func(vs []types.SecretVersionsListEntry) map[string][]string {
		m := map[string][]string{}
		for _, v := range vs {
			m[aws.ToString(v.VersionId)] = v.VersionStages
			if v.CreatedDate == nil {
				t.Errorf("version %s has no CreatedDate", aws.ToString(v.VersionId))
			}
		}
		return m
	}

	out, err := c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name)})
	must(t, err)
	if aws.ToString(out.ARN) != aws.ToString(created.ARN) || aws.ToString(out.Name) != name {
		t.Errorf("ARN, Name = %q, %q", aws.ToString(out.ARN), aws.ToString(out.Name))
	}
	if got, want := stagesOf(out.Versions), map[string][]string{v4: {"AWSCURRENT"}, v3: {"AWSPREVIOUS"}}; !sameStages(got, want) {
		t.Errorf("without IncludeDeprecated: %v, want %v", got, want)
	}

	p := secretsmanager.NewListSecretVersionIdsPaginator(c, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(name), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(1),
	})
	var all []types.SecretVersionsListEntry
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		must(t, err)
		if len(page.Versions) > 1 {
			t.Errorf("page of %d versions, MaxResults is 1", len(page.Versions))
		}
		all = append(all, page.Versions...)
		if pages++; pages > 10 {
			t.Fatal("paginator does not end")
		}
	}
	if got, want := stagesOf(all), map[string][]string{v4: {"AWSCURRENT"}, v3: {"AWSPREVIOUS"}, v2: nil, v1: nil}; !sameStages(got, want) || len(all) != 4 {
		t.Errorf("with IncludeDeprecated, paged: %v, want %v", got, want)
	}

	_, err = c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name + "/nope")})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name), NextToken: aws.String("bogus")})
	wantCode(t, err, "InvalidNextTokenException")
}

func TestUpdateSecretVersionStage(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	ctx := t.Context()
	name := uniqueName(t)
	v1 := aws.ToString(createString(t, c, name, "v1").VersionId)
	v2 := aws.ToString(putString(t, c, name, "v2").VersionId)
	update := func(stage, move, remove string) error {
		in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String(stage)}
		if move != "" {
			in.MoveToVersionId = aws.String(move)
		}
		if remove != "" {
			in.RemoveFromVersionId = aws.String(remove)
		}
		out, err := c.UpdateSecretVersionStage(ctx, in)
		if err == nil && (aws.ToString(out.Name) != name || !arnPattern(name).MatchString(aws.ToString(out.ARN))) {
			t.Errorf("UpdateSecretVersionStage = {ARN %q Name %q}", aws.ToString(out.ARN), aws.ToString(out.Name))
		}
		return err
	}

	// Steps in order: each starts from the state the previous one left.
	wantCode(t, update("AWSCURRENT", v1, ""), "InvalidParameterException")
	wantCode(t, update("AWSCURRENT", v1, v1), "InvalidParameterException") // AWSCURRENT is on v2, not v1
	wantStages(t, c, name, map[string][]string{v2: {"AWSCURRENT"}, v1: {"AWSPREVIOUS"}})

	must(t, update("AWSCURRENT", v1, v2))
	wantStages(t, c, name, map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}})
	if got := getString(t, c, name); got != "v1" {
		t.Errorf("value after moving AWSCURRENT back = %q, want v1", got)
	}

	wantCode(t, update("AWSCURRENT", "", v1), "InvalidParameterException")
	wantStages(t, c, name, map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}})

	// A custom label: attach, move (needs RemoveFromVersionId), remove.
	must(t, update("blue", v2, ""))
	wantStages(t, c, name, map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPREVIOUS", "blue"}})
	wantCode(t, update("blue", v1, ""), "InvalidParameterException")
	must(t, update("blue", v1, v2))
	wantStages(t, c, name, map[string][]string{v1: {"AWSCURRENT", "blue"}, v2: {"AWSPREVIOUS"}})
	g, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String("blue")})
	must(t, err)
	if aws.ToString(g.SecretString) != "v1" {
		t.Errorf("value labelled blue = %q, want v1", aws.ToString(g.SecretString))
	}
	wantCode(t, update("blue", "", v2), "InvalidParameterException") // blue is on v1
	must(t, update("blue", "", v1))
	wantStages(t, c, name, map[string][]string{v1: {"AWSCURRENT"}, v2: {"AWSPREVIOUS"}})

	// Removing the last label deprecates a version.
	must(t, update("AWSPREVIOUS", "", v2))
	wantStages(t, c, name, map[string][]string{v1: {"AWSCURRENT"}})

	_, err = c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(name + "/nope"), VersionStage: aws.String("x"), MoveToVersionId: aws.String(v1),
	})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestDeleteSecret(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	const day = 24 * time.Hour

	del := func(t *testing.T, in *secretsmanager.DeleteSecretInput) (*secretsmanager.DeleteSecretOutput, time.Time, time.Time) {
		t.Helper()
		before := time.Now()
		out, err := c.DeleteSecret(t.Context(), in)
		must(t, err)
		return out, before, time.Now()
	}

	t.Run("default 30-day window", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		created := createString(t, c, name, "v")
		out, before, after := del(t, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
		if aws.ToString(out.ARN) != aws.ToString(created.ARN) || aws.ToString(out.Name) != name {
			t.Errorf("ARN, Name = %q, %q", aws.ToString(out.ARN), aws.ToString(out.Name))
		}
		wantTime(t, "DeletionDate", out.DeletionDate, before.Add(30*day), after.Add(30*day))
		d := describe(t, c, name)
		wantTime(t, "DeletedDate", d.DeletedDate, before, after)
		l, err := c.ListSecrets(t.Context(), &secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: "name", Values: []string{name}}}})
		must(t, err)
		if len(l.SecretList) != 0 {
			t.Errorf("ListSecrets lists a deleted secret: %v", l.SecretList)
		}
		// Deleting again is refused while it is scheduled.
		_, err = c.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
		wantCode(t, err, "InvalidRequestException")
	})

	t.Run("7-day window", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		createString(t, c, name, "v")
		out, before, after := del(t, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), RecoveryWindowInDays: aws.Int64(7)})
		wantTime(t, "DeletionDate", out.DeletionDate, before.Add(7*day), after.Add(7*day))
	})

	t.Run("invalid parameters", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		createString(t, c, name, "v")
		for _, tc := range []struct {
			desc string
			in   secretsmanager.DeleteSecretInput
		}{
			{"window 6", secretsmanager.DeleteSecretInput{RecoveryWindowInDays: aws.Int64(6)}},
			{"window 31", secretsmanager.DeleteSecretInput{RecoveryWindowInDays: aws.Int64(31)}},
			{"window 0", secretsmanager.DeleteSecretInput{RecoveryWindowInDays: aws.Int64(0)}},
			{"window and force", secretsmanager.DeleteSecretInput{RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)}},
		} {
			in := tc.in
			in.SecretId = aws.String(name)
			_, err := c.DeleteSecret(t.Context(), &in)
			if got := apiCode(err); got != "InvalidParameterException" {
				t.Errorf("%s: error code %q, want InvalidParameterException", tc.desc, got)
			}
		}
		if got := getString(t, c, name); got != "v" {
			t.Errorf("secret after refused deletes = %q", got)
		}
	})

	t.Run("force delete frees the name at once", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		old := createString(t, c, name, "old")
		out, before, after := del(t, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
		wantTime(t, "DeletionDate", out.DeletionDate, before, after)
		_, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		wantCode(t, err, "ResourceNotFoundException")
		fresh := createString(t, c, name, "new")
		if aws.ToString(fresh.ARN) == aws.ToString(old.ARN) {
			t.Errorf("re-created secret has the old ARN %s", aws.ToString(old.ARN))
		}
		if got := getString(t, c, name); got != "new" {
			t.Errorf("value = %q, want new", got)
		}
		_, err = c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: old.ARN})
		wantCode(t, err, "ResourceNotFoundException")
	})

	t.Run("force delete of a scheduled secret", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		createString(t, c, name, "v")
		del(t, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
		del(t, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
		createString(t, c, name, "again")
	})

	t.Run("name reuse while scheduled", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		createString(t, c, name, "v")
		del(t, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), RecoveryWindowInDays: aws.Int64(7)})
		_, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v")})
		wantCode(t, err, "InvalidRequestException")
	})

	t.Run("unknown secret", func(t *testing.T) {
		t.Parallel()
		_, err := c.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(uniqueName(t))})
		wantCode(t, err, "ResourceNotFoundException")
	})

	// AWS: "If you forcibly delete an already deleted or nonexistent secret,
	// the operation does not return ResourceNotFoundException" (DeleteSecret,
	// ForceDeleteWithoutRecovery), so that retries succeed.
	t.Run("force delete is idempotent", func(t *testing.T) {
		t.Parallel()
		name := uniqueName(t)
		createString(t, c, name, "v")
		del(t, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
		_, err := c.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
		if err != nil {
			t.Errorf("retried force delete: %v; AWS succeeds", err)
		}
		_, err = c.DeleteSecret(t.Context(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(uniqueName(t)), ForceDeleteWithoutRecovery: aws.Bool(true)})
		if err != nil {
			t.Errorf("force delete of a secret that never existed: %v; AWS succeeds", err)
		}
	})
}

func TestRestoreSecret(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	ctx := t.Context()
	name := uniqueName(t)
	created := createString(t, c, name, "kept")
	_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
	must(t, err)

	out, err := c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(name)})
	must(t, err)
	if aws.ToString(out.ARN) != aws.ToString(created.ARN) || aws.ToString(out.Name) != name {
		t.Errorf("ARN, Name = %q, %q", aws.ToString(out.ARN), aws.ToString(out.Name))
	}
	if got := getString(t, c, name); got != "kept" {
		t.Errorf("value after restore = %q, want kept", got)
	}
	if d := describe(t, c, name); d.DeletedDate != nil {
		t.Errorf("DeletedDate = %v after restore", d.DeletedDate)
	}
	l, err := c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: "name", Values: []string{name}}}})
	must(t, err)
	if len(l.SecretList) != 1 {
		t.Errorf("ListSecrets after restore: %d entries, want 1", len(l.SecretList))
	}

	// Restoring a secret that is not deleted is harmless.
	_, err = c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(name)})
	must(t, err)
	_, err = c.RestoreSecret(ctx, &secretsmanager.RestoreSecretInput{SecretId: aws.String(name + "/nope")})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestTagResource(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	ctx := t.Context()
	name := uniqueName(t)
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}}})
	must(t, err)
	tag := func(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }
	wantTags := func(want map[string]string) {
		t.Helper()
		if got := tagMap(describe(t, c, name).Tags); !maps.Equal(got, want) {
			t.Errorf("Tags = %v, want %v", got, want)
		}
	}

	_, err = c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: []types.Tag{tag("b", "2"), tag("C", "3")}})
	must(t, err)
	wantTags(map[string]string{"a": "1", "b": "2", "C": "3"})
	_, err = c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: []types.Tag{tag("a", "one")}})
	must(t, err)
	wantTags(map[string]string{"a": "one", "b": "2", "C": "3"})
	_, err = c.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(name), TagKeys: []string{"b", "c", "absent"}})
	must(t, err)
	wantTags(map[string]string{"a": "one", "C": "3"}) // keys are case-sensitive
	_, err = c.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(name), TagKeys: []string{"b"}})
	must(t, err)

	_, err = c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(name + "/nope"), Tags: []types.Tag{tag("x", "y")}})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(name + "/nope"), TagKeys: []string{"x"}})
	wantCode(t, err, "ResourceNotFoundException")
}

func TestGetRandomPassword(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	const (
		upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		lower  = "abcdefghijklmnopqrstuvwxyz"
		digits = "0123456789"
		punct  = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	)
	has := func(pw, set string) bool { return strings.ContainsAny(pw, set) }
	tests := []struct {
		desc  string
		in    secretsmanager.GetRandomPasswordInput
		check func(pw string) string // "" when fine
	}{
		{"defaults", secretsmanager.GetRandomPasswordInput{}, func(pw string) string {
			if len(pw) != 32 || !has(pw, upper) || !has(pw, lower) || !has(pw, digits) || !has(pw, punct) || has(pw, " ") {
				return "want 32 characters with each type and no space"
			}
			return ""
		}},
		{"length 100", secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(100)}, func(pw string) string {
			if len(pw) != 100 {
				return "want 100 characters"
			}
			return ""
		}},
		{"length 4096", secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(4096)}, func(pw string) string {
			if len(pw) != 4096 {
				return "want 4096 characters"
			}
			return ""
		}},
		{"ExcludeNumbers", secretsmanager.GetRandomPasswordInput{ExcludeNumbers: aws.Bool(true), PasswordLength: aws.Int64(200)}, func(pw string) string {
			if has(pw, digits) {
				return "has a digit"
			}
			return ""
		}},
		{"ExcludePunctuation", secretsmanager.GetRandomPasswordInput{ExcludePunctuation: aws.Bool(true), PasswordLength: aws.Int64(200)}, func(pw string) string {
			if has(pw, punct) {
				return "has punctuation"
			}
			return ""
		}},
		{"ExcludeUppercase", secretsmanager.GetRandomPasswordInput{ExcludeUppercase: aws.Bool(true), PasswordLength: aws.Int64(200)}, func(pw string) string {
			if has(pw, upper) {
				return "has an uppercase letter"
			}
			return ""
		}},
		{"ExcludeLowercase", secretsmanager.GetRandomPasswordInput{ExcludeLowercase: aws.Bool(true), PasswordLength: aws.Int64(200)}, func(pw string) string {
			if has(pw, lower) {
				return "has a lowercase letter"
			}
			return ""
		}},
		{"ExcludeCharacters", secretsmanager.GetRandomPasswordInput{ExcludeCharacters: aws.String(`abcABC123:/@"'\`), PasswordLength: aws.Int64(500)}, func(pw string) string {
			if has(pw, `abcABC123:/@"'\`) {
				return "has an excluded character"
			}
			return ""
		}},
		{"IncludeSpace", secretsmanager.GetRandomPasswordInput{IncludeSpace: aws.Bool(true), PasswordLength: aws.Int64(4096)}, func(pw string) string {
			if !has(pw, " ") {
				return "no space in 4096 characters"
			}
			return ""
		}},
		{"RequireEachIncludedType, short", secretsmanager.GetRandomPasswordInput{RequireEachIncludedType: aws.Bool(true), PasswordLength: aws.Int64(4)}, func(pw string) string {
			if len(pw) != 4 || !has(pw, upper) || !has(pw, lower) || !has(pw, digits) || !has(pw, punct) {
				return "want one character of each type"
			}
			return ""
		}},
		{"only digits", secretsmanager.GetRandomPasswordInput{ExcludeLowercase: aws.Bool(true), ExcludeUppercase: aws.Bool(true), ExcludePunctuation: aws.Bool(true), PasswordLength: aws.Int64(50)}, func(pw string) string {
			if strings.Trim(pw, digits) != "" || len(pw) != 50 {
				return "want 50 digits"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			out, err := c.GetRandomPassword(t.Context(), &tc.in)
			must(t, err)
			pw := aws.ToString(out.RandomPassword)
			if strings.Trim(pw, upper+lower+digits+punct+" ") != "" {
				t.Errorf("password %q has characters outside AWS's alphabet", pw)
			}
			if msg := tc.check(pw); msg != "" {
				t.Errorf("password %q: %s", pw, msg)
			}
		})
	}
	for _, tc := range []struct {
		desc string
		in   secretsmanager.GetRandomPasswordInput
		code string
	}{
		{"length 0", secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(0)}, "ValidationException"},
		{"length 4097", secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(4097)}, "ValidationException"},
		{"everything excluded", secretsmanager.GetRandomPasswordInput{ExcludeLowercase: aws.Bool(true), ExcludeUppercase: aws.Bool(true), ExcludePunctuation: aws.Bool(true), ExcludeNumbers: aws.Bool(true)}, "InvalidParameterException"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := c.GetRandomPassword(t.Context(), &tc.in)
			wantCode(t, err, tc.code)
		})
	}
}

// policy returns a resource policy document granting principal (a JSON
// value) GetSecretValue.
func policy(principal string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":` + principal +
		`,"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
}

// sameJSON reports whether two JSON documents are equal as values.
func sameJSON(a, b string) bool {
	var va, vb any
	return json.Unmarshal([]byte(a), &va) == nil && json.Unmarshal([]byte(b), &vb) == nil && fmt.Sprint(va) == fmt.Sprint(vb)
}

func TestResourcePolicy(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	ctx := t.Context()
	name := uniqueName(t)
	created := createString(t, c, name, "v")
	private := policy(`{"AWS":"arn:aws:iam::123456789012:root"}`)
	public := policy(`"*"`)

	get := func() *secretsmanager.GetResourcePolicyOutput {
		t.Helper()
		out, err := c.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(name)})
		must(t, err)
		if aws.ToString(out.ARN) != aws.ToString(created.ARN) || aws.ToString(out.Name) != name {
			t.Errorf("GetResourcePolicy ARN, Name = %q, %q", aws.ToString(out.ARN), aws.ToString(out.Name))
		}
		return out
	}
	if p := get().ResourcePolicy; p != nil {
		t.Errorf("ResourcePolicy = %q before any was put", *p)
	}

	out, err := c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String(name), ResourcePolicy: aws.String(private), BlockPublicPolicy: aws.Bool(true)})
	must(t, err)
	if aws.ToString(out.ARN) != aws.ToString(created.ARN) || aws.ToString(out.Name) != name {
		t.Errorf("PutResourcePolicy ARN, Name = %q, %q", aws.ToString(out.ARN), aws.ToString(out.Name))
	}
	if p := aws.ToString(get().ResourcePolicy); !sameJSON(p, private) {
		t.Errorf("ResourcePolicy = %s, want %s", p, private)
	}

	_, err = c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String(name), ResourcePolicy: aws.String(public), BlockPublicPolicy: aws.Bool(true)})
	wantCode(t, err, "PublicPolicyException")
	if p := aws.ToString(get().ResourcePolicy); !sameJSON(p, private) {
		t.Errorf("a refused policy replaced the attached one: %s", p)
	}
	for _, bad := range []string{`{not json`, `{"Version":"2012-10-17","Statement":[{"Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}`, `[]`} {
		_, err = c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String(name), ResourcePolicy: aws.String(bad)})
		if got := apiCode(err); got != "MalformedPolicyDocumentException" {
			t.Errorf("PutResourcePolicy(%s): error code %q, want MalformedPolicyDocumentException", bad, got)
		}
	}
	_, err = c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String(name), ResourcePolicy: aws.String(public), BlockPublicPolicy: aws.Bool(false)})
	must(t, err)

	del, err := c.DeleteResourcePolicy(ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String(name)})
	must(t, err)
	if aws.ToString(del.ARN) != aws.ToString(created.ARN) || aws.ToString(del.Name) != name {
		t.Errorf("DeleteResourcePolicy ARN, Name = %q, %q", aws.ToString(del.ARN), aws.ToString(del.Name))
	}
	if p := get().ResourcePolicy; p != nil {
		t.Errorf("ResourcePolicy = %q after delete", *p)
	}

	missing := aws.String(name + "/nope")
	_, err = c.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: missing})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: missing, ResourcePolicy: aws.String(private)})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = c.DeleteResourcePolicy(ctx, &secretsmanager.DeleteResourcePolicyInput{SecretId: missing})
	wantCode(t, err, "ResourceNotFoundException")

	// A secret scheduled for deletion refuses policy reads (Terraform
	// relies on this).
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)})
	must(t, err)
	_, err = c.GetResourcePolicy(ctx, &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(name)})
	wantCode(t, err, "InvalidRequestException")
}

func TestValidateResourcePolicy(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	name := uniqueName(t)
	createString(t, c, name, "v")
	private := policy(`{"AWS":"arn:aws:iam::123456789012:root"}`)

	for _, id := range []*string{nil, aws.String(name)} {
		out, err := c.ValidateResourcePolicy(t.Context(), &secretsmanager.ValidateResourcePolicyInput{SecretId: id, ResourcePolicy: aws.String(private)})
		must(t, err)
		if !out.PolicyValidationPassed || len(out.ValidationErrors) != 0 {
			t.Errorf("SecretId %v: PolicyValidationPassed %v, ValidationErrors %+v; want a pass", aws.ToString(id), out.PolicyValidationPassed, out.ValidationErrors)
		}
	}

	out, err := c.ValidateResourcePolicy(t.Context(), &secretsmanager.ValidateResourcePolicyInput{SecretId: aws.String(name), ResourcePolicy: aws.String(policy(`"*"`))})
	must(t, err)
	if out.PolicyValidationPassed || len(out.ValidationErrors) == 0 || aws.ToString(out.ValidationErrors[0].CheckName) == "" || aws.ToString(out.ValidationErrors[0].ErrorMessage) == "" {
		t.Errorf("public policy: PolicyValidationPassed %v, ValidationErrors %+v; want a failure with a check name and message", out.PolicyValidationPassed, out.ValidationErrors)
	}

	// A syntax error fails validation, as an error or as a finding.
	out, err = c.ValidateResourcePolicy(t.Context(), &secretsmanager.ValidateResourcePolicyInput{ResourcePolicy: aws.String(`{not json`)})
	if err != nil {
		wantCode(t, err, "MalformedPolicyDocumentException")
	} else if out.PolicyValidationPassed || len(out.ValidationErrors) == 0 {
		t.Errorf("malformed policy passed validation: %+v", out)
	}

	_, err = c.ValidateResourcePolicy(t.Context(), &secretsmanager.ValidateResourcePolicyInput{SecretId: aws.String(name + "/nope"), ResourcePolicy: aws.String(private)})
	wantCode(t, err, "ResourceNotFoundException")
}

// TestConcurrentWrites puts values from many goroutines at once: every
// call succeeds and the secret ends with exactly one AWSCURRENT.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	c := client(t, sharedServer(t))
	name := uniqueName(t)
	createString(t, c, name, "v0")
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			_, err := c.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(fmt.Sprint("v", i+1))})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent PutSecretValue: %v", err)
		}
	}
	d := describe(t, c, name)
	current, previous := 0, 0
	for _, st := range d.VersionIdsToStages {
		for _, l := range st {
			switch l {
			case "AWSCURRENT":
				current++
			case "AWSPREVIOUS":
				previous++
			}
		}
	}
	if current != 1 || previous != 1 {
		t.Errorf("VersionIdsToStages = %v: %d AWSCURRENT, %d AWSPREVIOUS; want one each", d.VersionIdsToStages, current, previous)
	}
	vers, err := c.ListSecretVersionIds(t.Context(), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(name), IncludeDeprecated: aws.Bool(true)})
	must(t, err)
	if len(vers.Versions) != writers+1 {
		t.Errorf("%d versions, want %d", len(vers.Versions), writers+1)
	}
}
