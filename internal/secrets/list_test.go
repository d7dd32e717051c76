package secrets_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-secrets/rotor/internal/secrets"
)

func listNames(t *testing.T, h *harness, in secrets.ListSecretsInput) []string {
	t.Helper()
	var names []string
	for {
		out, err := h.svc.ListSecrets(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range out.SecretList {
			names = append(names, d.Name)
		}
		if out.NextToken == "" {
			return names
		}
		in.NextToken = out.NextToken
	}
}

func TestListSecretsFilters(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	mk := func(name, desc string, tags ...secrets.Tag) {
		_, err := h.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: name, Description: &desc, Tags: tags, Value: secrets.StringValue("x")})
		if err != nil {
			t.Fatal(err)
		}
		h.clock.Add(time.Second)
	}
	mk("prod/app/db", "Main Database", secrets.Tag{Key: "team", Value: "payments"})
	mk("prod/app/cache", "redis cache", secrets.Tag{Key: "team", Value: "search"}, secrets.Tag{Key: "tier", Value: "gold"})
	mk("dev/app/db", "scratch database")
	mk("Prod-upper", "")

	cases := []struct {
		name    string
		filters []secrets.Filter
		want    []string
	}{
		{"name prefix", []secrets.Filter{{Key: "name", Values: []string{"prod/"}}}, []string{"prod/app/cache", "prod/app/db"}},
		{"name is case-sensitive", []secrets.Filter{{Key: "name", Values: []string{"Prod"}}}, []string{"Prod-upper"}},
		{"name alternatives", []secrets.Filter{{Key: "name", Values: []string{"dev/", "Prod"}}}, []string{"Prod-upper", "dev/app/db"}},
		{"name negation", []secrets.Filter{{Key: "name", Values: []string{"!prod/"}}}, []string{"Prod-upper", "dev/app/db"}},
		{"description is case-insensitive", []secrets.Filter{{Key: "description", Values: []string{"main"}}}, []string{"prod/app/db"}},
		{"tag-key", []secrets.Filter{{Key: "tag-key", Values: []string{"ti"}}}, []string{"prod/app/cache"}},
		{"tag-value", []secrets.Filter{{Key: "tag-value", Values: []string{"pay"}}}, []string{"prod/app/db"}},
		{"tag-key negated", []secrets.Filter{{Key: "tag-key", Values: []string{"!team"}}}, []string{"Prod-upper", "dev/app/db"}},
		{"filters are ANDed", []secrets.Filter{{Key: "name", Values: []string{"prod/"}}, {Key: "tag-value", Values: []string{"search"}}}, []string{"prod/app/cache"}},
		{"all matches words", []secrets.Filter{{Key: "all", Values: []string{"DATABASE"}}}, []string{"dev/app/db", "prod/app/db"}},
		{"all matches inner words", []secrets.Filter{{Key: "all", Values: []string{"cache"}}}, []string{"prod/app/cache"}},
		{"all matches tags", []secrets.Filter{{Key: "all", Values: []string{"gold"}}}, []string{"prod/app/cache"}},
		{"primary-region", []secrets.Filter{{Key: "primary-region", Values: []string{"us-east"}}}, []string{"Prod-upper", "dev/app/db", "prod/app/cache", "prod/app/db"}},
		{"owning-service", []secrets.Filter{{Key: "owning-service", Values: []string{"rds"}}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := listNames(t, h, secrets.ListSecretsInput{Filters: c.filters, SortBy: "name", SortOrder: "asc"})
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}

	invalid := []struct {
		name string
		in   secrets.ListSecretsInput
		kind secrets.Kind
	}{
		{"unknown key", secrets.ListSecretsInput{Filters: []secrets.Filter{{Key: "color", Values: []string{"x"}}}}, secrets.KindValidation},
		{"no values", secrets.ListSecretsInput{Filters: []secrets.Filter{{Key: "name"}}}, secrets.KindValidation},
		{"bad value chars", secrets.ListSecretsInput{Filters: []secrets.Filter{{Key: "name", Values: []string{"a*"}}}}, secrets.KindValidation},
		{"too many filters", secrets.ListSecretsInput{Filters: slices.Repeat([]secrets.Filter{{Key: "name", Values: []string{"a"}}}, 11)}, secrets.KindValidation},
		{"max results 0", secrets.ListSecretsInput{MaxResults: i64(0)}, secrets.KindValidation},
		{"max results 101", secrets.ListSecretsInput{MaxResults: i64(101)}, secrets.KindValidation},
		{"sort by", secrets.ListSecretsInput{SortBy: "size"}, secrets.KindValidation},
		{"sort order", secrets.ListSecretsInput{SortOrder: "up"}, secrets.KindValidation},
		{"garbage token", secrets.ListSecretsInput{NextToken: "%%%"}, secrets.KindInvalidNextToken},
	}
	for _, c := range invalid {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.svc.ListSecrets(ctx, c.in)
			wantKind(t, err, c.kind)
		})
	}
}

func TestListSecretsOrderAndPaging(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	var created []string
	for i := 0; i < 23; i++ {
		name := fmt.Sprintf("s%02d", (i*7)%23) // creation order differs from name order
		if _, err := h.svc.CreateSecret(ctx, secrets.CreateSecretInput{Name: name, Value: secrets.StringValue("x")}); err != nil {
			t.Fatal(err)
		}
		created = append(created, name)
		if i%3 != 0 { // some secrets share a creation time
			h.clock.Add(time.Second)
		}
	}
	byName := slices.Clone(created)
	slices.Sort(byName)

	for _, page := range []int64{1, 4, 23, 100} {
		got := listNames(t, h, secrets.ListSecretsInput{SortBy: "name", SortOrder: "asc", MaxResults: i64(page)})
		if !slices.Equal(got, byName) {
			t.Fatalf("page %d name asc: %v", page, got)
		}
		got = listNames(t, h, secrets.ListSecretsInput{SortBy: "name", SortOrder: "desc", MaxResults: i64(page)})
		if want := slices.Clone(byName); !slices.Equal(got, reversed(want)) {
			t.Fatalf("page %d name desc: %v", page, got)
		}
		got = listNames(t, h, secrets.ListSecretsInput{SortBy: "created-date", SortOrder: "asc", MaxResults: i64(page)})
		if len(got) != 23 || !sameSet(got, created) {
			t.Fatalf("page %d created asc lost or repeated rows: %v", page, got)
		}
	}
	// Default order: newest first.
	got := listNames(t, h, secrets.ListSecretsInput{})
	// (the last two share a creation time: ties are broken by ARN.)
	if newest := created[len(created)-2:]; !slices.Contains(newest, got[0]) || !slices.Contains(newest, got[1]) {
		t.Fatalf("default order starts with %v, want the newest %v", got[:2], newest)
	}
	// A token from one order is refused in another.
	out, err := h.svc.ListSecrets(ctx, secrets.ListSecretsInput{SortBy: "name", MaxResults: i64(2)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.svc.ListSecrets(ctx, secrets.ListSecretsInput{SortBy: "created-date", NextToken: out.NextToken})
	wantKind(t, err, secrets.KindInvalidNextToken)

	// List entries carry labels and tags.
	if len(out.SecretList[0].VersionIdsToStages) != 1 {
		t.Fatalf("list entry stages = %v", out.SecretList[0].VersionIdsToStages)
	}
}

func reversed(s []string) []string { slices.Reverse(s); return s }

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestValueRedacts(t *testing.T) {
	v := secrets.StringValue("hunter2-very-secret")
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("x", "value", v, "struct", struct{ V secrets.Value }{v})
	js, _ := json.Marshal(map[string]any{"v": v})
	outputs := []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x", v, v, v, v, v, v),
		fmt.Sprintf("%+v", struct{ V secrets.Value }{v}), buf.String(), string(js),
		fmt.Sprint(secrets.BinaryValue([]byte("hunter2-very-secret"))),
	}
	for _, out := range outputs {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "68756e74") {
			t.Errorf("value leaked: %s", out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("no redaction marker: %s", out)
		}
	}
	if string(v.Reveal()) != "hunter2-very-secret" {
		t.Fatal("Reveal lost the value")
	}
}
