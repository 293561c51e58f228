package e2e

import (
	"context"
	"math/big"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/chains"
)

// callUint calls a view function that takes no argument and returns a uint256.
func callUint(t *testing.T, rpcURL, addr, selector string) uint64 {
	t.Helper()
	var out string
	err := chains.NewRPC(rpcURL, nil).Call(context.Background(), "eth_call", &out,
		map[string]string{"to": addr, "data": selector}, "latest")
	if err != nil {
		t.Fatalf("eth_call %s on %s: %v", selector, addr, err)
	}
	n, ok := new(big.Int).SetString(strings.TrimPrefix(out, "0x"), 16)
	if !ok {
		t.Fatalf("eth_call answered %q", out)
	}
	return n.Uint64()
}
