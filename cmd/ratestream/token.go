package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/auth"
)

// tokenCmd signs a token with the local stack's HS256 secret, for trying
// AUTH_MODE=jwt with curl. Production tokens come from an identity
// provider, whose keys the services read from AUTH_JWKS_URL.
func tokenCmd() *cobra.Command {
	var (
		sub, secretFile, issuer, audience, claim string
		scopes                                   []string
		ttl                                      time.Duration
	)
	runDir := cmp.Or(os.Getenv("RATESTREAM_RUN_DIR"), ".run")
	c := &cobra.Command{
		Use:   "token --sub USER [--scope SCOPE]... [--ttl 1h]",
		Short: "Print an HS256 token for the local stack (development only)",
		Long: `Print a JWT signed with the local stack's HS256 secret (the file that
'make run AUTH_MODE=jwt' creates, or AUTH_HS256_SECRET_FILE), for use as
'Authorization: Bearer <token>'. Development only: in production tokens
come from the identity provider.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sub == "" {
				return errors.New("--sub is required")
			}
			b, err := os.ReadFile(secretFile)
			if err != nil {
				return fmt.Errorf("read the secret (start the stack with AUTH_MODE=jwt first): %w", err)
			}
			now := time.Now()
			claims := jwt.MapClaims{claim: sub, "iss": issuer, "aud": audience,
				"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix()}
			if len(scopes) > 0 {
				claims["scope"] = strings.Join(scopes, " ")
			}
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(strings.TrimSpace(string(b))))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&sub, "sub", "", "the user id the token speaks for")
	f.StringSliceVar(&scopes, "scope", nil, "a scope to grant (repeatable), e.g. posts:write")
	f.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	f.StringVar(&secretFile, "secret-file", auth.DevSecretFile(runDir), "the HS256 secret")
	f.StringVar(&issuer, "issuer", auth.DevIssuer, "iss")
	f.StringVar(&audience, "audience", auth.DevAudience, "aud")
	f.StringVar(&claim, "subject-claim", "sub", "the claim holding the user id")
	sharedSetting(f, "secret-file", "AUTH_HS256_SECRET_FILE")
	sharedSetting(f, "issuer", "AUTH_ISSUER")
	sharedSetting(f, "audience", "AUTH_AUDIENCE")
	sharedSetting(f, "subject-claim", "AUTH_SUBJECT_CLAIM")
	return c
}
