package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go/middleware"
)

func TestWriteAPIJSON(t *testing.T) {
	ts := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	name, empty := "a<b>&c", ""
	var md middleware.Metadata
	md.Set("key", "value")
	tests := []struct {
		name string
		in   any
		want string
	}{
		{
			name: "absent members and metadata left out",
			in:   &secretsmanager.RestoreSecretOutput{Name: &name, ResultMetadata: md},
			want: "{\n  \"Name\": \"a<b>&c\"\n}\n",
		},
		{
			name: "empty string and empty list kept, nil list dropped",
			in:   &secretsmanager.GetSecretValueOutput{SecretString: &empty, VersionStages: []string{}, SecretBinary: nil},
			want: "{\n  \"SecretString\": \"\",\n  \"VersionStages\": []\n}\n",
		},
		{
			name: "timestamps, enums, nested structs",
			in: &secretsmanager.ListSecretsOutput{SecretList: []types.SecretListEntry{{
				Name:        &name,
				CreatedDate: &ts,
			}}},
			want: "{\n  \"SecretList\": [\n    {\n      \"CreatedDate\": \"2024-05-01T12:00:00Z\",\n      \"Name\": \"a<b>&c\"\n    }\n  ]\n}\n",
		},
		{
			name: "enum values",
			in:   &secretsmanager.ListSecretsInput{SortBy: types.SortByTypeName, Filters: []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"x"}}}},
			want: "{\n  \"Filters\": [\n    {\n      \"Key\": \"tag-key\",\n      \"Values\": [\n        \"x\"\n      ]\n    }\n  ],\n  \"SortBy\": \"name\"\n}\n",
		},
		{
			name: "no members",
			in:   &secretsmanager.TagResourceOutput{ResultMetadata: md},
			want: "{}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeAPIJSON(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", buf.String(), tt.want)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	tests := map[string]string{
		"plain":           "plain",
		"tab\there":       "tab here",
		"esc\x1b[2Jclear": "esc [2Jclear",
		"line\r\nbreak":   "line  break",
		"c1\u009bcontrol": "c1 control",
		"unicode ✓ stays": "unicode ✓ stays",
	}
	for in, want := range tests {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteRawAddsNoNewlineToPipes(t *testing.T) {
	var buf bytes.Buffer
	if err := writeRaw(&buf, []byte("value")); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "value" {
		t.Errorf("got %q, want %q", buf.String(), "value")
	}
}

func TestStageRank(t *testing.T) {
	tests := []struct {
		stages []string
		want   int
	}{
		{[]string{"AWSPREVIOUS", "AWSCURRENT"}, 0},
		{[]string{"AWSPENDING"}, 1},
		{[]string{"AWSPREVIOUS"}, 2},
		{[]string{"custom"}, 3},
		{nil, 3},
	}
	for _, tt := range tests {
		if got := stageRank(tt.stages); got != tt.want {
			t.Errorf("stageRank(%v) = %d, want %d", tt.stages, got, tt.want)
		}
	}
}
