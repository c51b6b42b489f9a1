package testenv

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"
)

var ginParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// OpenAPIMatchesRoutes fails t for every route of e that the OpenAPI
// document at specPath does not declare, and every operation it declares
// that e does not serve. It lives here, in a test-only package, so that
// no service binary links a YAML parser.
func OpenAPIMatchesRoutes(t testing.TB, e *gin.Engine, specPath string) {
	t.Helper()
	diff, err := compareOpenAPI(e, specPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diff {
		t.Error(d)
	}
}

func compareOpenAPI(e *gin.Engine, specPath string) ([]string, error) {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", specPath, err)
	}
	spec := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			spec[strings.ToUpper(method)+" "+path] = true
		}
	}
	routes := map[string]bool{}
	for _, r := range e.Routes() {
		routes[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	var diff []string
	for k := range routes {
		if !spec[k] {
			diff = append(diff, "served but not documented: "+k)
		}
	}
	for k := range spec {
		if !routes[k] {
			diff = append(diff, "documented but not served: "+k)
		}
	}
	sort.Strings(diff)
	return diff, nil
}
