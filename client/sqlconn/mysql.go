package sqlconn

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// MySQL returns a database/sql connector for MySQL and MariaDB that opens
// every connection through go-sql-driver/mysql with the credentials of
// secretID read from src, healing refused logins as the package comment
// says. The configuration starts from mysql.NewConfig; a host starting with
// "/" is a unix socket. Its Driver is go-sql-driver/mysql's.
func MySQL(src Source, secretID string, opts ...Option) driver.Connector {
	return &mysqlConnector{h: &healer{src: src, secretID: secretID, engine: mysqlEngine, opts: newOptions(opts)}}
}

type mysqlConnector struct{ h *healer }

func (c *mysqlConnector) Connect(ctx context.Context) (driver.Conn, error) {
	return login(ctx, c.h, func(ctx context.Context, cr creds) (driver.Conn, error) {
		cfg, err := c.h.opts.mysqlConfigFor(cr)
		if err != nil {
			return nil, err
		}
		connector, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("sqlconn: mysql configuration for %s: %w", cfg.Addr, err)
		}
		return connector.Connect(ctx)
	})
}

func (c *mysqlConnector) Driver() driver.Driver { return mysql.MySQLDriver{} }

// mysqlTLS maps WithSSLMode's values to the driver's tls parameter.
var mysqlTLS = map[string]string{
	"disable":     "false",
	"allow":       "preferred",
	"prefer":      "preferred",
	"require":     "skip-verify",
	"verify-ca":   "true",
	"verify-full": "true",
}

func (o *options) mysqlConfigFor(c creds) (*mysql.Config, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = c.username, c.password, c.dbname
	if strings.HasPrefix(c.host, "/") {
		cfg.Net, cfg.Addr = "unix", c.host
	} else {
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(c.host, strconv.Itoa(c.port))
	}
	cfg.Timeout = o.connectTimeout
	if o.sslMode != "" {
		tls, ok := mysqlTLS[o.sslMode]
		if !ok {
			return nil, fmt.Errorf("sqlconn: unknown sslmode %q (want disable, allow, prefer, require, verify-ca or verify-full)", o.sslMode)
		}
		cfg.TLSConfig = tls
	}
	if o.tlsConfig != nil {
		cfg.TLS = o.tlsConfig
	}
	if o.mysqlConfig != nil {
		o.mysqlConfig(cfg)
	}
	return cfg, nil
}
