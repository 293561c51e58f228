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
	// One round trip: every receipt and trace, and the code at every address forge
	// names.
	receipts := make([]*chains.Receipt, len(b.TxHashes))
	traces := make([]chains.Trace, len(b.TxHashes))
	codes := make([]string, len(b.Contracts))
	var calls []*chains.BatchCall
	for i, h := range b.TxHashes {
		calls = append(calls, chains.ReceiptCall(h, &receipts[i]), chains.TraceCall(h, &traces[i]))
	}
	for i, c := range b.Contracts {
		calls = append(calls, chains.CodeCall(c.Address, &codes[i]))
	}
	if err := rpc.Batch(ctx, calls); err != nil {
		return nil, fmt.Errorf("confirm deployment: %w", err)
	}
	createdBy := map[string]string{}
	for i, h := range b.TxHashes {
		rc, trace := calls[2*i], calls[2*i+1]
		if rc.Err != nil {
			return nil, fmt.Errorf("confirm deployment: %w", rc.Err)
		}
		if receipts[i] == nil || receipts[i].Status != "0x1" {
			continue
		}
		addrs := traces[i].Created()
		if trace.Err != nil {
			// A chain without tracing still names a top-level creation.
			log.Debug("trace unavailable", "tx", h, "error", trace.Err)
			addrs = nil
			if ca := receipts[i].ContractAddress; ca != nil {
				addrs = []string{strings.ToLower(*ca)}
			}
		}
		for _, a := range addrs {
			if _, seen := createdBy[a]; !seen {
				createdBy[a] = h
			}
		}
	}
	var out []jobs.Contract
	for i, c := range b.Contracts {
		tx, ok := createdBy[c.Address]
		if !ok {
			log.Warn("forge reported a contract no transaction of the run created", "contract", c.Name, "address", c.Address)
			continue
		}
		if err := calls[2*len(b.TxHashes)+i].Err; err != nil {
			return nil, fmt.Errorf("confirm deployment: %w", err)
		}
		if codes[i] == "" || codes[i] == "0x" {
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
