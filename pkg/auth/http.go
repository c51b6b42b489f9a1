package auth

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ratestream/ratestream/pkg/httpserver"
)

// realm names the protection space in WWW-Authenticate.
const realm = "ratestream"

// Caller returns the verified identity of a request that sent a bearer
// token; ok is false when it sent none. A token that does not verify is a
// 401 (RFC 6750's invalid_token). The scheme is case-insensitive.
func (v *Verifier) Caller(c *gin.Context) (id Identity, ok bool, err error) {
	if x, seen := c.Get(ctxIdentity); seen {
		return x.(Identity), true, nil
	}
	h := c.GetHeader("Authorization")
	if h == "" {
		return Identity{}, false, nil
	}
	scheme, tok, found := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return Identity{}, false, invalid("the Authorization header must be Bearer followed by a token")
	}
	id, err = v.Verify(c, tok)
	if err != nil {
		return Identity{}, false, invalid(err.Error())
	}
	c.Set(ctxIdentity, id)
	return id, true, nil
}

// ctxIdentity keeps a request's verified identity for later calls.
const ctxIdentity = "auth.identity"

// Required is the 401 for a request that sent no token where one is needed.
func Required() *httpserver.Problem {
	return &httpserver.Problem{Status: http.StatusUnauthorized, Detail: "a bearer token is required",
		Header: http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm=%q`, realm)}}}
}

// NeedScope is the 403 for a caller without scope.
func NeedScope(scope string) *httpserver.Problem {
	return &httpserver.Problem{Status: http.StatusForbidden, Detail: fmt.Sprintf("the token lacks the scope %q", scope),
		Header: http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm=%q, error="insufficient_scope", scope=%q`, realm, scope)}}}
}

func invalid(why string) *httpserver.Problem {
	desc := strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return '\''
		}
		return r
	}, why)
	return &httpserver.Problem{Status: http.StatusUnauthorized, Detail: "the bearer token is not valid: " + why,
		Header: http.Header{"Www-Authenticate": {fmt.Sprintf(`Bearer realm=%q, error="invalid_token", error_description="%s"`, realm, desc)}}}
}

// Mode reports the verifier's mode (a nil verifier is mode none).
func (v *Verifier) Mode() string {
	if v == nil {
		return ModeNone
	}
	return ModeJWT
}

// CreateScope is the scope creating a post needs.
func (v *Verifier) CreateScope() string { return v.cfg.CreateScope }
