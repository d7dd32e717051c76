package rotator

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// TLSConfig is the client TLS configuration of an sslmode, as libpq defines
// the modes, for a driver that connects to host: "prefer" and "require"
// encrypt without authenticating the server; "verify-ca" checks the
// server's chain against roots (nil: the system's) but not its name;
// "verify-full" checks both. Any other mode ("disable", "allow", "") gets
// nil: no TLS.
func TLSConfig(mode, host string, roots *x509.CertPool) *tls.Config {
	switch mode {
	case "prefer", "require":
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // documented sslmode semantics
	case "verify-ca":
		return &tls.Config{
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: true, // the chain is verified below, the host name is not
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("server sent no certificate")
				}
				inter := x509.NewCertPool()
				for _, c := range cs.PeerCertificates[1:] {
					inter.AddCert(c)
				}
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
				return err
			},
		}
	case "verify-full":
		return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, RootCAs: roots}
	}
	return nil
}
