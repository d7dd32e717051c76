package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/iam"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

const (
	testKeyID  = "AKRTTESTTESTTEST0001"
	testSecret = "test-secret-access-key-0123456789abcdef"
)

func TestConfigValidate(t *testing.T) {
	good := Config{Listen: DefaultListen, DataDir: "d", Region: DefaultRegion, AccountID: DefaultAccountID}
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"listen", func(c *Config) { c.Listen = "nonsense" }, "listen"},
		{"data dir", func(c *Config) { c.DataDir = "" }, "data-dir"},
		{"region", func(c *Config) { c.Region = "Mars" }, "region"},
		{"account", func(c *Config) { c.AccountID = "12" }, "account-id"},
		{"tls half", func(c *Config) { c.TLSCert = "c.pem" }, "tls-cert"},
		{"root key half", func(c *Config) { c.RootAccessKeyID = testKeyID }, "root access key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.mod(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error about %s", err, c.want)
			}
		})
	}
	all := Config{}
	if err := all.Validate(); err == nil || strings.Count(err.Error(), "\n") < 3 {
		t.Fatalf("every error should be reported at once: %v", err)
	}
}

// openTestServer opens a server on a free loopback port with a fixed root key.
func openTestServer(tb testing.TB, opts ...func(*Config)) *Server {
	tb.Helper()
	cfg := Config{
		Listen: "127.0.0.1:0", DataDir: tb.TempDir(), Region: DefaultRegion, AccountID: DefaultAccountID,
		RootAccessKeyID: testKeyID, RootSecretAccessKey: testSecret,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestOpenTwiceSameDataDirKeepsKeys(t *testing.T) {
	s := openTestServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	c := sdkClient(s)
	if _, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String("k"), SecretString: aws.String("v")}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cfg := s.cfg
	cfg.Listen = "127.0.0.1:0"
	s2, err := Open(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	go s2.Run(ctx2)
	out, err := sdkClient(s2).GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("k")})
	if err != nil || aws.ToString(out.SecretString) != "v" {
		t.Fatalf("after reopen: %v %v", out, err)
	}
}

func TestHealthEndpoints(t *testing.T) {
	s := openTestServer(t)
	defer s.store.Close()
	for _, path := range []string{"/healthz", "/readyz"} {
		rec := httptest.NewRecorder()
		s.http.Handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 {
			t.Errorf("%s = %d %s", path, rec.Code, rec.Body)
		}
	}
}

func sdkClient(s *Server) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       DefaultRegion,
		BaseEndpoint: aws.String("http://" + s.Addr().String()),
		Credentials:  credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""),
		HTTPClient: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
		}},
	})
}

var benchValue = strings.Repeat("v", 200)

// BenchmarkGetSecretValueHandler measures the server side of GetSecretValue:
// SigV4 verification, decoding, the store read, decryption and encoding,
// without a network (a pre-signed request is replayed in process).
func BenchmarkGetSecretValueHandler(b *testing.B) {
	s := openTestServer(b)
	defer s.store.Close()
	ctx := context.Background()
	if _, err := s.service.CreateSecret(iam.System(ctx), createInput("bench")); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"SecretId":"bench"}`)
	req := httptest.NewRequest("POST", "http://127.0.0.1:7300/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", DefaultRegion, time.Now()); err != nil {
		b.Fatal(err)
	}
	header := req.Header.Clone()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("POST", "http://127.0.0.1:7300/", bytes.NewReader(body))
			r.Header = header.Clone()
			rec := httptest.NewRecorder()
			s.http.Handler.ServeHTTP(rec, r)
			if rec.Code != 200 {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkGetSecretValueSDK measures GetSecretValue through aws-sdk-go-v2
// over loopback HTTP keep-alive at 1 and 32 concurrent clients; ns/op is
// wall time per request across all clients (so req/s = 1e9 / ns/op).
func BenchmarkGetSecretValueSDK(b *testing.B) {
	b.Run("audit=fsync", func(b *testing.B) { benchGetSDK(b) })
	// The audit log fsynced every 10 ms instead of before every answer.
	b.Run("audit=10ms", func(b *testing.B) {
		benchGetSDK(b, func(c *Config) { c.AuditSyncEvery = 10 * time.Millisecond })
	})
}

func benchGetSDK(b *testing.B, opts ...func(*Config)) {
	s := openTestServer(b, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if _, err := s.service.CreateSecret(iam.System(context.Background()), createInput("bench")); err != nil {
		b.Fatal(err)
	}
	client := sdkClient(s)
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			b.ReportAllocs()
			var wg sync.WaitGroup
			per := (b.N + clients - 1) / clients
			errs := make(chan error, clients)
			b.ResetTimer()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						if _, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bench")}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per*clients)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

func createInput(name string) secrets.CreateSecretInput {
	return secrets.CreateSecretInput{Name: name, Value: secrets.StringValue(benchValue)}
}
