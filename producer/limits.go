package producer

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Timeouts bound the API's connections, so that a client sending or reading slowly,
// or keeping a connection idle, cannot hold it for ever. A zero field takes its
// default.
type Timeouts struct {
	// ReadHeader bounds the arrival of a request's headers.
	ReadHeader time.Duration
	// Read bounds the arrival of a request's body once the headers are in, and
	// UploadRead that of a project's archive (up to MAX_PROJECT_BYTES).
	Read, UploadRead time.Duration
	// Write bounds the work and the answer once the body is in. A long poll (?wait=
	// on GET or POST /deploy) adds its wait to it.
	Write time.Duration
	// Idle bounds a kept-alive connection between two requests.
	Idle time.Duration
}

// defaultTimeouts are the timeouts of a Timeouts left zero: a JSON request has
// half a minute to arrive and as long to be answered; a 20 MiB upload five minutes
// to arrive (70 KiB/s).
var defaultTimeouts = Timeouts{
	ReadHeader: 10 * time.Second,
	Read:       30 * time.Second,
	UploadRead: 5 * time.Minute,
	Write:      30 * time.Second,
	Idle:       2 * time.Minute,
}

func (t Timeouts) withDefaults() Timeouts {
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.ReadHeader, &defaultTimeouts.ReadHeader},
		{&t.Read, &defaultTimeouts.Read},
		{&t.UploadRead, &defaultTimeouts.UploadRead},
		{&t.Write, &defaultTimeouts.Write},
		{&t.Idle, &defaultTimeouts.Idle},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// server is the HTTP server of the handler. Its own timeouts hold for every
// request; limit sets tighter or longer ones per route.
func (t Timeouts) server(h http.Handler) *http.Server {
	t = t.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Read + t.Write,
		IdleTimeout:       t.Idle,
	}
}

// otherBodyBytes bounds the body of the routes that take none (their handlers never
// read it), or a small one.
const otherBodyBytes = 64 << 10

// routeLimits are what a request of one route may send and take.
type routeLimits struct {
	body int64
	// tooLarge says what was too large, for the 413.
	tooLarge    string
	read, write time.Duration
	// longPoll says ?wait= extends the write deadline.
	longPoll bool
}

func (a *API) limitsOf(c echo.Context) routeLimits {
	t := a.cfg.Timeouts.withDefaults()
	l := routeLimits{body: otherBodyBytes, tooLarge: "the request body", read: t.Read, write: t.Write}
	method, path := c.Request().Method, c.Path()
	switch {
	case method == http.MethodPost && path == "/projects":
		l.body, l.tooLarge, l.read = a.cfg.MaxProjectBytes, "the project archive", t.UploadRead
	case method == http.MethodPost && path == "/deploy":
		l.body, l.longPoll = maxRequestBytes, true
	case method == http.MethodGet && path == "/deploy/:id":
		l.longPoll = true
	case path == "/monitoring" || strings.HasPrefix(path, "/monitoring/"):
		l.body = maxRequestBytes
	}
	return l
}

// bodyKey is where limit leaves the request's limited body for the error handler.
const bodyKey = "deployer.body"

// limit bounds every request: the size of its body (413 past it, before reading when
// the length is announced) and the time its body may take to arrive and its answer
// to leave. The deadlines are the connection's, set per request: a long poll extends
// its own write deadline by its wait, while every other route keeps a short one.
func (a *API) limit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		l := a.limitsOf(c)
		r := c.Request()
		if r.ContentLength > l.body {
			return tooLarge(l)
		}
		rc := http.NewResponseController(c.Response())
		now := time.Now()
		write := l.write
		if l.longPoll {
			// A bad ?wait= is the handler's 400 to answer.
			if wait, err := waitParam(c); err == nil {
				write += wait
			}
		}
		// A bodiless request's connection is being read in the background already
		// (to notice a client that leaves): a read deadline would end that read, and
		// with it the request's context, in the middle of a long poll. Once a body is
		// read to its end, the server clears the deadline itself for the same read.
		if r.ContentLength != 0 {
			_ = rc.SetReadDeadline(now.Add(l.read))
			write += l.read
		}
		// Not every ResponseWriter has deadlines (a test's recorder): the server's
		// own timeouts hold then.
		_ = rc.SetWriteDeadline(now.Add(write))
		if r.ContentLength != 0 {
			body := &limitedBody{ReadCloser: http.MaxBytesReader(c.Response().Writer, r.Body, l.body), limits: l}
			r.Body = body
			c.Set(bodyKey, body)
		}
		return next(c)
	}
}

func tooLarge(l routeLimits) error {
	return apiError(http.StatusRequestEntityTooLarge, "%s is larger than %d bytes", l.tooLarge, l.body)
}

// limitedBody notes why reading a body failed, so that the error handler answers
// what happened (413, 408) whatever the handler made of the read error.
type limitedBody struct {
	io.ReadCloser
	limits   routeLimits
	over     atomic.Bool
	timedOut atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			b.over.Store(true)
		case errors.Is(err, os.ErrDeadlineExceeded):
			b.timedOut.Store(true)
		}
	}
	return n, err
}

// bodyError is the error a request's body caused, if it did: past its limit, or not
// in time.
func (a *API) bodyError(c echo.Context) error {
	b, _ := c.Get(bodyKey).(*limitedBody)
	switch {
	case b == nil:
		return nil
	case b.over.Load():
		return tooLarge(b.limits)
	case b.timedOut.Load():
		return apiError(http.StatusRequestTimeout, "%s did not arrive within %s", b.limits.tooLarge, b.limits.read)
	}
	return nil
}
