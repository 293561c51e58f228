package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/redis/go-redis/v9"
)

// Senders makes the keys that sign on managed chains (local, fork): one per client,
// derived from the installation's seed, so that every worker signs a client's
// deployments with the same key (the client manages what it deployed in a later job)
// and nobody else's jobs can. The keys live in the worker's memory only; the seed in
// Redis, beside the rest of the installation's state. Keys of real networks come from
// network.json, never from here.
type Senders struct {
	seed []byte
}

// NewSenders returns the senders of a seed.
func NewSenders(seed []byte) Senders { return Senders{seed: seed} }

// Key is the client's key. Without a seed there is none: every installation would
// share its keys.
func (s Senders) Key(client string) (*ecdsa.PrivateKey, error) {
	if len(s.seed) < 16 {
		return nil, errors.New("no sender seed: the worker was started without one")
	}
	for i := uint32(0); ; i++ {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], i)
		k, err := crypto.ToECDSA(crypto.Keccak256(s.seed, []byte("deployer sender v1\x00"), []byte(client), n[:]))
		if err == nil {
			return k, nil
		}
	}
}

// LoadSeed reads the installation's seed from key, making it the first time; every
// worker that reads it after that gets the same.
func LoadSeed(ctx context.Context, rdb redis.UniversalClient, key string) ([]byte, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	if _, err := rdb.SetNX(ctx, key, hex.EncodeToString(buf), 0).Result(); err != nil {
		return nil, fmt.Errorf("sender seed: %w", err)
	}
	v, err := rdb.Get(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("sender seed: %w", err)
	}
	seed, err := hex.DecodeString(v)
	if err != nil || len(seed) < 16 {
		return nil, errors.New("sender seed: the stored seed is damaged")
	}
	return seed, nil
}
