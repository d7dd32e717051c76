package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// requestTimeout bounds one request of a run, so that a server that hangs
// shows as Timeout errors instead of a run that never ends.
const requestTimeout = 30 * time.Second

// NewClient returns the client every mode measures with: aws-sdk-go-v2,
// SigV4 signing, HTTP/1.1 keep-alive with an idle connection kept for each
// of conns concurrent callers, and no retries (a failure is counted, not
// hidden behind a retry and its backoff).
func NewClient(endpoint, region string, creds aws.CredentialsProvider, conns int) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  creds,
		Retryer:      aws.NopRetryer{},
		HTTPClient: &http.Client{Transport: &http.Transport{
			Proxy:               nil, // loopback benchmarks must not go through HTTP_PROXY
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     time.Minute,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		}},
	})
}

// value returns a secret value of size bytes: printable ASCII that JSON
// carries unescaped, like most real secrets.
func value(r *rand.Rand, size int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	b := make([]byte, size)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// Ceiling is a trivial HTTP server in the benchmark's own process that
// answers every Secrets Manager request with a fixed body the size of
// Rotor's response (GetSecretValue with a value of the benchmark's size, or
// PutSecretValue), without verifying anything. Driven by the same client
// and HTTP stack as a real run, it measures the loopback limit of the
// machine: client, SigV4 signing, HTTP and the response parsing, with no
// server work.
type Ceiling struct {
	Endpoint string
	srv      *http.Server
}

// StartCeiling starts a Ceiling on a free loopback port; valueSize is the
// size of the SecretString its GetSecretValue answer carries.
func StartCeiling(valueSize int) (*Ceiling, error) {
	get, put := ceilingBodies(valueSize)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		body := get
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutSecretValue") {
			body = put
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-Requestid", "00000000-0000-4000-8000-000000000000")
		w.Write(body)
	})
	c := &Ceiling{Endpoint: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}}
	go c.srv.Serve(ln)
	return c, nil
}

// Close stops the server.
func (c *Ceiling) Close() error { return c.srv.Close() }

// ceilingBodies returns the bodies Rotor would send for GetSecretValue of a
// valueSize-byte SecretString and for PutSecretValue.
func ceilingBodies(valueSize int) (get, put []byte) {
	const (
		arn     = "arn:aws:secretsmanager:us-east-1:000000000000:secret:bench/ceiling/000000-AbCdEf"
		name    = "bench/ceiling/000000"
		version = "6f1c2a4e-8b1d-4c3e-9f5a-0d7e8c9b1a2f"
	)
	get, _ = json.Marshal(map[string]any{
		"ARN": arn, "Name": name, "VersionId": version, "VersionStages": []string{"AWSCURRENT"},
		"SecretString": value(rand.New(rand.NewPCG(1, 2)), valueSize), "CreatedDate": 1.764460800123e9,
	})
	put, _ = json.Marshal(map[string]any{
		"ARN": arn, "Name": name, "VersionId": version, "VersionStages": []string{"AWSCURRENT"},
	})
	return get, put
}

// secretName is the name of the i-th secret of a run.
func secretName(prefix string, i int) string { return fmt.Sprintf("%s/%07d", prefix, i) }

// runID is a random tag that keeps the secrets of concurrent or repeated
// runs against one server apart.
func runID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

// createSecrets creates the named secrets with values of size bytes,
// concurrency at a time.
func createSecrets(ctx context.Context, c *secretsmanager.Client, names []string, size, concurrency int, progress func(Progress)) (Stats, error) {
	n := len(names)
	st, err := Run(ctx, Load{Concurrency: min(concurrency, n), Count: int64(n), Phase: "create", Progress: progress},
		func(ctx context.Context, worker int, seq int64) error {
			r := rand.New(rand.NewPCG(uint64(seq), 7))
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
				Name: aws.String(names[seq]), SecretString: aws.String(value(r, size)),
			})
			return err
		})
	if err != nil {
		return st, err
	}
	if st.Errors > 0 {
		return st, fmt.Errorf("creating %d secrets: %d failed (%s)", n, st.Errors, codes(st.ErrorCodes))
	}
	return st, nil
}

// deleteSecrets removes the secrets a run created on a server it did not
// start, those it did not get to create too; failures are returned joined,
// after trying every secret.
func deleteSecrets(ctx context.Context, c *secretsmanager.Client, names []string, concurrency int) error {
	if len(names) == 0 {
		return nil
	}
	var failed []error
	st, err := Run(ctx, Load{Concurrency: min(concurrency, len(names)), Count: int64(len(names))},
		func(ctx context.Context, worker int, seq int64) error {
			ctx, cancel := context.WithTimeout(ctx, requestTimeout)
			defer cancel()
			_, err := c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
				SecretId: aws.String(names[seq]), ForceDeleteWithoutRecovery: aws.Bool(true),
			})
			if ErrorCode(err) == "ResourceNotFoundException" {
				return nil
			}
			return err
		})
	if err != nil {
		failed = append(failed, err)
	}
	if st.Errors > 0 {
		failed = append(failed, fmt.Errorf("deleting the benchmark's %d secrets: %d failed (%s)", len(names), st.Errors, codes(st.ErrorCodes)))
	}
	return errors.Join(failed...)
}

// codes formats error counts for a message.
func codes(m map[string]int64) string {
	var parts []string
	for code, n := range m {
		parts = append(parts, fmt.Sprintf("%s ×%d", code, n))
	}
	return strings.Join(parts, ", ")
}

// staticCreds is a credentials provider for a fixed key pair.
func staticCreds(id, secret string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(id, secret, "")
}
