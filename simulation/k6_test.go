package simulation

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// k6 itself cannot be installed here: check that every script parses as
// an ES module, exports what k6 needs, and type-checks against k6's
// published definitions (@types/k6, installed by scripts/k6-types.sh,
// which make test runs).
func TestK6ScriptsParse(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to check the k6 scripts (make test installs it)")
	}
	files, _ := filepath.Glob("k6/*.js")
	if len(files) < 4 {
		t.Fatalf("found %d k6 scripts", len(files))
	}
	exportsOptions := regexp.MustCompile(`(?m)^export const options\b`)
	summarises := regexp.MustCompile(`(?m)^export function handleSummary\b`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mjs := filepath.Join(t.TempDir(), filepath.Base(f)+".mjs")
		if err := os.WriteFile(mjs, src, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(node, "--check", mjs).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse as an ES module: %v\n%s", f, err, out)
		}
		if filepath.Base(f) == "lib.js" {
			continue
		}
		if !exportsOptions.Match(src) || !summarises.Match(src) {
			t.Errorf("%s exports no options or no handleSummary", f)
		}
	}
}

func tsc(t *testing.T, dir string) ([]byte, error) {
	t.Helper()
	bin, err := filepath.Abs("k6/node_modules/.bin/tsc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal("TypeScript is not installed in simulation/k6: scripts/k6-types.sh installs it (make test does)")
	}
	cmd := exec.Command(bin, "-p", ".")
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

func TestK6ScriptsTypeCheck(t *testing.T) {
	if out, err := tsc(t, "k6"); err != nil {
		t.Fatalf("tsc --checkJs over simulation/k6: %v\n%s", err, out)
	}
}

// The check has teeth: a script calling what k6 does not have fails it.
func TestK6TypeCheckRefusesAMistake(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"tsconfig.json", "lib.js"} {
		b, err := os.ReadFile(filepath.Join("k6", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs, _ := filepath.Abs("k6/node_modules")
	if err := os.Symlink(abs, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	bad := "import http from 'k6/http';\nexport const options = { vus: 'many' };\nexport default function () { http.pots('x'); }\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.js"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := tsc(t, dir)
	if err == nil || !strings.Contains(string(out), "pots") {
		t.Fatalf("a script calling http.pots type-checked: %v\n%s", err, out)
	}
}
