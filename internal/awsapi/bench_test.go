package awsapi

import (
	"context"
	"strings"
	"testing"

	"github.com/rotor-secrets/rotor/internal/secrets"
)

// BenchmarkDecodeEncode measures the GetSecretValue hot path of the protocol
// layer: decode the request body into the service input, encode a
// 1 KiB secret value as the response body.
func BenchmarkDecodeEncode(b *testing.B) {
	req := []byte(`{"SecretId":"arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/app/db-AbCdEf","VersionStage":"AWSCURRENT"}`)
	value := `{"engine":"postgres","host":"db.internal","port":5432,"username":"app","password":"` + strings.Repeat("x", 940) + `"}`
	f := &fakeBackend{out: secrets.SecretValue{
		ARN: arn1, Name: "prod/app/db", VersionID: ver1,
		Value: secrets.StringValue(value), VersionStages: []string{"AWSCURRENT"}, CreatedDate: tMillis,
	}}
	h, _ := testHandler(b, f, nil)
	op := operations[targetPrefix+"GetSecretValue"]
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(req) + len(value)))
	for b.Loop() {
		in, err := op.decode(req)
		if err != nil {
			b.Fatal(err)
		}
		out, err := op.call(ctx, h, in)
		if err != nil {
			b.Fatal(err)
		}
		body, err := encodeBody(out)
		if err != nil || len(body) < len(value) {
			b.Fatal(err)
		}
	}
}
