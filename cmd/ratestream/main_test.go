package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every flag of every subcommand names, in its help, the environment
// variable of the same meaning.
func TestEveryFlagNamesItsVariable(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.HasParent() {
			return
		}
		c.Flags().VisitAll(func(fl *pflag.Flag) {
			if fl.Name == "help" {
				return
			}
			n++
			if !strings.Contains(fl.Usage, "[$") {
				t.Errorf("%s --%s: help names no variable: %q", c.CommandPath(), fl.Name, fl.Usage)
			}
		})
	}
	walk(newRoot())
	if n < 40 {
		t.Fatalf("only %d flags seen", n)
	}
}

// A variable sets a flag's value; the command line wins over it; a bad
// value names the variable.
func TestVariablesSetFlagsAndTheCommandLineWins(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUTH_HS256_SECRET_FILE", secret)
	t.Setenv("AUTH_ISSUER", "issuer-from-env")
	t.Setenv("RATESTREAM_TOKEN_SUB", "user-from-env")
	t.Setenv("RATESTREAM_TOKEN_SCOPE", "posts:write,me:erase")
	run := func(args ...string) (jwt.MapClaims, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{"token"}, args...))
		if err := root.Execute(); err != nil {
			return nil, err
		}
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(strings.TrimSpace(out.String()), claims, func(*jwt.Token) (any, error) { return []byte("s3cret"), nil },
			jwt.WithAudience("ratestream"), jwt.WithoutClaimsValidation())
		return claims, err
	}
	c, err := run()
	if err != nil {
		t.Fatal(err)
	}
	if c["iss"] != "issuer-from-env" || c["sub"] != "user-from-env" || c["scope"] != "posts:write me:erase" {
		t.Fatalf("from the environment: %v", c)
	}
	c, err = run("--sub", "user-from-flag", "--scope", "posts:read")
	if err != nil {
		t.Fatal(err)
	}
	if c["sub"] != "user-from-flag" || c["scope"] != "posts:read" || c["iss"] != "issuer-from-env" {
		t.Fatalf("the command line must win: %v", c)
	}
	t.Setenv("RATESTREAM_TOKEN_TTL", "an hour")
	if _, err := run(); err == nil || !strings.Contains(err.Error(), "RATESTREAM_TOKEN_TTL") {
		t.Fatalf("a bad variable: %v", err)
	}
}
