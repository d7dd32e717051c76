// Package e2e holds Rotor's end-to-end tests, and nothing else: it has no
// code a program could import.
//
// The tests build the rotor binary once (TestMain), start it as a real
// process with `rotor server --listen 127.0.0.1:0 --data-dir <temp dir>`,
// and drive it the way users do: through aws-sdk-go-v2's Secrets Manager
// client, through raw SigV4-signed HTTP, and through the AWS CLI configured
// only by environment variables and the credentials file the server writes.
// They prove that every operation behaves as AWS Secrets Manager does
// (error codes included), that the process starts, restarts and shuts down
// cleanly, and that no secret value reaches the logs or the data directory
// in clear.
//
// Run them with the rest of the suite (`make test`) or alone:
//
//	go test -race -count=1 ./e2e/
//
// The AWS CLI tests need `aws` (v1, botocore-based) on PATH; `make test`
// installs it. Set ROTOR_E2E_RACE=1 to build the server itself with -race
// as well, which makes the run slower but finds data races in the server;
// set ROTOR_E2E_BIN to test a binary built elsewhere instead of building one.
package e2e
