package natssink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/oomscope/oomscope/sink"
)

// publishOne checks that a sink made from cfg works end to end.
func publishOne(t *testing.T, cfg Config) {
	t.Helper()
	s := newSink(t, cfg)
	if err := s.Publish(ctxT(t), delivery("boot/auth")); err != nil {
		t.Fatal(err)
	}
}

// refused checks that New fails with cfg, naming want.
func refused(t *testing.T, cfg Config, want string) {
	t.Helper()
	cfg.ConnectWait = time.Second
	_, err := New(ctxT(t), cfg)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), want) {
		t.Fatalf("New = %v, want an error with %q", err, want)
	}
	t.Logf("refused: %v", err)
}

func TestAuthUserPassword(t *testing.T) {
	ts := newServer(t, func(o *server.Options) { o.Username, o.Password = "oomscope", "s3cret pass" })
	cfg := testConfig(t, ts)
	cfg.User, cfg.Password = "oomscope", "s3cret pass"
	publishOne(t, cfg)

	cfg.Password = "wrong"
	refused(t, cfg, "authorization violation")
	cfg.User, cfg.Password = "", ""
	refused(t, cfg, "authorization violation")
}

func TestAuthToken(t *testing.T) {
	ts := newServer(t, func(o *server.Options) { o.Authorization = "t0ken" })
	cfg := testConfig(t, ts)
	cfg.Token = "t0ken"
	publishOne(t, cfg)
	cfg.Token = "other"
	refused(t, cfg, "authorization violation")
}

func TestAuthNKey(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	cfg := testConfig(t, ts)
	cfg.NKeySeedFile = seedFile
	publishOne(t, cfg)

	cfg.NKeySeedFile = filepath.Join(t.TempDir(), "missing.nk")
	if _, err := New(ctxT(t), cfg); err == nil || !strings.Contains(err.Error(), "missing.nk") {
		t.Fatalf("New with a missing seed file = %v", err)
	}
}

// pki is a CA and PEM files for a server and a client certificate.
type pki struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "oomscope test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	p := pki{caFile: write("ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return p
}

func TestTLS(t *testing.T) {
	p := newPKI(t)
	ts := newServer(t, func(o *server.Options) {
		cfg, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: p.serverCert, KeyFile: p.serverKey, CaFile: p.caFile, Verify: true, Timeout: 5,
		})
		if err != nil {
			t.Fatal(err)
		}
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = cfg, true, true, 5
	})
	cfg := testConfig(t, ts)
	cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = p.caFile, p.clientCert, p.clientKey
	if !strings.HasPrefix(cfg.URLs, "tls://") {
		t.Fatalf("url %s", cfg.URLs)
	}
	publishOne(t, cfg)

	// The server wants a client certificate.
	noCert := cfg
	noCert.TLSCertFile, noCert.TLSKeyFile = "", ""
	refused(t, noCert, "no connection")
	// A server signed by another CA is not trusted.
	other := newPKI(t)
	wrongCA := cfg
	wrongCA.TLSCAFile = other.caFile
	refused(t, wrongCA, "certificate")
}

// TestLeastPrivilege runs the sink as a user with only the permissions
// docs/nats.md lists, lookup included.
func TestLeastPrivilege(t *testing.T) {
	ts := newServer(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "oomscope", Password: "p", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{
					"oomscope.v1.>",
					"$JS.API.STREAM.INFO.OOMSCOPE",
					"$JS.API.CONSUMER.CREATE.OOMSCOPE.>",
					"$JS.API.CONSUMER.DELETE.OOMSCOPE.>",
					"$JS.API.CONSUMER.MSG.NEXT.OOMSCOPE.>",
				}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		}
	})
	admin := testConfig(t, ts)
	admin.User, admin.Password = "admin", "a"
	newSink(t, admin).Close()

	cfg := testConfig(t, ts)
	cfg.User, cfg.Password, cfg.CreateStream = "oomscope", "p", false
	cfg.PublishTimeout = 3 * time.Second
	s := newSink(t, cfg)
	d := delivery("boot/lp")
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	d.Queued = d.Queued.Add(-time.Hour) // a late retry: looked up
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctxT(t), sink.Delivery{Report: testReport("boot/lp2"), Queued: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, js := ts.client(nats.UserInfo("admin", "a"))
	st, err := js.Stream(ctxT(t), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
	// With the stream as wanted, CreateStream changes nothing and needs no
	// more rights; changing the stream is what this user may not do.
	cfg.CreateStream = true
	newSink(t, cfg).Close()
	cfg.DuplicateWindow, cfg.ConnectWait = time.Minute, 3*time.Second
	if _, err := New(ctxT(t), cfg); err == nil || !strings.Contains(err.Error(), "updating stream OOMSCOPE") {
		t.Errorf("New updating the stream as the restricted user = %v", err)
	} else {
		t.Logf("refused: %v", err)
	}
}
