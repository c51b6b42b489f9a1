package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratestream/ratestream/tools/testenv"
)

// With AUTH_MODE=jwt over the whole stack (the local HS256 secret, tokens
// from `ratestream token`), the rater is the token's subject and my_score
// follows the token: the README's two lines, as a test.
func TestJWTOverTheWholeStack(t *testing.T) {
	s := startStack(t, "AUTH_MODE=jwt")
	token := func(args ...string) string {
		cmd := exec.Command(filepath.Join(testenv.Binaries(t), "ratestream"), append([]string{"token"}, args...)...)
		cmd.Env = append(os.Environ(), "RATESTREAM_RUN_DIR="+s.runDir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ratestream token %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	editor, alice, bob := token("--sub", "editor", "--scope", "posts:write"), token("--sub", "alice"), token("--sub", "bob")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	if st, _ := call(t, "POST", s.query+"/v1/posts", `{"title":"no scope"}`, bearer(alice)...); st != 403 {
		t.Fatalf("create without the scope: %d", st)
	}
	st, p := call(t, "POST", s.query+"/v1/posts", `{"title":"secured"}`, bearer(editor)...)
	if st != 201 {
		t.Fatalf("create: %d %v", st, p)
	}
	id := int(p["id"].(float64))
	rate := s.ingest + fmt.Sprintf("/v1/posts/%d/ratings", id)
	if st, _ := call(t, "POST", rate, `{"user_id":"alice","score":3}`); st != 401 {
		t.Fatalf("rating without a token: %d", st)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if st, body := call(t, "POST", rate, `{"score":4}`, bearer(alice)...); st != 202 || body["user_id"] != "alice" {
			return fmt.Errorf("alice's rating: %d %v", st, body)
		}
		return nil
	})
	get := s.query + fmt.Sprintf("/v1/posts/%d", id)
	testenv.Eventually(t, 60*time.Second, func() error {
		if _, p := call(t, "GET", get, "", bearer(alice)...); p["my_score"] != float64(4) {
			return fmt.Errorf("alice's my_score %v", p["my_score"])
		}
		return nil
	})
	for name, hdr := range map[string][]string{"bob": bearer(bob), "anonymous": nil, "X-User-ID alice without a token": {"X-User-ID", "alice"}} {
		if st, p := call(t, "GET", get, "", hdr...); st != 200 || p["my_score"] != nil {
			t.Errorf("%s: %d my_score %v", name, st, p["my_score"])
		}
	}

	// Alice erases herself: her rating goes from the post within seconds,
	// bob's stays, and rating again is a first rating.
	testenv.Eventually(t, 5*time.Second, func() error {
		if st, body := call(t, "POST", rate, `{"score":2}`, bearer(bob)...); st != 202 {
			return fmt.Errorf("bob's rating: %d %v", st, body)
		}
		return nil
	})
	userCount := func(want float64, mine any) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			if _, p := call(t, "GET", get, "", bearer(alice)...); p["user_count"] != want || p["my_score"] != mine {
				return fmt.Errorf("user_count %v, alice's my_score %v; want %v, %v", p["user_count"], p["my_score"], want, mine)
			}
			return nil
		})
	}
	userCount(2, float64(4))
	if st, p := call(t, "DELETE", s.ingest+"/v1/me", ""); st != 401 {
		t.Fatalf("DELETE /v1/me without a token: %d %v", st, p)
	}
	if st, p := call(t, "DELETE", s.ingest+"/v1/me", "", bearer(alice)...); st != 202 || p["erased"] != true || p["user_id"] != "alice" {
		t.Fatalf("DELETE /v1/me: %d %v", st, p)
	}
	userCount(1, nil)
	if _, p := call(t, "GET", get, "", bearer(bob)...); p["my_score"] != float64(2) {
		t.Errorf("bob's my_score %v after alice's erasure", p["my_score"])
	}
	if st, body := call(t, "POST", rate, `{"score":5}`, bearer(alice)...); st != 202 {
		t.Fatalf("alice rates again: %d %v", st, body)
	}
	userCount(2, float64(5))
}
