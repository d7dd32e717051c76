package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/rotor-secrets/rotor/client"
	"github.com/rotor-secrets/rotor/internal/agent"
)

// startAgentPush subscribes the agent to the Rotor server's stream of
// staging-label changes (client.StartPush): each change invalidates the
// agent's cache for that secret, so the next HTTP read fetches the new
// value, and wakes the file outputs of that secret. The subscription covers
// every secret the credentials may read, not only the file outputs', since
// applications may ask the agent for any. After a gap in the stream the
// file outputs' secrets are re-read at once; the others catch up within
// ttl_seconds. Against a server without the stream (AWS Secrets Manager)
// the subscription gives up after its first answer and the TTL alone keeps
// values fresh. The returned stop waits for the subscription's goroutines.
func startAgentPush(ctx context.Context, a *agent.Agent, conn *clientConn, log *slog.Logger) (stop func(), err error) {
	if conn.endpoint == "" {
		return nil, errors.New("push needs a Rotor endpoint; AWS Secrets Manager has no label-change stream")
	}
	p, err := client.StartPush(ctx, a.Cache(), client.PushConfig{
		Endpoint:    conn.endpoint,
		Region:      conn.region,
		Credentials: conn.creds,
		Logger:      log,
		OnChange: func(c client.Change) {
			if c.Resync {
				a.Resync()
				return
			}
			a.Notify(c.ARN, c.Name)
		},
	})
	if err != nil {
		return nil, err
	}
	return p.Stop, nil
}
