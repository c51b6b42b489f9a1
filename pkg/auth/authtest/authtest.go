// Package authtest makes keys, a JWKS endpoint and tokens for tests of
// code that verifies callers with pkg/auth. It is imported by tests only.
package authtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ratestream/ratestream/pkg/auth"
)

// KeySet is an identity provider's JWKS endpoint whose keys a test can
// change while a verifier uses it.
type KeySet struct {
	mu   sync.Mutex
	keys []map[string]string
	down bool // answer 503, as an unreachable identity provider
	srv  *httptest.Server
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newKeySet(t testing.TB) *KeySet {
	ks := &KeySet{}
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		if ks.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": ks.keys})
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

// Down makes the endpoint fail (true) or serve its keys again (false).
func (ks *KeySet) Down(down bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.down = down
}

// Add publishes a public key under kid.
func (ks *KeySet) Add(kid string, pub any) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	var k map[string]string
	switch p := pub.(type) {
	case *rsa.PublicKey:
		k = map[string]string{"kty": "RSA", "n": b64(p.N.Bytes()), "e": b64(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := p.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		k = map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:65])}
	case ed25519.PublicKey:
		k = map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64(p)}
	}
	k["kid"], k["use"] = kid, "sig"
	ks.keys = append(ks.keys, k)
}

// Keys is what a test signs with.
type Keys struct {
	RSA, OtherRSA *rsa.PrivateKey
	EC            *ecdsa.PrivateKey
	Ed            ed25519.PrivateKey
	Secret        []byte
	JWKS          *KeySet
	SecretFile    string
}

// NewKeys makes keys, a JWKS serving the public ones and a secret file.
func NewKeys(t testing.TB) *Keys {
	t.Helper()
	k := &Keys{JWKS: newKeySet(t), Secret: []byte(strings.Repeat("s3cret-", 6))}
	var err error
	if k.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.OtherRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.EC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	var edPub ed25519.PublicKey
	if edPub, k.Ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	k.JWKS.Add("r1", &k.RSA.PublicKey)
	k.JWKS.Add("e1", &k.EC.PublicKey)
	k.JWKS.Add("o1", edPub)
	k.SecretFile = filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(k.SecretFile, k.Secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// URL is where the key set is served.
func (ks *KeySet) URL() string { return ks.srv.URL }

// Config is a jwt-mode configuration trusting k.
func (k *Keys) Config() auth.Config {
	return auth.Config{Mode: auth.ModeJWT, JWKSURL: k.JWKS.URL(), SecretFile: k.SecretFile, Issuer: "https://id.example",
		Audience: "ratestream", SubjectClaim: "sub", CreateScope: "posts:write", Leeway: 5 * time.Second, JWKSRefresh: time.Hour}
}

// Claims are valid claims for sub.
func Claims(sub string, scopes ...string) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": "https://id.example", "aud": "ratestream", "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if len(scopes) > 0 {
		c["scope"] = strings.Join(scopes, " ")
	}
	return c
}

// Sign signs claims with method and key, naming kid.
func Sign(t testing.TB, m jwt.SigningMethod, kid string, key any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// BadTokens are tokens every service must refuse, by name.
func BadTokens(t testing.TB, k *Keys) map[string]string {
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := Claims("u-1")
		mod(c)
		return c
	}
	now := time.Now()
	good := Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, Claims("u-1"))
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + b64([]byte(strings.Replace(mustDecode(t, parts[1]), `"u-1"`, `"u-2"`, 1))) + "." + parts[2]
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, Claims("u-1")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.RSA.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	return map[string]string{
		"expired":                       Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })),
		"not yet valid":                 Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })),
		"no expiry":                     Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, with(func(c jwt.MapClaims) { delete(c, "exp") })),
		"wrong issuer":                  Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })),
		"wrong audience":                Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, with(func(c jwt.MapClaims) { c["aud"] = "another-api" })),
		"missing sub":                   Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, with(func(c jwt.MapClaims) { delete(c, "sub") })),
		"signed by another key":         Sign(t, jwt.SigningMethodRS256, "r1", k.OtherRSA, Claims("u-1")),
		"unknown kid":                   Sign(t, jwt.SigningMethodRS256, "nope", k.OtherRSA, Claims("u-1")),
		"alg none":                      none,
		"HS256 with the RSA public key": Sign(t, jwt.SigningMethodHS256, "r1", pubPEM, Claims("u-1")),
		"RS256 naming an EC key":        Sign(t, jwt.SigningMethodRS256, "e1", k.RSA, Claims("u-1")),
		"HS256 with another secret":     Sign(t, jwt.SigningMethodHS256, "", []byte(strings.Repeat("x", 40)), Claims("u-1")),
		"payload tampered":              tampered,
		"16 KB":                         Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, with(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("p", 16<<10) })),
		"garbage":                       "not.a.token",
	}
}

func mustDecode(t testing.TB, s string) string {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
