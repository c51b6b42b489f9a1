package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The local stack's identity provider, for `make run AUTH_MODE=jwt`: an
// HS256 secret in the run directory, and the issuer and audience that
// `ratestream token` puts in the tokens it signs with it.
const (
	DevIssuer   = "ratestream-dev"
	DevAudience = "ratestream"
)

// DevSecretFile is where the local stack keeps its HS256 secret.
func DevSecretFile(runDir string) string { return filepath.Join(runDir, "jwt-secret") }

// EnsureDevSecret creates a random secret at path unless one is there.
func EnsureDevSecret(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the dev secret: %w", err)
	}
	return nil
}
