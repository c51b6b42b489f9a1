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
