package backupfake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	sqladmin "google.golang.org/api/sqladmin/v1"
)

// What the Cloud SQL Go connector (cloud.google.com/go/cloudsqlconn) needs from Cloud SQL,
// faked: connectSettings (the instance's IP, region and server CA), generateEphemeralCert
// (a client certificate signed for the connector's key) and the instance's server-side
// proxy, a TLS 1.3 listener that requires a client certificate, presents a server
// certificate whose CN is "project:instance" (as Cloud SQL's legacy per-instance CA does) and
// forwards the decrypted stream to a real database (ServeDatabase). Each instance gets its
// own loopback address in connectSettings; DialConnector (the connector's WithDialFunc)
// routes a dial of that address's port 3307 to the instance's proxy.

type sqlProxy struct {
	project, instance string
	ip                string // 127.0.0.N, as connectSettings says
	target            string // where the decrypted stream goes
	l                 net.Listener
}

type connectorCA struct {
	once sync.Once
	cert *x509.Certificate
	pem  string
	key  *ecdsa.PrivateKey
	err  error
}

func (s *Server) ca() (*connectorCA, error) {
	s.connCA.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			s.connCA.err = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Google Cloud SQL Server CA", Organization: []string{"Google, Inc"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			s.connCA.err = err
			return
		}
		s.connCA.cert, _ = x509.ParseCertificate(der)
		s.connCA.key = key
		s.connCA.pem = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	})
	return &s.connCA, s.connCA.err
}

// ServeDatabase makes instance's server-side proxy forward connections to target (host:port
// of a real PostgreSQL). Clones made later are served by the proxy of their source's target
// unless they get their own.
func (s *Server) ServeDatabase(project, instance, target string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dbTargets == nil {
		s.dbTargets = map[string]string{}
	}
	s.dbTargets[key(project, instance)] = target
}

// proxyFor returns (starting it on first use) the proxy of an instance; s.mu must not be held.
func (s *Server) proxyFor(project, instance string) (*sqlProxy, error) {
	ca, err := s.ca()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.proxies[key(project, instance)]; p != nil {
		return p, nil
	}
	target := s.dbTargets[key(project, instance)]
	if d := s.dyn[key(project, instance)]; target == "" && d != nil && d.source != "" {
		target = s.dbTargets[key(project, d.source)]
	}
	if target == "" {
		return nil, fmt.Errorf("no database behind %s/%s (ServeDatabase)", project, instance)
	}
	key2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: project + ":" + instance},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key2.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key2}},
		ClientAuth:   tls.RequireAnyClientCert,
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		return nil, err
	}
	if s.proxies == nil {
		s.proxies = map[string]*sqlProxy{}
	}
	p := &sqlProxy{project: project, instance: instance, ip: fmt.Sprintf("127.0.0.%d", 2+len(s.proxies)), target: target, l: l}
	s.proxies[key(project, instance)] = p
	go p.serve(s.closing)
	return p, nil
}

func (p *sqlProxy) serve(closing chan struct{}) {
	go func() { <-closing; p.l.Close() }()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if err := c.(*tls.Conn).Handshake(); err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

// DialConnector is the Cloud SQL connector's dial function for this fake
// (cloudsqlconn.WithDialFunc): a dial of an instance's address from connectSettings reaches
// that instance's proxy.
func (s *Server) DialConnector(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var target string
	for _, p := range s.proxies {
		if p.ip == host {
			target = p.l.Addr().String()
		}
	}
	s.mu.Unlock()
	if target == "" {
		return nil, fmt.Errorf("dial %s: connection refused (no Cloud SQL instance there)", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}

func (s *Server) sqlConnectSettings(w http.ResponseWriter, r *http.Request) {
	project, name := r.PathValue("project"), r.PathValue("instance")
	s.mu.Lock()
	res := s.renderLocked(project, name)
	s.mu.Unlock()
	if res == nil {
		s.sqlFault(w, r, NotFound, "")
		return
	}
	if res.State != "" && res.State != "RUNNABLE" {
		writeError(w, http.StatusBadRequest, "", "invalidState", "The instance or operation is not in an appropriate state to handle the request.")
		return
	}
	p, err := s.proxyFor(project, name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", "", "fake: "+err.Error())
		return
	}
	ca, _ := s.ca()
	writeJSON(w, &sqladmin.ConnectSettings{
		Kind:            "sql#connectSettings",
		ServerCaCert:    &sqladmin.SslCert{Kind: "sql#sslCert", Cert: ca.pem, CommonName: "C=US,O=Google\\, Inc,CN=Google Cloud SQL Server CA", Instance: name},
		IpAddresses:     []*sqladmin.IpMapping{{Type: "PRIMARY", IpAddress: p.ip}},
		Region:          orDefault(res.Region, SampleLocation),
		DatabaseVersion: orDefault(res.DatabaseVersion, "POSTGRES_16"),
		BackendType:     "SECOND_GEN",
		ServerCaMode:    "GOOGLE_MANAGED_INTERNAL_CA",
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// sqlInstancePost serves POST …/instances/{instance}:generateEphemeralCert (the method is
// part of the last path segment).
func (s *Server) sqlInstancePost(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	name, method, _ := strings.Cut(r.PathValue("instance"), ":")
	if method != "generateEphemeralCert" {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "notFound", "The requested URL "+r.URL.Path+" was not found on this server.")
		return
	}
	s.mu.Lock()
	res := s.renderLocked(project, name)
	s.mu.Unlock()
	if res == nil {
		s.sqlFault(w, r, NotFound, "")
		return
	}
	var req sqladmin.GenerateEphemeralCertRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "", "invalid", "Invalid JSON payload received.")
		return
	}
	block, _ := pem.Decode([]byte(req.PublicKey))
	if block == nil {
		writeError(w, http.StatusBadRequest, "", "invalid", "Invalid request: public_key is not a PEM public key.")
		return
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		writeError(w, http.StatusBadRequest, "", "invalid", "Invalid request: "+err.Error())
		return
	}
	ca, err := s.ca()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", "", "fake: "+err.Error())
		return
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "fediops-backupaudit"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", "", "fake: "+err.Error())
		return
	}
	writeJSON(w, &sqladmin.GenerateEphemeralCertResponse{EphemeralCert: &sqladmin.SslCert{
		Kind: "sql#sslCert", Cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		ExpirationTime: tmpl.NotAfter.UTC().Format(time.RFC3339), Instance: name,
	}})
}
