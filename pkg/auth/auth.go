// Package auth says who is calling. With AUTH_MODE=none (local runs and
// the replaced app's k6 scripts) the caller is whoever the request says
// (the body's user_id, the X-User-ID header). With AUTH_MODE=jwt a bearer
// JWT says it: its subject is the user id, its scopes what the caller may
// do. Tokens are verified with golang-jwt against the keys of a JWKS
// (RS256, PS256, ES256, EdDSA; fetched and refreshed by keyfunc, an
// unknown kid triggering one rate-limited refresh) or an HS256 secret
// read from a file; the algorithm must match the key's type, issuer and
// audience are required, and the clock may be off by AUTH_LEEWAY.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Modes.
const (
	ModeNone = "none"
	ModeJWT  = "jwt"
)

// MaxTokenBytes bounds a token: larger ones are refused unread.
const MaxTokenBytes = 8 << 10

// Config is every setting of the callers' identity.
type Config struct {
	Mode         string        `env:"AUTH_MODE" default:"none" help:"none: the caller is the body's user_id or X-User-ID; jwt: the subject of a bearer JWT"`
	JWKSURL      string        `env:"AUTH_JWKS_URL" help:"JWKS of the identity provider (jwt mode; RS256, PS256, ES256, EdDSA keys)"`
	SecretFile   string        `env:"AUTH_HS256_SECRET_FILE" help:"file holding an HS256 secret (jwt mode; with or instead of a JWKS)"`
	Issuer       string        `env:"AUTH_ISSUER" help:"the iss every token must carry (jwt mode, required)"`
	Audience     string        `env:"AUTH_AUDIENCE" help:"an aud every token must carry (jwt mode, required)"`
	SubjectClaim string        `env:"AUTH_SUBJECT_CLAIM" default:"sub" help:"the claim that holds the user id"`
	CreateScope  string        `env:"AUTH_CREATE_SCOPE" default:"posts:write" help:"the scope that creating a post needs"`
	Leeway       time.Duration `env:"AUTH_LEEWAY" default:"30s" help:"clock skew allowed on exp, nbf and iat"`
	JWKSRefresh  time.Duration `env:"AUTH_JWKS_REFRESH" default:"15m" help:"how often the JWKS is fetched again"`
}

// Identity is a verified caller.
type Identity struct {
	Subject string
	Scopes  []string
	Expires time.Time
}

// Has reports whether the caller holds scope.
func (id Identity) Has(scope string) bool {
	for _, s := range id.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("invalid token")

// Verifier checks bearer tokens. A nil *Verifier is mode none.
type Verifier struct {
	cfg    Config
	jwks   keyfunc.Keyfunc // nil without AUTH_JWKS_URL
	secret []byte          // nil without AUTH_HS256_SECRET_FILE
	parser *jwt.Parser
	cache  *cache
}

// New returns the verifier of cfg: nil in mode none. With a JWKS it fetches
// it now and refreshes it in the background until ctx ends.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	switch cfg.Mode {
	case ModeNone:
		return nil, nil
	case ModeJWT:
	default:
		return nil, fmt.Errorf("AUTH_MODE %q: want %s or %s", cfg.Mode, ModeNone, ModeJWT)
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("AUTH_MODE=jwt needs AUTH_ISSUER and AUTH_AUDIENCE")
	}
	if cfg.JWKSURL == "" && cfg.SecretFile == "" {
		return nil, errors.New("AUTH_MODE=jwt needs AUTH_JWKS_URL or AUTH_HS256_SECRET_FILE")
	}
	v := &Verifier{cfg: cfg, cache: newCache(1 << 16)}
	var algs []string
	if cfg.SecretFile != "" {
		b, err := os.ReadFile(cfg.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("AUTH_HS256_SECRET_FILE: %w", err)
		}
		v.secret = []byte(strings.TrimSpace(string(b)))
		if len(v.secret) < 32 {
			return nil, errors.New("AUTH_HS256_SECRET_FILE: the secret must be at least 32 bytes")
		}
		algs = append(algs, "HS256")
	}
	if cfg.JWKSURL != "" {
		k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			RefreshInterval:   cfg.JWKSRefresh,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(10*time.Second), 1),
			// The same deadline bounds the wait for the limiter and the
			// fetch that follows (jwkset passes one context to both):
			// long enough for a remote JWKS to answer, and a token with an
			// unknown kid whose refresh is more than this away is refused
			// at once (rate.Limiter gives up when the wait would pass the
			// deadline) rather than held.
			RateLimitWaitMax: 3 * time.Second,
			HTTPTimeout:      3 * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("AUTH_JWKS_URL: %w", err)
		}
		v.jwks = k
		algs = append(algs, "RS256", "PS256", "ES256", "EdDSA")
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(algs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	return v, nil
}

// Ready fails while the identity provider's keys are not loaded: a JWKS
// that could not be fetched at start would otherwise leave a ready
// service refusing every token until its next refresh. Each failing call
// asks for the set again (at most once per 10 s, the unknown-kid
// limiter). Mode none, or an HS256 secret alone, is always ready.
func (v *Verifier) Ready(ctx context.Context) error {
	if v == nil || v.jwks == nil {
		return nil
	}
	st := v.jwks.Storage()
	if keys, err := st.KeyReadAll(ctx); err == nil && len(keys) > 0 {
		return nil
	}
	_, _ = st.KeyRead(ctx, "") // an unknown kid: fetches the set again
	if keys, err := st.KeyReadAll(ctx); err == nil && len(keys) > 0 {
		return nil
	}
	return fmt.Errorf("no keys from AUTH_JWKS_URL %s yet: every token would be refused", v.cfg.JWKSURL)
}

// Verify checks a token and returns who it says the caller is.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if len(raw) > MaxTokenBytes {
		return Identity{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, MaxTokenBytes)
	}
	now := time.Now()
	if id, ok := v.cache.get(raw, now); ok {
		return id, nil
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.key(ctx)); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	sub, _ := claims[v.cfg.SubjectClaim].(string)
	if sub == "" {
		return Identity{}, fmt.Errorf("%w: no %q claim", ErrInvalidToken, v.cfg.SubjectClaim)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return Identity{}, fmt.Errorf("%w: no expiry", ErrInvalidToken)
	}
	id := Identity{Subject: sub, Scopes: scopes(claims), Expires: exp.Time}
	v.cache.put(raw, id, now)
	return id, nil
}

// key picks the verification key by the token's algorithm, and refuses a
// key whose type does not go with it: an HS256 token is only ever checked
// with the HS256 secret, never with a public key (the algorithm confusion
// attack), and a JWKS key only with the algorithms of its type.
func (v *Verifier) key(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		if alg == "HS256" {
			if v.secret == nil {
				return nil, errors.New("HS256 is not accepted")
			}
			return v.secret, nil
		}
		if v.jwks == nil {
			return nil, fmt.Errorf("%s is not accepted", alg)
		}
		k, err := v.jwks.KeyfuncCtx(ctx)(t)
		if err != nil {
			return nil, err
		}
		ok := false
		switch k.(type) {
		case *rsa.PublicKey:
			ok = alg == "RS256" || alg == "PS256"
		case *ecdsa.PublicKey:
			ok = alg == "ES256"
		case ed25519.PublicKey:
			ok = alg == "EdDSA"
		}
		if !ok {
			return nil, fmt.Errorf("a %T key does not verify %s", k, alg)
		}
		return k, nil
	}
}

// scopes reads "scope" (space-separated, RFC 8693) or "scp" (a list or a
// string, as some providers send it).
func scopes(c jwt.MapClaims) []string {
	var out []string
	for _, name := range []string{"scope", "scp"} {
		switch s := c[name].(type) {
		case string:
			out = append(out, strings.Fields(s)...)
		case []any:
			for _, x := range s {
				if str, ok := x.(string); ok {
					out = append(out, str)
				}
			}
		}
	}
	return out
}
