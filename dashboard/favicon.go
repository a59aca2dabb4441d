package dashboard

import (
	"io/fs"
	"net/http"
)

// favicon is the dashboard's icon (the web chat's leaf), asked for by every browser as
// /favicon.ico.
func (s *Server) favicon(w http.ResponseWriter, r *http.Request, _ *session) {
	svg, err := fs.ReadFile(files, "assets/favicon.svg")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(svg)
}
