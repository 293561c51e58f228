package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/projects"
)

// deploySeeds reach every part of the decoder and the checks: valid requests of
// each kind, each refusal TestDeployRejectsBadRequestsAndEnqueuesNothing names, and
// JSON that is odd rather than wrong. producer/testdata/fuzz/FuzzDeployRequest holds
// more, and what fuzzing found.
var deploySeeds = []string{
	`{"path_url": "counter", "framework": "foundry"}`,
	`{"path_url": "counter", "framework": "foundry", "network": "local", "script": "script/Deploy.s.sol"}`,
	`{"path_url": "file://counter", "framework": "foundry", "contract": "src/Counter.sol:Counter", "constructor_args": ["7"]}`,
	`{"path_url": "counter", "framework": "foundry", "sig": "run(uint256)", "args": ["-5"]}`,
	`{"path_url": "counter", "framework": "foundry", "env": {"GREETING": "hi"}}`,
	`{"path_url": "counter", "framework": "hardhat", "module": "ignition/modules/X.ts", "parameters": {"M": {"a": 1}}}`,
	`{"path_url": "counter", "framework": "foundry", "parameters": [1, {"x": null}]}`,
	`{"path_url": "project://UPLOAD", "framework": "foundry"}`,
	`{"path_url": "sha256:UPLOAD", "framework": "hardhat"}`,
	`{"path_url": "project://` + strings.Repeat("ab", 32) + `", "framework": "foundry"}`,
	`{"path_url": "project://xyz", "framework": "foundry"}`,
	`{"path_url": "../counter", "framework": "foundry"}`,
	`{"path_url": "/etc", "framework": "foundry"}`,
	`{"path_url": "counter/../../etc", "framework": "foundry"}`,
	`{"path_url": "file:///etc/passwd", "framework": "foundry"}`,
	`{"path_url": "counter\u0000x", "framework": "foundry"}`,
	`{"path_url": "counter", "framework": "foundry", "network": "mainnet"}`,
	`{"path_url": "counter", "framework": "foundry", "network": "sepolia"}`,
	`{"path_url": "counter", "framework": "foundry", "network": "fork"}`,
	`{"path_url": "counter", "framework": "foundry", "network": "moon"}`,
	`{"path_url": "counter", "framework": "truffle"}`,
	`{"path_url": "counter", "framework": "foundry", "script": "script/Deploy.s.sol", "contract": "src/Counter.sol:Counter"}`,
	`{"path_url": "counter", "framework": "foundry", "sig": "run(uint256", "args": ["1"]}`,
	`{"path_url": "counter", "framework": "foundry", "sig": "0x", "args": []}`,
	`{"path_url": "counter", "framework": "foundry", "sig": "run(address,uint256)", "args": ["0x1"]}`,
	`{"path_url": "counter", "framework": "foundry", "env": {"FOUNDRY_FFI": "true", "lower": "x", "": ""}}`,
	`{"path_url": "counter", "framework": "foundry", "contract": "../../x.sol:X"}`,
	`{"path_url": "counter", "framework": "foundry", "script": "/etc/passwd"}`,
	`{"path_url": "counter", "colour": 1}`,
	`{"path_url": "counter", "path_url": "nope", "framework": "foundry"}`,
	`{"framework": "foundry"}`,
	`{"path_url": " ", "framework": "foundry"}`,
	`{"path_url": 1, "framework": ["foundry"]}`,
	`{"path_url": "counter", "framework": "foundry"} {}`,
	`{"path_url": "counter", "framework": "foundry", "args": null, "env": null, "parameters": null}`,
	`{"path_url": "\ud800", "framework": "foundry\u2028"}`,
	`[1,2]`, `null`, `"counter"`, `1e999`, `{`, ``, `{}`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
}

// FuzzDeployRequest feeds arbitrary bodies to the real POST /deploy handler: it
// never panics nor answers a 5xx, its 4xx carry a JSON error, and nothing is
// enqueued (nor recorded) unless it answers 202.
func FuzzDeployRequest(f *testing.F) {
	fx := newFixtureConfig(f, nil)
	var archive bytes.Buffer
	if err := projects.Pack(&archive, filepath.Join(fx.root, "counter"), projects.DefaultLimits, projects.PackOptions{Gzip: true}); err != nil {
		f.Fatal(err)
	}
	// An upload for the project:// seeds to find.
	sum, err := fx.api.projects.Put(context.Background(), archive.Bytes())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range deploySeeds {
		f.Add([]byte(strings.ReplaceAll(s, "UPLOAD", sum)))
	}
	h := fx.api.Handler()
	queued := func() int {
		info, err := fx.insp.GetQueueInfo(fx.ns.DeployQueue())
		if err != nil {
			return 0 // no queue yet: nothing was ever enqueued
		}
		return info.Size + info.Completed + info.Archived
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before, recordsBefore := queued(), len(fx.jobKeys())
		req := httptest.NewRequest(http.MethodPost, "/deploy", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		code := rec.Code
		if code >= 500 {
			t.Fatalf("%d for %q: %s", code, body, rec.Body)
		}
		if code >= 400 {
			var e api.Error
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") ||
				json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("%d for %q answered %q as %q, not a JSON error", code, body, rec.Body, ct)
			}
		}
		after, recordsAfter := queued(), len(fx.jobKeys())
		want := before
		if code == http.StatusAccepted {
			want++
		}
		if after != want || (code != http.StatusAccepted && recordsAfter != recordsBefore) {
			t.Fatalf("%d for %q: %d tasks enqueued, %d records made", code, body, after-before, recordsAfter-recordsBefore)
		}
	})
}
