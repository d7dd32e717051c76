package postgres

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// sslRequestCode is the SSLRequest message's request code (1234 << 16 | 5679).
const sslRequestCode = 80877103

// preferDial negotiates sslmode=prefer as libpq does, on one connection:
// it sends SSLRequest and, when the server answers 'S', runs the TLS
// handshake (tlsConfig: no certificate verification, as prefer is); when it
// answers 'N', it goes on in plaintext on the same connection. pgx instead
// gives up the refused connection and opens a second one, which costs
// PostgreSQL a second backend per login. A failed handshake falls back to
// a plaintext connection, as libpq's does.
func preferDial(dial pgconn.DialFunc, tlsConfig *tls.Config) pgconn.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tlsOK, err := sslRequest(ctx, conn)
		if err != nil {
			conn.Close()
			return nil, err
		}
		if !tlsOK {
			return conn, nil
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err == nil {
			return tc, nil
		}
		conn.Close()
		return dial(ctx, network, addr)
	}
}

// sslRequest asks the server on conn for TLS and reports its answer.
func sslRequest(ctx context.Context, conn net.Conn) (bool, error) {
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
		defer conn.SetDeadline(time.Time{})
	}
	var msg [8]byte
	binary.BigEndian.PutUint32(msg[0:4], 8)
	binary.BigEndian.PutUint32(msg[4:8], sslRequestCode)
	if _, err := conn.Write(msg[:]); err != nil {
		return false, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return false, err
	}
	switch answer[0] {
	case 'S':
		return true, nil
	case 'N':
		return false, nil
	}
	return false, errors.New("unexpected answer to SSLRequest")
}
