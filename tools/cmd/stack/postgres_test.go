package main

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratestream/ratestream/tools/testenv"
)

// A checkout whose private cluster's port is held by another checkout's
// cluster is told which data directory holds it and how to stop it, and
// the stack passes that on instead of "exit status 1".
func TestPostgresPortHeldByAnotherCluster(t *testing.T) {
	u, err := url.Parse(testenv.AdminURL(t))
	if err != nil || u.Port() == "" || u.Hostname() != "127.0.0.1" {
		t.Skipf("the test server %q is not a local cluster on a port of 127.0.0.1", u)
	}
	other := t.TempDir()
	if err := os.MkdirAll(filepath.Join(other, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(testenv.Root(), "scripts", "postgres.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "scripts", "postgres.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(other, "scripts", "postgres.sh"), "start")
	cmd.Env = append(os.Environ(), "PGPORT_PRIVATE="+u.Port(), "DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("started although port %s is held:\n%s", u.Port(), out)
	}
	msg := string(out)
	for _, want := range []string{"port " + u.Port() + " is already in use", "data directory /", "pg_ctl -D /", "PGPORT_PRIVATE="} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(other, ".run", "pg", "PG_VERSION")); err == nil {
		t.Error("a cluster was initialised although it could not start")
	}
}
