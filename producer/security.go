package producer

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// Access is who may call what.
type Access struct {
	// APIToken opens the deployment routes; AdminToken opens every route. With no
	// AdminToken every route is open (a development set-up).
	APIToken   string
	AdminToken string
	// APITokens open the deployment routes too, each to a named client (name to
	// token). A client is the holder of one token: its deployments sign with one key.
	APITokens map[string]string
	// RateLimit is deployments per minute per client (0: no limit), with bursts of
	// RateLimitBurst.
	RateLimit      float64
	RateLimitBurst int
	// TrustedProxies are the CIDR ranges whose X-Forwarded-For names the client.
	TrustedProxies []string
}

// check refuses access control that would leave the API half open: deployment
// tokens guarding the deployment routes while every other route stays open.
func (a Access) check() error {
	if a.AdminToken == "" && (a.APIToken != "" || len(a.APITokens) > 0) {
		return errors.New("API tokens are set but no admin token (ADMIN_TOKEN): the dashboard, monitoring and admin routes would be open to anyone")
	}
	return nil
}

// tokenOf reads a Bearer token, or the password of basic auth (a browser's way).
func tokenOf(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	if _, pass, ok := r.BasicAuth(); ok {
		return pass
	}
	return ""
}

func equal(a, b string) bool {
	return b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// clientDefault names API_TOKEN's holder; networks.AdminClient the admin token's.
const clientDefault = "default"

// clientKey is where identify leaves the caller's client name for the handlers.
const clientKey = "deployer.client"

// clientOf is the caller's client: the name of its token's holder, or "" when no
// tokens are configured (then every job is its own client).
func clientOf(c echo.Context) string {
	name, _ := c.Get(clientKey).(string)
	return name
}

// identify admits a request carrying one of the tokens (name to token), answers 401
// with no hint otherwise, and names the token's holder for the handlers. No tokens
// configured admits everyone, as no one in particular.
func identify(browser bool, tokens map[string]string) echo.MiddlewareFunc {
	set := map[string]string{}
	for name, t := range tokens {
		if t != "" {
			set[name] = t
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if len(set) == 0 {
				return next(c)
			}
			got := tokenOf(c.Request())
			// Every token is compared, so that the time taken does not tell which.
			holder := ""
			for name, t := range set {
				if equal(got, t) {
					holder = name
				}
			}
			if holder != "" {
				c.Set(clientKey, holder)
				return next(c)
			}
			if browser {
				// Lets a browser ask for the token (as a password).
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="deployer"`)
			}
			return apiError(http.StatusUnauthorized, "unauthorized")
		}
	}
}

// budgetClient names who a request's uploads and its jobs' output are charged to:
// its token's holder, or, with no tokens configured, its address (the one the rate
// limits use), since no one in particular is then the address's owner.
func budgetClient(c echo.Context) string {
	if name := clientOf(c); name != "" {
		return name
	}
	return "ip:" + c.RealIP()
}

// crossOrigin refuses state-changing requests a browser sends from another site
// (by Sec-Fetch-Site, or Origin against Host): a browser resends basic-auth
// credentials with them. Requests without either header come from programs, and
// the dashboard's own are same-origin.
func crossOrigin() echo.MiddlewareFunc {
	cop := http.NewCrossOriginProtection()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := cop.Check(c.Request()); err != nil {
				return apiError(http.StatusForbidden, "cross-site request refused: a page of another site may not %s %s here",
					c.Request().Method, c.Path())
			}
			return next(c)
		}
	}
}

// requireContentType answers 415 to a request with a body that is none of the
// media types, naming them. A bodiless request passes: it has nothing to
// mislabel. Beyond clear errors, it keeps HTML forms, which can send only
// form and text types, from reaching the routes at all.
func requireContentType(types ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength == 0 || r.Method == http.MethodGet || r.Method == http.MethodHead {
				return next(c)
			}
			ct := r.Header.Get("Content-Type")
			mt, _, err := mime.ParseMediaType(ct)
			if err == nil && slices.Contains(types, mt) {
				return next(c)
			}
			if ct == "" {
				ct = "none"
			}
			return apiError(http.StatusUnsupportedMediaType, "%s %s takes Content-Type %s, not %.100q",
				r.Method, c.Path(), strings.Join(types, " or "), ct)
		}
	}
}

// jsonBody admits JSON bodies only.
var jsonBody = requireContentType("application/json")

// archiveBody admits a gzip'd tar, as the Go client and curl label it.
var archiveBody = requireContentType("application/gzip", "application/x-gzip", "application/octet-stream")

// ipExtractor takes the client's address from the connection, or from
// X-Forwarded-For when the connection comes from a trusted proxy.
func ipExtractor(trusted []string) (echo.IPExtractor, error) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, cidr := range trusted {
		_, n, err := net.ParseCIDR(strings.TrimSpace(cidr))
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", cidr, err)
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}

// rateLimit bounds requests of one kind (what: "deployments") per client, each
// kind with its own allowance. Past the burst it answers 429 with the seconds until
// the next one is allowed.
func rateLimit(what string, perMinute float64, burst int) echo.MiddlewareFunc {
	if perMinute <= 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	perSecond := perMinute / 60
	retryAfter := fmt.Sprint(int(math.Ceil(1 / perSecond)))
	store := middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(perSecond), Burst: burst, ExpiresIn: 10 * time.Minute,
	})
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store:               store,
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", retryAfter)
			return apiError(http.StatusTooManyRequests, "too many %s from this client: at most %g a minute, in bursts of %d", what, perMinute, burst)
		},
		ErrorHandler: func(c echo.Context, err error) error {
			return apiError(http.StatusForbidden, "cannot tell who the client is")
		},
	})
}

// securityHeaders are set on every answer; pages get a content security policy that
// loads nothing from elsewhere.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
		return next(c)
	}
}
