package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/dbtest"
	redisrot "github.com/rotor-secrets/rotor/internal/rotation/redis"
	"github.com/rotor-secrets/rotor/internal/server"
)

// Polls of a rotation's end: every rotatePoll while one rotation is timed,
// every batchPoll while many run (as internal/server's benchmarks do).
const (
	rotatePoll     = 2 * time.Millisecond
	batchPoll      = 20 * time.Millisecond
	rotationBound  = 2 * time.Minute
	userPrepareMax = 8 // database users created at once
)

// RotateOptions configure rotate.
type RotateOptions struct {
	Engines     []string       `json:"engines"`     // "postgres", "mariadb", "redis", "rabbitmq"
	Rotations   int            `json:"rotations"`   // timed one at a time, per built-in function
	Secrets     int            `json:"secrets"`     // N rotated together, per engine (alternating users)
	Concurrency int            `json:"concurrency"` // rotations requested at once in the batch
	Progress    func(Progress) `json:"-"`
}

// RotateResult is the outcome of rotate.
type RotateResult struct {
	Mode      string          `json:"mode"` // "rotate"
	Date      time.Time       `json:"date"`
	Machine   Machine         `json:"machine"`
	Options   RotateOptions   `json:"options"`
	Databases []Database      `json:"databases"`
	Functions []FunctionStats `json:"functions"`
	Batches   []BatchStats    `json:"batches"`
}

// Database is a throwaway database server a rotate run used.
type Database struct {
	Engine  string `json:"engine"`
	Version string `json:"version"`
}

// FunctionStats are the latencies of one built-in function's rotations,
// each from RotateSecret to the rotation recorded as succeeded (AWSCURRENT
// moved), taken one after another on one secret.
type FunctionStats struct {
	Function string  `json:"function"`
	Engine   string  `json:"engine"`
	Latency  Latency `json:"latency"`
}

// BatchStats are N secrets of one engine rotated with alternating users,
// Concurrency rotations requested at a time (the server's engine runs at
// most 8 at once, whatever the concurrency).
type BatchStats struct {
	Engine      string  `json:"engine"`
	Function    string  `json:"function"`
	Secrets     int     `json:"secrets"`
	Concurrency int     `json:"concurrency"`
	Wall        float64 `json:"wall_s"`
	PerSecond   float64 `json:"rotations_per_s"`
	Latency     Latency `json:"latency"`
}

// rotateEngines are the targets Rotate can start.
var rotateEngines = []string{"postgres", "mariadb", "redis", "rabbitmq"}

// rotateTarget is one database engine under a rotate run.
type rotateTarget struct {
	engine     string
	host       string
	port       int
	superUser  string
	superPass  string
	createUser func(ctx context.Context, password string) (string, error)
	single     string
	alt        string // "" when the engine has no alternating-users function
}

// batchFunction is the function of the batch pass: alternating users, or
// the single-user function of an engine without them (Redis: two live
// passwords make it zero-downtime too).
func (t rotateTarget) batchFunction() string {
	if t.alt != "" {
		return t.alt
	}
	return t.single
}

// Rotate measures complete rotations (createSecret, setSecret, testSecret
// with a fresh login, finishSecret) through a server in this process
// against throwaway database servers it starts (internal/dbtest; as root
// they run as the postgres and mysql users): latency per built-in function,
// and the wall time of N rotations per engine.
func Rotate(ctx context.Context, o RotateOptions) (_ *RotateResult, err error) {
	var errs []error
	for _, e := range o.Engines {
		if !slices.Contains(rotateEngines, e) {
			errs = append(errs, fmt.Errorf("engines: %q is not one of %s", e, strings.Join(rotateEngines, ", ")))
		}
	}
	if len(o.Engines) == 0 {
		errs = append(errs, errors.New("engines: name at least one"))
	}
	if o.Rotations < 1 || o.Secrets < 0 || o.Concurrency < 1 {
		errs = append(errs, errors.New("rotations and concurrency: want at least 1 (and secrets 0 or more)"))
	}
	if err := optionsError(errs); err != nil {
		return nil, err
	}
	res := &RotateResult{Mode: "rotate", Date: time.Now().UTC(), Machine: ThisMachine(), Options: o}

	// go-redis prints its dial failures (the readiness probes of a Redis
	// server starting) to standard error, over the progress line.
	redisrot.RouteClientLogs(slog.New(slog.DiscardHandler))
	report(o.Progress, "start databases")
	targets, stop, err := startDatabases(ctx, o.Engines)
	if err != nil {
		return nil, err
	}
	defer stop()
	for _, t := range targets {
		res.Databases = append(res.Databases, Database{Engine: t.engine, Version: t.version})
	}

	report(o.Progress, "start server")
	rs, err := startRotationServer(ctx)
	if err != nil {
		return nil, err
	}
	defer rs.stop(&err)

	for _, t := range targets {
		master, err := rs.createMaster(ctx, t.rotateTarget)
		if err != nil {
			return nil, err
		}
		for _, fn := range []string{t.single, t.alt} {
			if fn == "" {
				continue
			}
			names, err := rs.createDBSecrets(ctx, t.rotateTarget, master, fn, 1)
			if err != nil {
				return nil, err
			}
			st, err := runAll(ctx, Load{Concurrency: 1, Count: int64(o.Rotations), Phase: fn, Progress: o.Progress},
				func(ctx context.Context, _ int, _ int64) error { return rs.rotate(ctx, names[0], fn, rotatePoll) })
			if err != nil {
				return nil, err
			}
			res.Functions = append(res.Functions, FunctionStats{Function: fn, Engine: t.engine, Latency: st.Latency})
		}
		if o.Secrets == 0 {
			continue
		}
		report(o.Progress, fmt.Sprintf("create %d %s users", o.Secrets, t.engine))
		names, err := rs.createDBSecrets(ctx, t.rotateTarget, master, "batch", o.Secrets)
		if err != nil {
			return nil, err
		}
		batchFn := t.batchFunction()
		st, err := runAll(ctx, Load{Concurrency: o.Concurrency, Count: int64(len(names)), Phase: fmt.Sprintf("%s ×%d", batchFn, len(names)), Progress: o.Progress},
			func(ctx context.Context, _ int, seq int64) error {
				return rs.rotate(ctx, names[seq], batchFn, batchPoll)
			})
		if err != nil {
			return nil, err
		}
		res.Batches = append(res.Batches, BatchStats{Engine: t.engine, Function: batchFn, Secrets: len(names),
			Concurrency: o.Concurrency, Wall: st.Elapsed, PerSecond: float64(len(names)) / st.Elapsed, Latency: st.Latency})
	}
	return res, nil
}

// runAll is Run that stops at the first failure and returns it.
func runAll(ctx context.Context, l Load, op Op) (Stats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	st, err := Run(ctx, l, func(ctx context.Context, worker int, seq int64) error {
		err := op(ctx, worker, seq)
		if err != nil {
			cancel(err)
		}
		return err
	})
	if err != nil {
		return st, context.Cause(ctx)
	}
	return st, nil
}

// startedTarget is a rotateTarget with its server's version.
type startedTarget struct {
	rotateTarget
	version string
}

// startDatabases starts the engines' servers at once; stop closes them.
func startDatabases(ctx context.Context, engines []string) (targets []startedTarget, stop func(), err error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		closers []func() error
		errs    []error
		byName  = map[string]startedTarget{}
	)
	stop = func() {
		for _, c := range closers {
			c()
		}
	}
	for _, e := range slices.Compact(slices.Sorted(slices.Values(engines))) {
		wg.Go(func() {
			var (
				t     startedTarget
				close func() error
				err   error
			)
			switch e {
			case "postgres":
				var pg *dbtest.Postgres
				if pg, err = dbtest.StartPostgresServer(ctx); err == nil {
					close = pg.Close
					t = startedTarget{rotateTarget{"postgres", pg.Host, pg.Port, pg.SuperUser, pg.SuperPassword,
						func(ctx context.Context, pw string) (string, error) { return pg.CreateUserContext(ctx, "bench", pw) },
						server.FnPostgresSingle, server.FnPostgresAlternating}, pg.Version}
				}
			case "mariadb":
				var my *dbtest.MariaDB
				if my, err = dbtest.StartMariaDBServer(ctx); err == nil {
					close = my.Close
					t = startedTarget{rotateTarget{"mariadb", my.Host, my.Port, my.SuperUser, my.SuperPassword,
						func(ctx context.Context, pw string) (string, error) { return my.CreateUserContext(ctx, "bench", pw) },
						server.FnMySQLSingle, server.FnMySQLAlternating}, my.Version}
				}
			case "redis":
				var rd *dbtest.Redis
				if rd, err = dbtest.StartRedisServer(ctx); err == nil {
					close = rd.Close
					t = startedTarget{rotateTarget{"redis", rd.Host, rd.Port, rd.AdminUser, rd.AdminPassword,
						func(ctx context.Context, pw string) (string, error) {
							return rd.CreateUserContext(ctx, "bench", pw, "+ping")
						},
						server.FnRedisSingle, ""}, rd.Version}
				}
			case "rabbitmq":
				var rb *dbtest.RabbitMQ
				if rb, err = dbtest.StartRabbitMQServer(ctx); err == nil {
					close = rb.Close
					t = startedTarget{rotateTarget{"rabbitmq", rb.Host, rb.MgmtPort, rb.AdminUser, rb.AdminPassword,
						func(ctx context.Context, pw string) (string, error) { return rb.CreateUserContext(ctx, "bench", pw) },
						server.FnRabbitSingle, server.FnRabbitAlternating}, rb.Version}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			closers = append(closers, close)
			byName[e] = t
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, nil, err
	}
	for _, e := range engines { // in the order asked for
		if t, ok := byName[e]; ok {
			targets = append(targets, t)
			delete(byName, e)
		}
	}
	return targets, stop, nil
}

// rotationServer is a rotor server run in this process for rotate.
type rotationServer struct {
	dir    string
	cancel context.CancelFunc
	done   chan error
	client *secretsmanager.Client
	http   *http.Client
	url    string
	creds  aws.Credentials
}

func startRotationServer(ctx context.Context) (*rotationServer, error) {
	dir, err := os.MkdirTemp("", "rotor-bench-rotate-")
	if err != nil {
		return nil, err
	}
	id, secret, err := auth.GenerateKeyPair()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv, err := server.Open(ctx, server.Config{
		Listen: "127.0.0.1:0", DataDir: dir, Region: server.DefaultRegion, AccountID: server.DefaultAccountID,
		RootAccessKeyID: id, RootSecretAccessKey: secret,
		// The engine's own defaults: 5 attempts, 15 s first retry, 1 s
		// queue poll; RotateSecret kicks the engine, so no poll delays it.
		Rotation: server.RotationConfig{MinInterval: time.Hour},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rs := &rotationServer{dir: dir, cancel: cancel, done: make(chan error, 1),
		url: "http://" + srv.Addr().String(), creds: aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}}
	go func() { rs.done <- srv.Run(runCtx) }()
	rs.client = NewClient(rs.url, server.DefaultRegion, staticCreds(id, secret), 64)
	rs.http = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	return rs, nil
}

// stop shuts the server down and removes its directory.
func (rs *rotationServer) stop(err *error) {
	rs.cancel()
	if serr := <-rs.done; serr != nil && *err == nil {
		*err = serr
	}
	removeAll(rs.dir, err)
}

func (rs *rotationServer) createMaster(ctx context.Context, t rotateTarget) (string, error) {
	out, err := rs.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("bench/master/" + t.engine),
		SecretString: aws.String(mustJSON(map[string]any{"engine": t.engine, "host": t.host, "port": t.port,
			"username": t.superUser, "password": t.superPass})),
	})
	if err != nil {
		return "", fmt.Errorf("create the master secret: %w", err)
	}
	return aws.ToString(out.ARN), nil
}

// createDBSecrets creates n database users and an RDS-shaped secret for
// each, and returns the secrets' names.
func (rs *rotationServer) createDBSecrets(ctx context.Context, t rotateTarget, masterARN, tag string, n int) ([]string, error) {
	names := make([]string, n)
	_, err := runAll(ctx, Load{Concurrency: min(n, userPrepareMax), Count: int64(n)}, func(ctx context.Context, _ int, i int64) error {
		pw := fmt.Sprintf("Initial-Pw-%d-%d", i, time.Now().UnixNano())
		user, err := t.createUser(ctx, pw)
		if err != nil {
			return err
		}
		val := map[string]any{"engine": t.engine, "host": t.host, "port": t.port, "username": user, "password": pw, "masterarn": masterARN}
		if t.engine == "postgres" {
			val["dbname"] = "postgres"
		}
		names[i] = fmt.Sprintf("bench/%s/%s/%s", t.engine, tag, user)
		if _, err := rs.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(names[i]), SecretString: aws.String(mustJSON(val))}); err != nil {
			return fmt.Errorf("create secret %s: %w", names[i], err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create %d %s users and secrets: %w", n, t.engine, err)
	}
	return names, nil
}

// rotate starts a rotation of name with fn and polls rotor.GetRotationStatus
// every poll until it has ended, so that a rotation lasts from the
// RotateSecret call to the poll that saw it succeeded (at most poll more
// than the rotation itself).
func (rs *rotationServer) rotate(ctx context.Context, name, fn string, poll time.Duration) error {
	t0 := time.Now()
	out, err := rs.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(name),
		RotationLambdaARN: aws.String(fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", server.DefaultRegion, server.DefaultAccountID, fn))})
	if err != nil {
		return fmt.Errorf("RotateSecret %s: %w", name, err)
	}
	version := aws.ToString(out.VersionId)
	deadline := t0.Add(rotationBound)
	for {
		var st rotationStatus
		if err := rs.call(ctx, "GetRotationStatus", map[string]string{"SecretId": name}, &st); err != nil {
			return err
		}
		if st.InProgress == nil && len(st.History) > 0 && st.History[0].VersionId == version {
			if h := st.History[0]; h.Outcome != "succeeded" {
				return fmt.Errorf("rotation of %s with %s: %s %s", name, fn, h.Outcome, h.Error)
			}
			return nil
		}
		if p := st.InProgress; p != nil && p.Attempt > 0 {
			return fmt.Errorf("rotation of %s with %s failed at %s: %s", name, fn, p.NextStep, p.LastError)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rotation of %s with %s did not finish within %v", name, fn, rotationBound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// rotationStatus is the part of rotor.GetRotationStatus's response rotate
// reads.
type rotationStatus struct {
	InProgress *struct {
		VersionId string
		NextStep  string
		Attempt   int
		LastError string
	}
	History []struct {
		VersionId string
		Outcome   string
		Error     string
	}
}

// call makes a Rotor operation (rotor.OP), which the SDK does not know.
func (rs *rotationServer) call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rs.url+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "rotor."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, rs.creds, req, hex.EncodeToString(sum[:]), "secretsmanager", server.DefaultRegion, time.Now()); err != nil {
		return err
	}
	resp, err := rs.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("rotor.%s: HTTP %d: %s", op, resp.StatusCode, bytes.TrimSpace(raw))
	}
	return json.Unmarshal(raw, out)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
