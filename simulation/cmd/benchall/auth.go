package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/simulation/loadgen"
)

// authBench drives the same random_rating load at two ingest processes in
// one run, one with AUTH_MODE=none and one with AUTH_MODE=jwt verifying
// RS256 tokens against a JWKS, with 10,000 distinct tokens reused as real
// clients reuse theirs.
func authBench(ctx context.Context, e *env, o opts) ([]figure, error) {
	url, _, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	if cmd, err := e.spawn("mkposts", "DATABASE_URL="+url); err != nil || cmd.wait() != nil {
		return nil, fmt.Errorf("make posts: %v", err)
	}
	brokerAddr, err := e.broker(12)
	if err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	jwks, stop, err := serveJWKS(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	defer stop()
	tokens := make([]string, 10_000)
	exp := time.Now().Add(time.Hour).Unix()
	for i := range tokens {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": "https://id.bench", "aud": "ratestream", "sub": fmt.Sprintf("user-%d", i), "exp": exp, "iat": time.Now().Unix()})
		tok.Header["kid"] = "bench"
		if tokens[i], err = tok.SignedString(key); err != nil {
			return nil, err
		}
	}
	common := []string{"DATABASE_URL=" + url, "KAFKA_BROKERS=" + brokerAddr}
	run := func(label string, extra []string, tokens []string) (loadgen.Result, error) {
		addr := freeAddr()
		// The first stays up, idle, while the second is measured.
		if _, err := e.spawn("ingest", append(append([]string{"INGEST_ADDR=" + addr}, common...), extra...)...); err != nil {
			return loadgen.Result{}, err
		}
		if err := launch.WaitReady(ctx, "http://"+addr, 30*time.Second); err != nil {
			return loadgen.Result{}, err
		}
		t := loadgen.Target{Ingest: "http://" + addr, Posts: 1000, Users: 1_000_000, Tokens: tokens}
		loadgen.Run(ctx, loadgen.Plan{Name: "warm-up", VUs: o.vus, Duration: 2 * time.Second, Request: t.RateRequest()})
		r := loadgen.Run(ctx, loadgen.Plan{Name: label, VUs: o.vus, Duration: o.duration, Request: t.RateRequest()})
		fmt.Println(r)
		return r, nil
	}
	none, err := run("ingest AUTH_MODE=none", []string{"AUTH_MODE=none"}, nil)
	if err != nil {
		return nil, err
	}
	signed, err := run("ingest AUTH_MODE=jwt (RS256, 10k tokens)", []string{"AUTH_MODE=jwt", "AUTH_JWKS_URL=" + jwks,
		"AUTH_ISSUER=https://id.bench", "AUTH_AUDIENCE=ratestream"}, tokens)
	if err != nil {
		return nil, err
	}
	ratio := signed.PerSecond / none.PerSecond
	figs := httpFigures("auth", "none", none)
	figs = append(figs, httpFigures("auth", "jwt", signed)...)
	figs = append(figs,
		target("auth", "throughput ratio jwt/none", ratio, "", ">= 0.8", ratio >= 0.8),
		target("auth", "jwt errors", float64(signed.Errors), "", "0", signed.Errors == 0),
	)
	return figs, nil
}

// serveJWKS publishes one RSA key, as an identity provider does.
func serveJWKS(pub *rsa.PublicKey) (string, func(), error) {
	b64 := base64.RawURLEncoding.EncodeToString
	body, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "bench", "use": "sig", "alg": "RS256",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}}})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/jwks.json", func() { _ = srv.Close() }, nil
}
