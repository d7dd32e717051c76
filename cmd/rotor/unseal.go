package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-secrets/rotor/internal/keyring"
	"github.com/rotor-secrets/rotor/internal/server"
)

// unsealError is the server's refusal of an unseal: exit status 1, with a
// hint.
type unsealError struct {
	code, msg string
}

func (e *unsealError) Error() string { return fmt.Sprintf("unseal refused: %s (%s)", e.msg, e.code) }

func (e *unsealError) Hint() string {
	switch e.code {
	case "ThrottlingException":
		return "the server takes one attempt per client every half second; wait and retry"
	case "InvalidPassphraseException":
		return "the server is still sealed; nothing changed"
	}
	return ""
}

func newUnsealCmd(e *env) *cobra.Command {
	var (
		endpoint string
		passFile string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "unseal",
		Short: "Give a sealed server its passphrase",
		Long: `Unseal a server started with --master-key-source passphrase and no
--passphrase-file: send the passphrase to its rotor.Unseal operation, which
opens <data-dir>/master.seal (or, on the very first start, creates it).

The passphrase is read from --passphrase-file (without one trailing newline),
or else one line from standard input. The line is not hidden as it is typed:
prefer --passphrase-file, or pipe it in.

The endpoint is --endpoint, else AWS_ENDPOINT_URL_SECRETS_MANAGER or
AWS_ENDPOINT_URL, else ` + defaultEndpoint + `. Over plain HTTP the passphrase
travels in clear: use an https:// endpoint beyond the loopback interface
(AWS_CA_BUNDLE names extra CA certificates to trust).

Exit status: 0 unsealed (or already unsealed), 1 refused or failed, 2 usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ep := endpoint
			if ep == "" {
				ep = firstNonEmpty(e.getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER"), e.getenv("AWS_ENDPOINT_URL"), defaultEndpoint)
			}
			if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
				return usageError(fmt.Errorf("endpoint %q: want http:// or https://", ep))
			}
			pass, err := readUnsealPassphrase(e, passFile)
			if err != nil {
				return err
			}
			defer clear(pass)
			hc, err := unsealHTTPClient(e.getenv("AWS_CA_BUNDLE"), timeout)
			if err != nil {
				return err
			}
			if err := unseal(cmd.Context(), hc, ep, pass); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "unsealed")
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	f := cmd.Flags()
	f.StringVar(&endpoint, "endpoint", "", "the server's `URL`")
	f.StringVar(&passFile, "passphrase-file", "", "read the passphrase from `FILE` instead of standard input")
	f.DurationVar(&timeout, "timeout", defaultTimeout, "give up after this `duration`")
	return cmd
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// readUnsealPassphrase reads the passphrase from path, or a line of stdin.
func readUnsealPassphrase(e *env, path string) ([]byte, error) {
	var r io.Reader
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		defer f.Close()
		r = f
	} else {
		if f, ok := e.stdin.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				fmt.Fprint(e.stderr, "Passphrase (shown as typed; --passphrase-file avoids that): ")
			}
		}
		r = e.stdin
	}
	br := bufio.NewReaderSize(io.LimitReader(r, keyring.MaxPassphraseLen+3), keyring.MaxPassphraseLen+3)
	line, err := br.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		clear(line)
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	pass := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	out := append([]byte(nil), pass...)
	clear(line)
	if len(out) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if len(out) > keyring.MaxPassphraseLen {
		clear(out)
		return nil, fmt.Errorf("passphrase longer than %d bytes", keyring.MaxPassphraseLen)
	}
	return out, nil
}

func unsealHTTPClient(caBundle string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caBundle != "" {
		pem, err := os.ReadFile(caBundle)
		if err != nil {
			return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE %s: no PEM certificate", caBundle)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// unseal sends pass to the server's rotor.Unseal operation.
func unseal(ctx context.Context, hc *http.Client, endpoint string, pass []byte) error {
	body, err := json.Marshal(struct{ Passphrase string }{string(pass)})
	if err != nil {
		return err
	}
	defer clear(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return usageError(fmt.Errorf("endpoint: %w", err))
	}
	req.Header.Set("X-Amz-Target", server.UnsealTarget)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var ae struct {
		Type    string `json:"__type"`
		Message string
	}
	if json.Unmarshal(b, &ae) != nil || ae.Type == "" {
		return fmt.Errorf("unseal: %s from %s", resp.Status, endpoint)
	}
	return &unsealError{code: ae.Type, msg: ae.Message}
}
