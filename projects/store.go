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
	sum := Sum(archive)
	if err := s.rdb.Set(ctx, s.key(sum), archive, s.ttl).Err(); err != nil {
		return "", fmt.Errorf("store project: %w", err)
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
