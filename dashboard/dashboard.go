// Package dashboard is the service's own web page: queues, workers and engines,
// recent deployments, the caches, the warm pool and the chains, refreshed every few
// seconds. Its files are embedded in the binary and it loads nothing from elsewhere;
// the API serves its data (GET /dashboard/api/overview).
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// StaticPrefix is where the page's files are served.
const StaticPrefix = "/dashboard/static/"

// FontsCSS declares the fonts the dashboard and the monitoring UI use, served from
// here instead of a font service on the internet.
const FontsCSS = StaticPrefix + "fonts/fonts.css"

// Index returns the page.
func Index() []byte {
	b, err := files.ReadFile("static/index.html")
	if err != nil {
		panic("dashboard: index.html is not embedded: " + err.Error())
	}
	return b
}

// Static serves the page's files under StaticPrefix.
func Static() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	return http.StripPrefix(StaticPrefix, http.FileServer(http.FS(sub)))
}
