package main

import (
	"testing"

	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/httpserver"
)

func TestOpenAPIMatchesRoutes(t *testing.T) {
	srv := httpserver.New(zap.NewNop(), httpserver.Config{}, "127.0.0.1:0")
	(&handlers{}).routes(srv.Engine)
	diff, err := httpserver.CompareOpenAPI(srv.Engine, "openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diff {
		t.Error(d)
	}
}
