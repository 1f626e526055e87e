package e2e

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

	"github.com/stretchr/testify/require"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns their paths.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "atlas test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return cert, key
}

// With --tls-cert and --tls-key the server speaks HTTPS: the CLI and jobs work as before, and
// a client that does not trust the certificate is refused.
func TestTLS(t *testing.T) {
	requirePython(t)
	t.Parallel()
	cert, key := selfSigned(t)
	home := newHome(t)
	tok := addUser(t, home, "dana", false)
	s := startServer(t, home, "--auth", "--tls-cert", cert, "--tls-key", key)
	require.True(t, strings.HasPrefix(s.URL, "https://127.0.0.1:"), s.URL)
	url := s.URL

	client := t.TempDir()
	trust := []string{"SSL_CERT_FILE=" + cert}
	res := runIn(t, home, client, nil, cliBin(), "login", url, "--token", tok)
	require.Equal(t, 1, res.Code, "an untrusted certificate is refused")
	requireOneLineError(t, res, "Login Failed!")
	res = runIn(t, home, client, trust, cliBin(), "login", url, "--token", tok)
	require.Equal(t, 0, res.Code, res.String())

	sub := filepath.Join(home, "config", "submission")
	require.NoError(t, os.WriteFile(filepath.Join(sub, "secure.config.yaml"), []byte("scheduler_url: "+url+"\n"), 0o644))
	proj := newProject(t, "tls", map[string]string{"main.py": "import foundations\nfoundations.log_metric('ok', 1)\nprint('over https')\n"})
	res = runIn(t, home, proj, trust, cliBin(), "submit", "secure", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "over https")
	require.Contains(t, res.Stderr, "has completed")
}
