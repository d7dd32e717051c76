package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
)

// lambdaARNFormat turns a bare built-in name given to --function into a
// function ARN.
const lambdaARNFormat = "arn:aws:lambda:%s:000000000000:function:%s"

func (s *secretCLI) newRotateCmd() *cobra.Command {
	var (
		function, schedule, duration string
		afterDays                    int64
		noImmediate                  bool
		token                        string
	)
	cmd := &cobra.Command{
		Use:   "rotate ID",
		Short: "Configure rotation and start one (RotateSecret)",
		Long: `Configure a secret's rotation and start a rotation in the background.

--function takes a rotation function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)
or a built-in name: rotor-postgres-single-user, rotor-postgres-alternating-users,
rotor-mysql-single-user, rotor-mysql-alternating-users. Without --function the
secret's configured function is used. --schedule takes rate(N hours|days) or
cron(...); --after-days is AWS's AutomaticallyAfterDays. With
--no-rotate-immediately only the function's testSecret step runs now.`,
		Args: secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			in := &secretsmanager.RotateSecretInput{SecretId: &a[0]}
			if function != "" {
				if !strings.HasPrefix(function, "arn:") {
					function = fmt.Sprintf(lambdaARNFormat, c.region, function)
				}
				in.RotationLambdaARN = &function
			}
			if schedule != "" || duration != "" || afterDays != 0 {
				in.RotationRules = &types.RotationRulesType{}
				if schedule != "" {
					in.RotationRules.ScheduleExpression = &schedule
				}
				if duration != "" {
					in.RotationRules.Duration = &duration
				}
				if afterDays != 0 {
					in.RotationRules.AutomaticallyAfterDays = &afterDays
				}
			}
			if noImmediate {
				in.RotateImmediately = aws.Bool(false)
			}
			if token != "" {
				in.ClientRequestToken = &token
			}
			out, err := callAPI(cmd.Context(), c, c.client.RotateSecret, in)
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "rotating %s (pending version %s)\n", printable(aws.ToString(out.Name)), aws.ToString(out.VersionId))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&function, "function", "", "rotation function: a Lambda `ARN` or a built-in name")
	f.StringVar(&schedule, "schedule", "", "schedule `expression`: rate(...) or cron(...)")
	f.StringVar(&duration, "duration", "", "rotation window length, e.g. 2h")
	f.Int64Var(&afterDays, "after-days", 0, "rotate every `N` days (AutomaticallyAfterDays)")
	f.BoolVar(&noImmediate, "no-rotate-immediately", false, "only test the function now; rotate at the next window")
	f.StringVar(&token, "client-request-token", "", "version id of the new version (idempotency token)")
	return cmd
}

func (s *secretCLI) newCancelRotationCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel-rotation ID",
		Short: "Turn a secret's rotation off (CancelRotateSecret)",
		Args:  secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			out, err := callAPI(cmd.Context(), c, c.client.CancelRotateSecret, &secretsmanager.CancelRotateSecretInput{SecretId: &a[0]})
			if err != nil {
				return err
			}
			return s.print(out, func(w io.Writer) error {
				msg := fmt.Sprintf("rotation of %s is off", printable(aws.ToString(out.Name)))
				if v := aws.ToString(out.VersionId); v != "" {
					msg += fmt.Sprintf("; version %s still has AWSPENDING", v)
				}
				_, err := fmt.Fprintln(w, msg)
				return err
			})
		},
	}
}

// rotationStatus is rotor.GetRotationStatus's response.
type rotationStatus struct {
	ARN               string
	Name              string
	RotationEnabled   bool
	RotationLambdaARN string          `json:",omitempty"`
	RotationRules     json.RawMessage `json:",omitempty"`
	LastRotatedDate   *float64        `json:",omitempty"`
	NextRotationDate  *float64        `json:",omitempty"`
	InProgress        *struct {
		VersionId     string
		Mode          string
		Function      string
		NextStep      string
		Attempt       int
		NextRetryDate *float64 `json:",omitempty"`
		LastError     string   `json:",omitempty"`
		StartedDate   *float64 `json:",omitempty"`
		GaveUp        bool     `json:",omitempty"`
	} `json:",omitempty"`
	History []struct {
		VersionId   string
		Mode        string
		Function    string
		StartedDate *float64 `json:",omitempty"`
		EndedDate   *float64 `json:",omitempty"`
		Outcome     string   `json:",omitempty"`
		Attempts    int
		Error       string `json:",omitempty"`
	}
}

func (s *secretCLI) newRotationStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotation-status ID",
		Short: "Show a secret's rotation: current step, attempts, last error, recent rotations",
		Args:  secretArgs(1, false, "ID"),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			c, err := s.open(cmd)
			if err != nil {
				return err
			}
			var out rotationStatus
			raw, err := callRotor(cmd.Context(), c, "GetRotationStatus", map[string]string{"SecretId": a[0]}, &out)
			if err != nil {
				return err
			}
			if s.output != outputText {
				var buf bytes.Buffer
				if err := json.Indent(&buf, raw, "", "  "); err != nil {
					return err
				}
				buf.WriteByte('\n')
				_, err := s.e.stdout.Write(buf.Bytes())
				return err
			}
			return writeRotationStatus(s.e.stdout, out)
		},
	}
}

func epochText(f *float64) string {
	if f == nil {
		return "-"
	}
	return time.UnixMilli(int64(*f * 1000)).UTC().Format(time.RFC3339)
}

func writeRotationStatus(w io.Writer, st rotationStatus) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Name:              %s\n", printable(st.Name))
	fmt.Fprintf(&b, "RotationEnabled:   %v\n", st.RotationEnabled)
	if st.RotationLambdaARN != "" {
		fmt.Fprintf(&b, "Function:          %s\n", st.RotationLambdaARN)
	}
	if len(st.RotationRules) > 0 {
		fmt.Fprintf(&b, "Rules:             %s\n", st.RotationRules)
	}
	fmt.Fprintf(&b, "LastRotatedDate:   %s\n", epochText(st.LastRotatedDate))
	fmt.Fprintf(&b, "NextRotationDate:  %s\n", epochText(st.NextRotationDate))
	if p := st.InProgress; p != nil {
		fmt.Fprintf(&b, "In progress:       %s version %s, next step %s, attempt %d\n", p.Mode, p.VersionId, p.NextStep, p.Attempt)
		if p.GaveUp {
			fmt.Fprintf(&b, "                   gave up after its attempts; resumes at the next window or RotateSecret\n")
		} else if p.NextRetryDate != nil {
			fmt.Fprintf(&b, "Next retry:        %s\n", epochText(p.NextRetryDate))
		}
		if p.LastError != "" {
			fmt.Fprintf(&b, "Last error:        %s\n", printable(p.LastError))
		}
	}
	if len(st.History) > 0 {
		fmt.Fprintf(&b, "Recent rotations:\n")
		for _, r := range st.History {
			fmt.Fprintf(&b, "  %s  %-9s %-6s version %s, %d attempt(s)", epochText(r.EndedDate), r.Outcome, r.Mode, r.VersionId, r.Attempts)
			if r.Error != "" {
				fmt.Fprintf(&b, ": %s", printable(r.Error))
			}
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// callRotor calls one of Rotor's own operations (X-Amz-Target "rotor.OP"),
// which the SDK does not know: the same JSON protocol and SigV4 signature,
// built by hand. It returns the raw response body and decodes it into out.
func callRotor(ctx context.Context, c *clientConn, op string, in, out any) ([]byte, error) {
	if c.endpoint == "" {
		return nil, &hintError{msg: "rotor." + op + " is a Rotor operation", hint: "point --endpoint-url or AWS_ENDPOINT_URL_SECRETS_MANAGER at a Rotor server"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, c.explain(&credentialsError{err: err})
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "rotor."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "secretsmanager", c.region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, c.explain(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, c.explain(err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string
		}
		json.Unmarshal(raw, &e)
		if e.Type == "" {
			e.Type, e.Message = "HTTP"+resp.Status, strings.TrimSpace(string(raw))
		}
		return nil, c.explain(&smithy.GenericAPIError{Code: e.Type, Message: e.Message})
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("decode rotor.%s response: %v", op, err)
	}
	return raw, nil
}
