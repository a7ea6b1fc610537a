// Package pki is Skiff's cluster public-key infrastructure: a cluster CA, the
// serving certificates of the apiserver and kubelets, and the client
// certificates that identify components and people (CN = user, O = groups),
// all ECDSA P-256 made with crypto/x509.
//
// Everything lives as PEM files in one directory (ca.crt, ca.key,
// <name>.crt, <name>.key). Every function is idempotent: a file that is
// already there and still fits the request is kept, so running a bootstrap
// twice changes nothing. Key files are written 0600.
//
// It must never talk to the network or keep state outside that directory.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names of the CA inside the PKI directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// Default validities, in the spirit of kubeadm: a ten-year CA and one-year
// leaf certificates.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 365 * 24 * time.Hour
)

// Options tune how certificates are made. The zero value uses the defaults.
type Options struct {
	// CAValidity is the lifetime of a new CA (default DefaultCAValidity).
	CAValidity time.Duration
	// Validity is the lifetime of a new leaf certificate (default
	// DefaultLeafValidity).
	Validity time.Duration
	// RenewBefore reissues a kept certificate whose remaining lifetime is
	// shorter than this (default: a tenth of Validity).
	RenewBefore time.Duration
	// CommonName of a new CA (default "skiff-ca").
	CACommonName string
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.CAValidity <= 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.Validity <= 0 {
		o.Validity = DefaultLeafValidity
	}
	if o.RenewBefore <= 0 {
		o.RenewBefore = o.Validity / 10
	}
	if o.CACommonName == "" {
		o.CACommonName = "skiff-ca"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// CA is a loaded certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Pool returns a certificate pool holding only the CA, for verification.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Pair names the files of one issued certificate.
type Pair struct {
	CertFile string
	KeyFile  string
	Cert     *x509.Certificate
	// Reused is true when the files were already there and kept.
	Reused bool
}

// InitCA makes the cluster CA in dir, or keeps the one already there when it
// is valid and not about to expire. The directory is created 0700.
func InitCA(dir string, opts Options) (*CA, bool, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create pki dir: %w", err)
	}
	ca, err := LoadCA(dir)
	switch {
	case err == nil:
		now := opts.Now()
		if now.Before(ca.Cert.NotBefore) || now.Add(opts.RenewBefore).After(ca.Cert.NotAfter) {
			return nil, false, fmt.Errorf("CA in %s expires at %s: rotate it by hand (every certificate it signed must be reissued)", dir, ca.Cert.NotAfter.Format(time.RFC3339))
		}
		return ca, true, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, false, err
	}
	now := opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CACommonName, Organization: []string{"skiff"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(opts.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, false, fmt.Errorf("sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, false, fmt.Errorf("parse CA certificate: %w", err)
	}
	// The key goes first: a crash between the two writes leaves a key with no
	// certificate, which LoadCA reports, rather than a certificate whose key
	// is lost.
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, false, err
	}
	if err := writeCert(filepath.Join(dir, CACertFile), der); err != nil {
		return nil, false, err
	}
	return &CA{Cert: cert, Key: key}, false, nil
}

// LoadCA reads the CA of dir. The error wraps os.ErrNotExist when there is
// none yet.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	cert, err := ReadCert(certPath)
	if err != nil {
		return nil, err
	}
	key, err := ReadKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	if !publicKeyMatches(cert, key) {
		return nil, fmt.Errorf("%s does not belong to %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// IssueServing makes (or keeps) <dir>/<name>.crt and .key: a TLS serving
// certificate for the given DNS names and IPs, signed by the CA of dir. It
// also allows client authentication, so a kubelet can use its serving pair
// when it calls back. A kept certificate must cover every requested name and
// IP.
func IssueServing(dir, name string, dnsNames []string, ips []net.IP, opts Options) (Pair, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return Pair{}, fmt.Errorf("serving certificate %s: at least one DNS name or IP is needed", name)
	}
	cn := name
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	return issue(dir, name, request{
		subject:  pkix.Name{CommonName: cn},
		dnsNames: dnsNames,
		ips:      ips,
		usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, opts)
}

// IssueClient makes (or keeps) <dir>/<name>.crt and .key: a client
// certificate for user cn in the given groups (the Organization field, as in
// Kubernetes). A kept certificate must have exactly that user and groups.
func IssueClient(dir, name, cn string, groups []string, opts Options) (Pair, error) {
	if cn == "" {
		return Pair{}, fmt.Errorf("client certificate %s: empty user name", name)
	}
	return issue(dir, name, request{
		subject:  pkix.Name{CommonName: cn, Organization: groups},
		usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		identity: true,
	}, opts)
}

type request struct {
	subject  pkix.Name
	dnsNames []string
	ips      []net.IP
	usages   []x509.ExtKeyUsage
	// identity says the subject names a user: a kept certificate must
	// carry exactly the same CN and O. A serving certificate's subject is
	// only a label; its names and IPs decide.
	identity bool
}

func issue(dir, name string, req request, opts Options) (Pair, error) {
	opts = opts.withDefaults()
	if err := validName(name); err != nil {
		return Pair{}, err
	}
	ca, err := LoadCA(dir)
	if err != nil {
		return Pair{}, fmt.Errorf("issue %s: load CA (run InitCA first): %w", name, err)
	}
	pair := Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	if cert, ok := keep(ca, pair, req, opts); ok {
		pair.Cert, pair.Reused = cert, true
		return pair, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("generate key for %s: %w", name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return Pair{}, err
	}
	now := opts.Now()
	notAfter := now.Add(opts.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               req.subject,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           req.usages,
		BasicConstraintsValid: true,
		DNSNames:              req.dnsNames,
		IPAddresses:           req.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return Pair{}, fmt.Errorf("sign certificate %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, fmt.Errorf("parse certificate %s: %w", name, err)
	}
	if err := writeKey(pair.KeyFile, key); err != nil {
		return Pair{}, err
	}
	if err := writeCert(pair.CertFile, der); err != nil {
		return Pair{}, err
	}
	pair.Cert = cert
	return pair, nil
}

// keep reports whether the pair on disk is signed by ca, matches its key,
// is valid for long enough and says what req asks.
func keep(ca *CA, pair Pair, req request, opts Options) (*x509.Certificate, bool) {
	cert, err := ReadCert(pair.CertFile)
	if err != nil {
		return nil, false
	}
	key, err := ReadKey(pair.KeyFile)
	if err != nil || !publicKeyMatches(cert, key) {
		return nil, false
	}
	now := opts.Now()
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, KeyUsages: req.usages}); err != nil {
		return nil, false
	}
	if now.Add(opts.RenewBefore).After(cert.NotAfter) {
		return nil, false
	}
	if req.identity && (cert.Subject.CommonName != req.subject.CommonName || !sameSet(cert.Subject.Organization, req.subject.Organization)) {
		return nil, false
	}
	for _, n := range req.dnsNames {
		if !slices.Contains(cert.DNSNames, n) {
			return nil, false
		}
	}
	for _, ip := range req.ips {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return nil, false
		}
	}
	return cert, true
}

// Verify checks that the certificate in certFile chains to the CA of dir and
// is valid now for the given usage.
func Verify(dir, certFile string, usage x509.ExtKeyUsage, now time.Time) (*x509.Certificate, error) {
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	cert, err := ReadCert(certFile)
	if err != nil {
		return nil, err
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return nil, fmt.Errorf("verify %s: %w", certFile, err)
	}
	return cert, nil
}

// ReadCert parses the first certificate of a PEM file.
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return cert, nil
}

// ReadKey parses an ECDSA private key (SEC 1 "EC PRIVATE KEY" or PKCS #8).
func ReadKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		return key, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		key, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an ECDSA key", path)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("%s: unexpected PEM block %q", path, block.Type)
	}
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key %s: %w", path, err)
	}
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

func writeCert(path string, der []byte) error {
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFileAtomic writes through a temporary file and a rename, so a reader
// (or a crash) never sees half a file, and the mode is set before any byte
// lands.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func publicKeyMatches(cert *x509.Certificate, key *ecdsa.PrivateKey) bool {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Equal(&key.PublicKey)
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return serial, nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// validName keeps file names inside dir: no separators, no dot files.
func validName(name string) error {
	if name == "" || name == "ca" || name[0] == '.' || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("invalid certificate name %q", name)
	}
	return nil
}
