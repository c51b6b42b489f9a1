package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ratestream/ratestream/pkg/auth"
	"github.com/ratestream/ratestream/pkg/auth/authtest"
)

func TestVerify(t *testing.T) {
	k := authtest.NewKeys(t)
	v, err := auth.New(context.Background(), k.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good := map[string]string{
		"RS256": authtest.Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, authtest.Claims("u-1", "posts:write")),
		"PS256": authtest.Sign(t, jwt.SigningMethodPS256, "r1", k.RSA, authtest.Claims("u-1", "posts:write")),
		"ES256": authtest.Sign(t, jwt.SigningMethodES256, "e1", k.EC, authtest.Claims("u-1", "posts:write")),
		"EdDSA": authtest.Sign(t, jwt.SigningMethodEdDSA, "o1", k.Ed, authtest.Claims("u-1", "posts:write")),
		"HS256": authtest.Sign(t, jwt.SigningMethodHS256, "", k.Secret, authtest.Claims("u-1", "posts:write")),
	}
	for name, tok := range good {
		id, err := v.Verify(ctx, tok)
		if err != nil || id.Subject != "u-1" || !id.Has("posts:write") {
			t.Errorf("%s: %+v, %v", name, id, err)
		}
	}
	for name, tok := range authtest.BadTokens(t, k) {
		if id, err := v.Verify(ctx, tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s: accepted as %+v (%v)", name, id, err)
		}
	}
}

// A key added to the JWKS (a rotation) is used without a restart: the
// unknown kid triggers one refresh.
func TestJWKSRotation(t *testing.T) {
	k := authtest.NewKeys(t)
	v, err := auth.New(context.Background(), k.Config())
	if err != nil {
		t.Fatal(err)
	}
	next, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := authtest.Sign(t, jwt.SigningMethodRS256, "r2", next, authtest.Claims("u-7"))
	k.JWKS.Add("r2", &next.PublicKey)
	id, err := v.Verify(context.Background(), tok)
	if err != nil || id.Subject != "u-7" {
		t.Fatalf("token signed with the rotated-in key: %+v, %v", id, err)
	}
}

func TestConfigIsChecked(t *testing.T) {
	k := authtest.NewKeys(t)
	for name, mod := range map[string]func(*auth.Config){
		"unknown mode": func(c *auth.Config) { c.Mode = "maybe" },
		"no issuer":    func(c *auth.Config) { c.Issuer = "" },
		"no audience":  func(c *auth.Config) { c.Audience = "" },
		"no keys":      func(c *auth.Config) { c.JWKSURL, c.SecretFile = "", "" },
		"short secret": func(c *auth.Config) { c.JWKSURL = ""; _ = os.WriteFile(c.SecretFile, []byte("short"), 0o600) },
	} {
		c := k.Config()
		c.SecretFile = filepath.Join(t.TempDir(), "s")
		_ = os.WriteFile(c.SecretFile, k.Secret, 0o600)
		mod(&c)
		if _, err := auth.New(context.Background(), c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if v, err := auth.New(context.Background(), auth.Config{Mode: auth.ModeNone}); v != nil || err != nil {
		t.Errorf("mode none: %v, %v", v, err)
	}
}

// Tokens naming kids the JWKS does not have are refused at once: they
// must not make requests wait for the rate-limited refresh.
func TestUnknownKidsAreRefusedWithoutWaiting(t *testing.T) {
	k := authtest.NewKeys(t)
	v, err := auth.New(context.Background(), k.Config())
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for i := range 5 {
		tok := authtest.Sign(t, jwt.SigningMethodRS256, fmt.Sprintf("unknown-%d", i), k.OtherRSA, authtest.Claims("u"))
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("unknown kid accepted: %v", err)
		}
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("five unknown kids took %s", d)
	}
}

// A JWKS that cannot be fetched at start leaves the verifier not ready
// (every RS256 token would be refused); once the identity provider
// answers, readiness asks for the keys again and recovers without a
// token arriving or a restart.
func TestReadyWaitsForTheJWKS(t *testing.T) {
	k := authtest.NewKeys(t)
	k.JWKS.Down(true)
	ctx := context.Background()
	v, err := auth.New(ctx, k.Config())
	if err != nil {
		t.Fatalf("an unreachable JWKS must not stop the service at start: %v", err)
	}
	if err := v.Ready(ctx); err == nil {
		t.Fatal("ready without keys")
	}
	tok := authtest.Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, authtest.Claims("u-1"))
	if _, err := v.Verify(ctx, tok); err == nil {
		t.Fatal("a token verified without keys")
	}
	k.JWKS.Down(false)
	deadline := time.Now().Add(30 * time.Second)
	for v.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("still not ready 30 s after the JWKS came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if id, err := v.Verify(ctx, tok); err != nil || id.Subject != "u-1" {
		t.Fatalf("after the keys loaded: %+v, %v", id, err)
	}
	var none *auth.Verifier
	if err := none.Ready(ctx); err != nil {
		t.Errorf("mode none: %v", err)
	}
}

// FuzzVerify: whatever a client puts in a bearer token (headers of any
// algorithm, kid or size, broken base64, JSON that is not claims) is
// refused with ErrInvalidToken, never a panic or another error.
func FuzzVerify(f *testing.F) {
	k := authtest.NewKeys(f)
	v, err := auth.New(context.Background(), k.Config())
	if err != nil {
		f.Fatal(err)
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLy4uL2V0Yy9wYXNzd2QifQ.e30.AAAA")
	for _, tok := range authtest.BadTokens(f, k) {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := v.Verify(context.Background(), raw); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("token %q: %v, want ErrInvalidToken", raw, err)
		}
	})
}
