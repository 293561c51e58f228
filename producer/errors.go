package producer

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
)

// retryAfter is the wait, in seconds, a client is told while Redis is unreachable:
// a restarted Redis answers within seconds.
const retryAfter = "5"

// unavailable answers an error that says Redis cannot be reached with 503 and
// Retry-After: the request was fine and is worth repeating, and an outage of the
// store must read neither as a bug of the service (500) nor as a bad request. The
// API does no other network work, so a network error here is Redis's. Other errors
// pass through as they are.
func (a *API) unavailable(err error, c echo.Context) error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if he.Code == http.StatusServiceUnavailable {
			c.Response().Header().Set(echo.HeaderRetryAfter, retryAfter)
		}
		return err
	}
	if !storeDown(err) {
		return err
	}
	a.log.Warn("request failed: Redis is unreachable", "method", c.Request().Method, "path", c.Path(), "error", err)
	c.Response().Header().Set(echo.HeaderRetryAfter, retryAfter)
	return apiError(http.StatusServiceUnavailable, "the service's store (Redis) is unavailable; try again shortly")
}

// storeDown says err is Redis being out of reach: refused, reset or timed-out
// connections, a pool that found no connection in time, or a Redis still loading
// its data after a restart.
func storeDown(err error) bool {
	var op *net.OpError
	switch {
	case err == nil:
		return false
	case errors.As(err, &op),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted), errors.Is(err, redis.ErrClosed),
		redis.IsLoadingError(err):
		return true
	}
	// Some errors reach here as text only (asynq flattens a few).
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "LOADING "} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
