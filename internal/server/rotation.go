package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/rotor-secrets/rotor/internal/arn"
	"github.com/rotor-secrets/rotor/internal/auth"
	"github.com/rotor-secrets/rotor/internal/iam"

	"github.com/rotor-secrets/rotor/internal/password"
	"github.com/rotor-secrets/rotor/internal/rotation"
	"github.com/rotor-secrets/rotor/internal/rotation/builtin"
	"github.com/rotor-secrets/rotor/internal/rotation/custom"
	"github.com/rotor-secrets/rotor/internal/rotation/mysql"
	"github.com/rotor-secrets/rotor/internal/rotation/postgres"
	"github.com/rotor-secrets/rotor/internal/rotation/rabbitmq"
	redisrot "github.com/rotor-secrets/rotor/internal/rotation/redis"
	"github.com/rotor-secrets/rotor/internal/rotation/rotator"
	"github.com/rotor-secrets/rotor/internal/secrets"
)

// RotationConfig tunes the rotation engine.
type RotationConfig struct {
	// MinInterval is the shortest schedule accepted (AWS: 4h); lower it for
	// demos and tests.
	MinInterval time.Duration
	// MaxAttempts, RetryBase and RetryMax bound the retries of one rotation
	// before it waits for the next window.
	MaxAttempts int
	RetryBase   time.Duration
	RetryMax    time.Duration
	// PollInterval is how often the engine reads its queue.
	PollInterval time.Duration
	// CrashAfterStep is a test hook: kill the process (SIGKILL) right after
	// this step's completion is stored.
	CrashAfterStep string
}

// Built-in rotation function names (the NAME of
// arn:aws:lambda:REGION:ACCOUNT:function:NAME).
const (
	FnPostgresSingle      = "rotor-postgres-single-user"
	FnPostgresAlternating = "rotor-postgres-alternating-users"
	FnMySQLSingle         = "rotor-mysql-single-user"
	FnMySQLAlternating    = "rotor-mysql-alternating-users"
	FnRedisSingle         = "rotor-redis-single-user"
	FnRabbitSingle        = "rotor-rabbitmq-single-user"
	FnRabbitAlternating   = "rotor-rabbitmq-alternating-users"
)

// Characters that break connection strings, .pgpass files and URLs, per
// engine (as AWS's templates exclude them).
const (
	postgresExclude = `:/@"'\`
	mysqlExclude    = `/@"'\`
	// RabbitMQ accepts anything; applications paste passwords into
	// amqp:// URIs.
	rabbitExclude = `:/@%?#"'\ `
)

// registerBuiltins adds the built-in rotation functions to reg. Close the
// result when the engine has stopped: it closes the master connections the
// rotators keep between steps and rotations.
func registerBuiltins(reg *rotation.Registry, api builtin.Secrets) io.Closer {
	pw := func(exclude string) password.Options {
		o := password.Defaults()
		o.ExcludeCharacters = exclude
		return o
	}
	pg := postgres.New(postgres.Options{})
	my := mysql.New(mysql.Options{})
	rd := redisrot.New(redisrot.Options{})
	rb := rabbitmq.New(rabbitmq.Options{})
	pgEngines := []string{"postgres", "aurora-postgresql"}
	myEngines := []string{"mysql", "mariadb", "aurora-mysql", "aurora"}
	for _, f := range []struct {
		name     string
		rot      rotator.Rotator
		strategy rotator.Strategy
		engines  []string
		port     int
		maxUser  int
		exclude  string
	}{
		{FnPostgresSingle, pg, rotator.SingleUser, pgEngines, 5432, 63, postgresExclude},
		{FnPostgresAlternating, pg, rotator.AlternatingUsers, pgEngines, 5432, 63, postgresExclude},
		{FnMySQLSingle, my, rotator.SingleUser, myEngines, 3306, 80, mysqlExclude},
		{FnMySQLAlternating, my, rotator.AlternatingUsers, myEngines, 3306, 80, mysqlExclude},
		// Redis keeps two live passwords (setSecret adds, finishSecret drops
		// the old one): single-user without downtime.
		{FnRedisSingle, rd, rotator.SingleUser, redisrot.Engines(), redisrot.DefaultPort, 128, postgresExclude},
		// RabbitMQ through its management API (the secret's port).
		{FnRabbitAlternating, rb, rotator.AlternatingUsers, rabbitmq.Engines(), rabbitmq.DefaultPort, rabbitmq.MaxUserLen, rabbitExclude},
		{FnRabbitSingle, rb, rotator.SingleUser, rabbitmq.Engines(), rabbitmq.DefaultPort, rabbitmq.MaxUserLen, rabbitExclude},
	} {
		reg.Register(f.name, builtin.New(builtin.Config{
			Secrets: api, Rotator: f.rot, Strategy: f.strategy, Engines: f.engines,
			DefaultPort: f.port, MaxUserLen: f.maxUser, Password: pw(f.exclude),
		}))
	}
	return closers{pg, my, rd, rb}
}

// closers closes several things.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// rotationAPI is the secrets API as built-in rotation functions use it: the
// domain service, called directly.
type rotationAPI struct{ svc *secrets.Service }

func (a rotationAPI) Describe(ctx context.Context, id string) (builtin.Description, error) {
	d, err := a.svc.DescribeSecret(ctx, id)
	if err != nil {
		return builtin.Description{}, err
	}
	return builtin.Description{
		ARN:             d.ARN,
		RotationEnabled: d.RotationEnabled != nil && *d.RotationEnabled,
		Versions:        d.VersionIdsToStages,
	}, nil
}

func (a rotationAPI) Value(ctx context.Context, id, versionID, stage string) (string, error) {
	v, err := a.svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: id, VersionID: versionID, VersionStage: stage})
	if secrets.KindOf(err) == secrets.KindNotFound {
		return "", builtin.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	if v.Value.Binary() {
		return "", errors.New("the secret holds a SecretBinary; database rotation needs a JSON SecretString")
	}
	return string(v.Value.Reveal()), nil
}

func (a rotationAPI) PutPending(ctx context.Context, id, token, value string) error {
	_, err := a.svc.PutSecretValue(ctx, secrets.PutSecretValueInput{
		SecretID: id, ClientRequestToken: token, Value: secrets.StringValue(value),
		VersionStages: []string{secrets.StagePending},
	})
	return err
}

func (a rotationAPI) MoveCurrent(ctx context.Context, id, token, from string) error {
	_, err := a.svc.UpdateSecretVersionStage(ctx, secrets.UpdateSecretVersionStageInput{
		SecretID: id, VersionStage: secrets.StageCurrent, MoveToVersionID: token, RemoveFromVersionID: from,
	})
	return err
}

// customRuntime runs the custom rotation functions in catalog: exec
// functions call this node's API with session credentials from sessions,
// which allow only a rotation function's actions on the secret rotated.
func customRuntime(cfg Config, catalog *custom.Catalog, sessions *auth.SessionKeys, svc *secrets.Service, log *slog.Logger) *custom.Runtime {
	return &custom.Runtime{
		Catalog: catalog, Region: cfg.Region, Logger: log,
		Endpoint: func() string {
			if p := cfg.endpoint.Load(); p != nil {
				return *p
			}
			return ""
		},
		Issue: func(name, secretARN string, ttl time.Duration) (custom.Credentials, func(), error) {
			principal := "arn:aws:sts::" + cfg.AccountID + ":assumed-role/rotor-rotation-function/" + name
			id, secret, revoke, err := sessions.Issue(principal, custom.SessionPolicy(secretARN), ttl)
			return custom.Credentials{AccessKeyID: id, SecretAccessKey: secret}, revoke, err
		},
		Values: func(ctx context.Context, secretARN string) []string {
			ctx = iam.System(ctx)
			var out []string
			for _, stage := range []string{secrets.StageCurrent, secrets.StagePending, secrets.StagePrevious} {
				v, err := svc.GetSecretValue(ctx, secrets.GetSecretValueInput{SecretID: secretARN, VersionStage: stage})
				if err == nil && !v.Value.Binary() {
					out = append(out, string(v.Value.Reveal()))
				}
			}
			return out
		},
	}
}

// functionAdmin is the catalog of custom functions as the API serves it.
type functionAdmin struct {
	*custom.Catalog
	region, account string
}

func (f functionAdmin) FunctionARN(name string) string {
	return arn.Function(f.region, f.account, name)
}
