// Package dbtest starts real PostgreSQL and MariaDB servers for tests, and
// Redis servers and RabbitMQ nodes for the rotators of those (redis.go:
// [StartRedis], [StartRedisTLS], a fresh server per test, milliseconds to
// start; rabbitmq.go: [StartRabbitMQ], and [SharedRabbitMQ] under
// [RabbitMQMain], since a node takes seconds). Every test in this repository
// that needs one gets it from here, so that rotation is always proven
// against a server that checks passwords.
//
// # What callers get
//
// [StartPostgres] and [StartMariaDB] start a dedicated server for one test,
// stopped and deleted in t.Cleanup; use them when the test stops the server,
// changes its configuration or needs it to itself. [SharedPostgres] and
// [SharedMariaDB] return one server per test binary, started on first use and
// stopped when the binary's tests end; they need the package's TestMain to be
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// and they fail the test otherwise, so that no server outlives its tests.
// On a shared server, tests isolate themselves with [Postgres.CreateDatabase]
// and [Postgres.CreateUser] (and the MariaDB equivalents), which return names
// unique within the server; nothing is dropped afterwards, because the server
// is discarded with the binary.
//
// A caller that is not a test (rotor bench rotate) uses
// [StartPostgresServer] and [StartMariaDBServer], which take a context and
// return an error, closes the server with [Postgres.Close] or
// [MariaDB.Close], and creates users with CreateUserContext. The testing.TB
// functions are thin wrappers around the same code. The package still
// imports "testing" (Main, the TB helpers), which costs a non-test binary
// nothing but a few kilobytes: the testing flags are only registered by a
// test binary's testing.Init.
//
// Each server listens on 127.0.0.1 on a free port (never the system services'
// 5432 or 3306), keeps its data, sockets and log in a fresh temporary directory
// and is tuned for speed, not durability (fsync off). PostgreSQL authenticates
// every connection, local and TCP, with scram-sha-256; MariaDB with
// mysql_native_password and has no anonymous accounts. After every start the
// helper logs in as the superuser with a wrong password and fails the test
// unless the server refuses (SQLSTATE 28P01, MySQL error 1045): it refuses to
// run against a server that accepts a wrong password, such as a PostgreSQL
// server with trust authentication or a MariaDB started with
// --skip-grant-tables, because such a server proves nothing about rotation.
//
// # Binaries and users
//
// The servers run from the machine's binaries: initdb and postgres from the
// newest /usr/lib/postgresql/*/bin (or from PATH), mariadb-install-db and
// mariadbd. scripts/test-deps.sh installs them (Debian packages postgresql and
// mariadb-server); when they are missing the test fails with a message naming
// the package; it is never skipped. When the tests run as root, as CI does,
// the servers run as the postgres and mysql system users (nobody if those do
// not exist), because initdb and postgres refuse to run as root; otherwise
// they run as the current user.
//
// # Errors and waiting
//
// Methods that take a testing.TB (Create…, Start, Stop) fail the test on
// error; the others (CanLogin, Exec, ExecIn) return the driver's error
// unchanged, so callers can inspect it with errors.As (*pgconn.PgError,
// *mysql.MySQLError) or with [IsAuthFailure], which tells a refused login
// from a server that is down. Every wait is a bounded poll; when one gives
// up, or a server fails to start, the failure message ends with the tail of
// the server's log ([Postgres.LogPath], [MariaDB.LogPath]), and a dedicated
// server's log is printed when its test fails.
//
// # Processes
//
// Servers are child processes of the test binary (or of rotor bench). They
// are stopped on cleanup or Close (PostgreSQL fast shutdown, MariaDB SIGTERM;
// SIGKILL after a bound) and carry a parent-death signal, so a process that
// crashes does not leave them running; only its temporary directory (named
// rotor-dbtest-*) remains.
//
// # Concurrency
//
// All methods are safe for concurrent use, and any number of servers may run
// at once. Stop and Start may only be called on dedicated servers.
package dbtest
