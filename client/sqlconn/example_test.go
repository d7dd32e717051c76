package sqlconn_test

import (
	"context"
	"database/sql"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rotor-secrets/rotor/client"
	"github.com/rotor-secrets/rotor/client/sqlconn"
)

// newCache returns a cache over Secrets Manager (Rotor or AWS), configured
// from the environment: AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_REGION, ….
func newCache(ctx context.Context) *client.Cache {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	return client.New(secretsmanager.NewFromConfig(cfg), client.Config{TTL: time.Hour})
}

// An application opens its database through the connector; every new
// connection reads the secret from the cache and a rotation never makes a
// query fail.
func ExamplePostgres() {
	ctx := context.Background()
	cache := newCache(ctx)
	defer cache.Close()

	db := sql.OpenDB(sqlconn.Postgres(cache, "prod/app/db",
		sqlconn.WithSSLMode("verify-full"),
		sqlconn.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
	))
	defer db.Close()

	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil {
		log.Fatal(err)
	}
	log.Printf("%d orders", n)
}

func ExampleMySQL() {
	ctx := context.Background()
	cache := newCache(ctx)
	defer cache.Close()

	db := sql.OpenDB(sqlconn.MySQL(cache, "prod/app/mysql",
		sqlconn.WithConnectTimeout(5*time.Second),
		sqlconn.WithMySQLConfig(func(c *mysql.Config) { c.ParseTime = true }),
	))
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		log.Fatal(err)
	}
}

// A pgxpool gets its credentials from the hook; an Acquire refused during a
// rotation is retried once by the application.
func ExamplePgxBeforeConnect() {
	ctx := context.Background()
	cache := newCache(ctx)
	defer cache.Close()

	cfg, err := pgxpool.ParseConfig("pool_max_conns=10")
	if err != nil {
		log.Fatal(err)
	}
	cfg.BeforeConnect = sqlconn.PgxBeforeConnect(cache, "prod/app/db")
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	conn, err := pool.Acquire(ctx)
	if sqlconn.IsAuthFailure(err) {
		conn, err = pool.Acquire(ctx) // this connection uses refreshed credentials
	}
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Release()
}
