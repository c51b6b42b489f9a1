// Package repocheck holds the tree to its rules: no built binaries or
// large files in git, and every module building on its own.
package repocheck

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratestream/ratestream/tools/testenv"
)

const maxTracked = 1 << 20

// binaryMagic are the first bytes of executables and libraries.
var binaryMagic = [][]byte{
	[]byte("\x7fELF"),        // Linux
	[]byte("MZ"),             // Windows
	{0xcf, 0xfa, 0xed, 0xfe}, // Mach-O 64-bit
	{0xce, 0xfa, 0xed, 0xfe}, // Mach-O 32-bit
	{0xca, 0xfe, 0xba, 0xbe}, // Mach-O universal
	[]byte("!<arch>\n"),      // archives (.a)
}

func tracked(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = testenv.Root()
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): nothing to check", err)
	}
	var files []string
	for _, f := range bytes.Split(out, []byte{0}) {
		if len(f) > 0 {
			files = append(files, string(f))
		}
	}
	return files
}

func TestNoBinariesOrLargeFilesTracked(t *testing.T) {
	root := testenv.Root()
	for _, f := range tracked(t) {
		path := filepath.Join(root, f)
		st, err := os.Lstat(path)
		if err != nil {
			continue // deleted in the working tree
		}
		if !st.Mode().IsRegular() {
			continue
		}
		if st.Size() > maxTracked {
			t.Errorf("%s is %d bytes: tracked files must be at most 1 MiB", f, st.Size())
		}
		head := make([]byte, 8)
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := fh.Read(head)
		fh.Close()
		head = head[:n]
		for _, magic := range binaryMagic {
			if bytes.HasPrefix(head, magic) && !strings.HasSuffix(f, ".png") {
				t.Errorf("%s is a built binary: it belongs in bin/ (make build), not in git", f)
			}
		}
		if st.Mode()&0o111 != 0 && !bytes.HasPrefix(head, []byte("#!")) {
			t.Errorf("%s is executable but not a script", f)
		}
	}
}

// modules lists the folders that go.work uses.
func modules(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.Root(), "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mods []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "use (":
			in = true
		case in && line == ")":
			in = false
		case in && strings.HasPrefix(line, "./"):
			mods = append(mods, strings.TrimPrefix(line, "./"))
		}
	}
	if len(mods) == 0 {
		t.Fatal("no modules in go.work")
	}
	return mods
}

// TestEveryModuleBuildsAlone builds and vets each module outside the
// workspace, with its own go.mod and go.sum as they are.
func TestEveryModuleBuildsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every module")
	}
	for _, m := range modules(t) {
		t.Run(m, func(t *testing.T) {
			// -o /dev/null: a module with one main package would otherwise
			// get its binary written into the tree.
			for _, args := range [][]string{{"build", "-o", os.DevNull, "./..."}, {"vet", "./..."}} {
				cmd := exec.Command("go", args...)
				cmd.Dir = filepath.Join(testenv.Root(), m)
				cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("GOWORK=off go %s in %s: %v\n%s", strings.Join(args, " "), m, err, out)
				}
			}
		})
	}
}
