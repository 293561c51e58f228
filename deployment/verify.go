package deployment

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/crypto/sha3"

	"github.com/deployer-dev/deployer/chains"
	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/jobs"
)

// confirm checks forge's account of a deployment against the chain: a contract is
// reported only if a transaction of the run created it (its receipt succeeded and a
// trace shows the creation) and code is at its address. The creating transaction is
// read from the chain, not from forge's file.
func confirm(ctx context.Context, rpc *chains.RPC, b foundry.Broadcast, log *slog.Logger) ([]jobs.Contract, error) {
	createdBy := map[string]string{}
	for _, h := range b.TxHashes {
		rc, err := rpc.Receipt(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("confirm deployment: %w", err)
		}
		if rc == nil || rc.Status != "0x1" {
			continue
		}
		addrs, err := rpc.Created(ctx, h)
		if err != nil {
			// A chain without tracing still names a top-level creation.
			log.Debug("trace unavailable", "tx", h, "error", err)
			addrs = nil
			if rc.ContractAddress != nil {
				addrs = []string{strings.ToLower(*rc.ContractAddress)}
			}
		}
		for _, a := range addrs {
			if _, seen := createdBy[a]; !seen {
				createdBy[a] = h
			}
		}
	}
	var out []jobs.Contract
	for _, c := range b.Contracts {
		tx, ok := createdBy[c.Address]
		if !ok {
			log.Warn("forge reported a contract no transaction of the run created", "contract", c.Name, "address", c.Address)
			continue
		}
		code, err := rpc.Code(ctx, c.Address)
		if err != nil {
			return nil, fmt.Errorf("confirm deployment: %w", err)
		}
		if code == "" || code == "0x" {
			log.Warn("no code at a reported contract", "contract", c.Name, "address", c.Address)
			continue
		}
		out = append(out, jobs.Contract{Name: c.Name, Address: checksum(c.Address), TxHash: tx})
	}
	if len(out) == 0 && len(b.Contracts) > 0 {
		return nil, fmt.Errorf("forge reported %d contracts, none of which is on chain", len(b.Contracts))
	}
	return out, nil
}

// checksum writes an address in EIP-55 mixed case.
func checksum(addr string) string {
	a := strings.ToLower(strings.TrimPrefix(addr, "0x"))
	if len(a) != 40 {
		return addr
	}
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(a))
	sum := hex.EncodeToString(h.Sum(nil))
	var b strings.Builder
	b.WriteString("0x")
	for i, c := range a {
		if c >= 'a' && c <= 'f' && sum[i] >= '8' {
			b.WriteRune(c - 32)
		} else {
			b.WriteRune(c)
		}
	}
	return b.String()
}
