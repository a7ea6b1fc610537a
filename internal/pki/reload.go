package pki

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// keyPair is a certificate and key read from files and read again when
// either file changes, so a renewed certificate is used from the next
// handshake on, without a restart. A pair that fails to load (files caught
// half-written during a renewal) leaves the last good one in use until
// the files are whole again.
type keyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time
}

// loadKeyPair reads the pair once; it fails when the files do not hold one.
func loadKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

// reload reads the files when their modification times differ from the
// pair in use.
func (kp *keyPair) reload() error {
	certInfo, err := os.Stat(kp.certFile)
	if err != nil {
		return err
	}
	keyInfo, err := os.Stat(kp.keyFile)
	if err != nil {
		return err
	}
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if kp.cert != nil && certInfo.ModTime().Equal(kp.certMod) && keyInfo.ModTime().Equal(kp.keyMod) {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("load %s and %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cert, kp.certMod, kp.keyMod = &cert, certInfo.ModTime(), keyInfo.ModTime()
	return nil
}

// current is the pair to present: read again if the files changed, the
// last good one if they cannot be read now.
func (kp *keyPair) current() *tls.Certificate {
	_ = kp.reload() // on error the last good pair stays
	kp.mu.Lock()
	defer kp.mu.Unlock()
	return kp.cert
}

// ClientCertificate reads a client's certificate pair for
// tls.Config.GetClientCertificate: read again when its files change,
// presented only to servers that would accept it.
func ClientCertificate(certFile, keyFile string) (func(*tls.CertificateRequestInfo) (*tls.Certificate, error), error) {
	kp, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return kp.getClientCertificate, nil
}

func (kp *keyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.current(), nil
}

// getClientCertificate presents the pair only to a server that would
// accept it (its issuer among the server's acceptable CAs), as crypto/tls
// does with tls.Config.Certificates: to any other the client shows none.
func (kp *keyPair) getClientCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	cert := kp.current()
	if cri.SupportsCertificate(cert) != nil {
		return &tls.Certificate{}, nil
	}
	return cert, nil
}
