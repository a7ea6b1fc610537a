package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// ReadPool reads a PEM bundle of CA certificates into a pool.
func ReadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// ServerTLS is the TLS of a server that presents certFile/keyFile and
// verifies client certificates against clientCAFile as clientAuth says:
// tls.RequireAndVerifyClientCert refuses a caller without a valid
// certificate at the handshake; tls.VerifyClientCertIfGiven lets it through
// to another authenticator (bearer tokens).
// The serving certificate is read again when its files change (a
// renewal), from the next handshake on; the client CA is read once.
func ServerTLS(certFile, keyFile, clientCAFile string, clientAuth tls.ClientAuthType) (*tls.Config, error) {
	kp, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	pool, err := ReadPool(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	return &tls.Config{
		GetCertificate: kp.getCertificate, ClientCAs: pool, ClientAuth: clientAuth,
		MinVersion: tls.VersionTLS12,
	}, nil
}

// ClientTLS is the TLS of a client that verifies servers against caFile
// and, when certFile is set, presents certFile/keyFile as its identity,
// read again when the files change.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, err := ReadPool(caFile)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		get, err := ClientCertificate(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.GetClientCertificate = get
	}
	return tc, nil
}
