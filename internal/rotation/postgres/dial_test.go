package postgres

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer answers SSLRequest with answer and then, on the same
// connection (in TLS after 'S'), reads "ping" and writes "pong". It
// counts the connections it accepts.
func fakeServer(t *testing.T, answer byte) (addr string, accepted *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cert := selfSigned(t)
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				var req [8]byte
				if _, err := io.ReadFull(c, req[:]); err != nil ||
					binary.BigEndian.Uint32(req[:4]) != 8 || binary.BigEndian.Uint32(req[4:]) != sslRequestCode {
					return
				}
				c.Write([]byte{answer})
				var rw io.ReadWriter = c
				if answer == 'S' {
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
					if tc.Handshake() != nil {
						return
					}
					rw = tc
				}
				var ping [4]byte
				if _, err := io.ReadFull(rw, ping[:]); err == nil && string(ping[:]) == "ping" {
					rw.Write([]byte("pong"))
				}
			}()
		}
	}()
	return l.Addr().String(), accepted
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// sslmode=prefer costs one connection whatever the server answers, and
// uses TLS when the server offers it.
func TestPreferDial(t *testing.T) {
	var d net.Dialer
	for _, tc := range []struct {
		answer  byte
		wantTLS bool
	}{{'N', false}, {'S', true}} {
		t.Run(string(tc.answer), func(t *testing.T) {
			addr, accepted := fakeServer(t, tc.answer)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			dial := preferDial(d.DialContext, &tls.Config{InsecureSkipVerify: true})
			c, err := dial(ctx, "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, isTLS := c.(*tls.Conn); isTLS != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", isTLS, tc.wantTLS)
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			var pong [4]byte
			if _, err := io.ReadFull(c, pong[:]); err != nil || string(pong[:]) != "pong" {
				t.Fatalf("read %q, %v; want pong", pong, err)
			}
			if n := accepted.Load(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
	t.Run("a server that never answers: the context bounds the negotiation", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		c, err := preferDial(d.DialContext, &tls.Config{InsecureSkipVerify: true})(ctx, "tcp", l.Addr().String())
		if err == nil {
			c.Close()
			t.Fatal("no error")
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("took %v", elapsed)
		}
	})
	t.Run("unexpected answer", func(t *testing.T) {
		addr, _ := fakeServer(t, 'E')
		if c, err := preferDial(d.DialContext, &tls.Config{InsecureSkipVerify: true})(t.Context(), "tcp", addr); err == nil {
			c.Close()
			t.Fatal("no error")
		}
	})
}
