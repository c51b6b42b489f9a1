package repocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// derivedSQL matches a statement that reads or writes a derived table.
var derivedSQL = regexp.MustCompile(`(?i)\b(from|join|into|update|truncate)\s+(?:only\s+)?(` + strings.Join(tally.Tables, "|") + `)\b`)

// sqlOnDerivedTables lists the lines of Go source src, comments left
// out, that name a derived table in SQL.
func sqlOnDerivedTables(src string) []string {
	var out []string
	for _, line := range strings.Split(src, "\n") {
		code := line
		if i := strings.Index(code, "//"); i >= 0 && !strings.Contains(code[:i], "`") && !strings.Contains(code[:i], `"`) {
			code = code[:i]
		}
		if derivedSQL.MatchString(code) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

func TestTheRuleSeesSQLOnDerivedTables(t *testing.T) {
	for src, want := range map[string]bool{
		"rows, err := pool.Query(ctx, `SELECT post_id FROM post_scores WHERE x`)": true,
		"\t\tJOIN consumer_offsets co ON co.partition = ps.partition":             true,
		"b.Queue(`INSERT INTO rating_averages (post_id) VALUES ($1)`)":            true,
		"// a comment about SELECT ... FROM ratings":                              false,
		"table := \"post_scores\"":                                                false,
		"SELECT id FROM posts":                                                    false,
	} {
		if got := len(sqlOnDerivedTables(src)) > 0; got != want {
			t.Errorf("%q: matched %v, want %v", src, got, want)
		}
	}
}

// Every statement on the derived tables lives in pkg/tally (tests may
// write fixtures of their own).
func TestOnlyTallyWritesSQLOnDerivedTables(t *testing.T) {
	root := testenv.Root()
	for _, f := range tracked(t) {
		if !strings.HasSuffix(f, ".go") || strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, "pkg/tally/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the working tree
		}
		for _, line := range sqlOnDerivedTables(string(b)) {
			t.Errorf("%s: SQL on a derived table outside pkg/tally: %s", f, line)
		}
	}
}
