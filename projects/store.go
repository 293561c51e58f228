package projects

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/deployer-dev/deployer/tasks"
)

// Store keeps uploaded project archives in Redis, addressed by their sha256, so that
// a worker on any host can fetch the project of its job.
type Store struct {
	rdb redis.UniversalClient
	ns  tasks.Namespace
	ttl time.Duration
}

// ErrNotFound says no archive has the id (never uploaded, or expired).
var ErrNotFound = errors.New("project not found")

// NewStore returns a store whose archives live ttl after their last use.
func NewStore(rdb redis.UniversalClient, ns tasks.Namespace, ttl time.Duration) *Store {
	return &Store{rdb: rdb, ns: ns, ttl: ttl}
}

// Sum is the id of an archive: the hex sha256 of its bytes.
func Sum(archive []byte) string {
	h := sha256.Sum256(archive)
	return hex.EncodeToString(h[:])
}

var sumRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseUploadURL reads "project://<sha256>" (or "sha256:<hex>") and returns the hex.
func ParseUploadURL(s string) (string, bool, error) {
	var id string
	switch {
	case strings.HasPrefix(s, "project://"):
		id = strings.TrimPrefix(s, "project://")
	case strings.HasPrefix(s, "sha256:"):
		id = strings.TrimPrefix(s, "sha256:")
	default:
		return "", false, nil
	}
	id = strings.TrimPrefix(id, "sha256:")
	if !sumRE.MatchString(id) {
		return "", true, invalidf("%q is not a project id (project://<64 hex digits>)", s)
	}
	return id, true, nil
}

func (s *Store) key(sum string) string { return s.ns.ProjectKey(sum) }

// Put stores an archive and returns its id.
func (s *Store) Put(ctx context.Context, archive []byte) (string, error) {
	return s.PutCharged(ctx, archive, Charge{})
}

// Charge names the budget storing an archive is charged to: Key counts the bytes its
// client stored in the budget's current window, Limit caps them, and the window (and
// its counter) ends at Ends. The zero Charge charges no one.
type Charge struct {
	Key   string
	Limit int64
	Ends  time.Time
}

// BudgetError says storing the archive would take its client past its budget.
type BudgetError struct {
	// Limit is the budget, Used what the window holds already, Size the archive's.
	Limit, Used, Size int64
	// Frees is when the window ends.
	Frees time.Time
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("upload budget spent: %d of %d bytes used, the archive has %d; it frees at %s",
		e.Used, e.Limit, e.Size, e.Frees.UTC().Format(time.RFC3339))
}

// putCharged stores an archive unless it is stored already, and charges its size to
// the client's counter (KEYS[2], when given) unless that would pass the limit. The
// check, the charge and the store are one step, so that concurrent uploads cannot
// pass the budget together, and an archive stored already costs nothing: it takes no
// more memory. It answers {1, bytes charged}, or {0, bytes used} over the budget.
var putCharged = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, 0}
end
local size = string.len(ARGV[1])
if #KEYS > 1 then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used + size > tonumber(ARGV[3]) then return {0, used} end
  redis.call('INCRBY', KEYS[2], size)
  redis.call('EXPIREAT', KEYS[2], ARGV[4])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, size}
`)

// PutCharged stores an archive and returns its id, charging its size to the
// charge's budget unless the same archive is stored already. Over the budget it
// stores nothing and returns a *BudgetError.
func (s *Store) PutCharged(ctx context.Context, archive []byte, ch Charge) (string, error) {
	sum := Sum(archive)
	keys := []string{s.key(sum)}
	args := []any{archive, s.ttl.Milliseconds()}
	if ch.Limit > 0 {
		keys = append(keys, ch.Key)
		args = append(args, ch.Limit, ch.Ends.Unix())
	}
	res, err := putCharged.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return "", fmt.Errorf("store project: %w", err)
	}
	if len(res) != 2 {
		return "", fmt.Errorf("store project: unexpected answer %v", res)
	}
	if res[0] == 0 {
		return "", &BudgetError{Limit: ch.Limit, Used: res[1], Size: int64(len(archive)), Frees: ch.Ends}
	}
	return sum, nil
}

// Get fetches an archive and extends its life.
func (s *Store) Get(ctx context.Context, sum string) ([]byte, error) {
	b, err := s.rdb.GetEx(ctx, s.key(sum), s.ttl).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("fetch project %s: %w", sum, err)
	}
	// Content addressing also guards against a store that returns other bytes.
	if Sum(b) != sum {
		return nil, fmt.Errorf("project %s: stored archive does not match its id", sum)
	}
	return b, nil
}
