package simulation

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// k6 itself cannot be installed here: check that every script parses as
// an ES module and exports what k6 needs.
func TestK6ScriptsParse(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed to check the k6 scripts (make test installs it)")
	}
	files, _ := filepath.Glob("k6/*.js")
	if len(files) < 3 {
		t.Fatalf("found %d k6 scripts", len(files))
	}
	exportsOptions := regexp.MustCompile(`(?m)^export const options\b`)
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
		if filepath.Base(f) != "lib.js" && !exportsOptions.Match(src) {
			t.Errorf("%s exports no options", f)
		}
	}
}
