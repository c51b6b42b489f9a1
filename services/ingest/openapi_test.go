package main

import (
	"testing"

	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/tools/testenv"
)

func TestOpenAPIMatchesRoutes(t *testing.T) {
	srv := httpserver.New(zap.NewNop(), httpserver.Config{}, "127.0.0.1:0")
	(&handlers{}).routes(srv.Engine)
	testenv.OpenAPIMatchesRoutes(t, srv.Engine, "openapi.yaml")
}
