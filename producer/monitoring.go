package producer

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"

	"github.com/hibiken/asynqmon"
	"github.com/labstack/echo/v4"

	"github.com/deployer-dev/deployer/dashboard"
)

// fontLinks are the stylesheets asynqmon's page asks a font service for; the page is
// served with the dashboard's own fonts instead.
var fontLinks = []string{
	`https://fonts.googleapis.com/css?family=Roboto:300,400,500,700&display=swap`,
	`https://fonts.googleapis.com/icon?family=Material+Icons`,
}

// monitoring serves the asynqmon UI under /monitoring: read-only unless configured
// otherwise, with task payloads and results redacted, and its fonts from here.
func (a *API) monitoring() echo.HandlerFunc {
	redacted := func(_ string, b []byte) string { return a.redact.String(string(b)) }
	h := asynqmon.New(asynqmon.Options{
		RootPath:         "/monitoring",
		RedisConnOpt:     a.redisOpt,
		ReadOnly:         a.cfg.MonitoringReadOnly,
		PayloadFormatter: asynqmon.PayloadFormatterFunc(redacted),
		ResultFormatter:  asynqmon.ResultFormatterFunc(redacted),
	})
	return func(c echo.Context) error {
		// asynqmon's page runs inline scripts; nothing is loaded from elsewhere.
		c.Response().Header().Set("Content-Security-Policy",
			"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; frame-ancestors 'none'")
		rec := &htmlRewriter{ResponseWriter: c.Response().Writer}
		h.ServeHTTP(rec, c.Request())
		return rec.flush()
	}
}

// htmlRewriter buffers HTML answers to point their font links at our own fonts, and
// passes everything else through.
type htmlRewriter struct {
	http.ResponseWriter
	code int
	html bool
	buf  bytes.Buffer
}

func (w *htmlRewriter) WriteHeader(code int) {
	w.code = code
	w.html = strings.HasPrefix(w.Header().Get("Content-Type"), "text/html")
	if !w.html {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *htmlRewriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", http.DetectContentType(p))
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.html {
		return w.buf.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

func (w *htmlRewriter) flush() error {
	if !w.html {
		return nil
	}
	page := w.buf.String()
	for _, link := range fontLinks {
		page = strings.ReplaceAll(page, link, dashboard.FontsCSS)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.ResponseWriter.WriteHeader(w.code)
	_, err := w.ResponseWriter.Write([]byte(page))
	return err
}
