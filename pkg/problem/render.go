package problem

import (
	"encoding/json"
	"net/http"
)

// jsonRender renders a value as JSON while keeping the problem media type
// that Write set (gin's JSON renderer would overwrite it).
type jsonRender struct{ v any }

func (r jsonRender) Render(w http.ResponseWriter) error {
	return json.NewEncoder(w).Encode(r.v)
}

func (r jsonRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", ContentType)
}
