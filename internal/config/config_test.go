package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"24h", 24 * time.Hour, true},
		{"10m", 10 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"500ms", 500 * time.Millisecond, true},
		{"86400", 24 * time.Hour, true},
		{"0", 0, true},
		{"1.5", 1500 * time.Millisecond, true},
		{" 30 ", 30 * time.Second, true},
		{" 2h\n", 2 * time.Hour, true},
		{"", 0, false},
		{"bad", 0, false},
		{"24", 24 * time.Second, true},
		{"24 h", 0, false},
		{"1d", 0, false},
		{"-1", 0, false},
		{"-1.5", 0, false},
		{"-24h", 0, false},
		// Not durations, though ParseFloat reads them.
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"+Inf", 0, false},
		{"1e300", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDurationDecode(t *testing.T) {
	var d Duration
	if err := d.Decode("90"); err != nil || d.D() != 90*time.Second {
		t.Errorf("Decode(90) = %v, %v", d.D(), err)
	}
	if err := d.Decode("nope"); err == nil {
		t.Errorf("Decode(nope) = nil error")
	}
	if d.D() != 90*time.Second {
		t.Errorf("a failed Decode changed the value to %v", d.D())
	}
}

func TestByteSizeDecode(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"2g", 2 << 30, true},
		{"2G", 2 << 30, true},
		{"512m", 512 << 20, true},
		{"512M", 512 << 20, true},
		{"64k", 64 << 10, true},
		{"100", 100, true},
		{" 1g ", 1 << 30, true},
		{"", 0, false},
		{"g", 0, false},
		{"0", 0, false},
		{"0m", 0, false},
		{"-1", 0, false},
		{"-1g", 0, false},
		{"1.5g", 0, false},
		{"2gb", 0, false},
		{"2t", 0, false},
		{"lots", 0, false},
		// Too large for an int64 once multiplied.
		{"9000000000g", 0, false},
		{"9223372036854775807k", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b ByteSize
			err := b.Decode(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("Decode(%q) = %d, want an error", tt.in, b)
				}
				return
			}
			if err != nil || b != tt.want {
				t.Fatalf("Decode(%q) = %d, %v; want %d", tt.in, b, err, tt.want)
			}
		})
	}
}

var allVars = []string{
	"DEPLOYER_INSTANCE", "REDIS_URL", "HTTP_ADDR", "PUBLIC_HOST", "PROJECTS_ROOT",
	"MAX_PROJECT_BYTES", "NETWORKS_FILE", "WORKER_ID", "WORKER_CONCURRENCY",
	"JOB_TIMEOUT", "JOB_RETENTION", "JOB_MAX_RETRY", "SHUTDOWN_TIMEOUT", "JOB_MEMORY",
	"JOB_CPUS", "JOB_PIDS", "BASE_IMAGE", "TOOLCHAIN_DIR", "LOG_LEVEL", "DEPLOYER_API",
	"API_TOKEN", "API_TOKENS", "ADMIN_TOKEN", "UPLOAD_BUDGET_BYTES", "LOG_BUDGET_BYTES",
}

// cleanEnv unsets every variable Load reads, for the test only.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range allVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestLoadDefaults(t *testing.T) {
	cleanEnv(t)
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wd, _ := os.Getwd()
	checks := []struct {
		name      string
		got, want any
	}{
		{"Instance", c.Instance, "default"},
		{"HTTPAddr", c.HTTPAddr, "127.0.0.1:5001"},
		{"UploadBudgetBytes", c.UploadBudgetBytes, ByteBudget(512 << 20)},
		{"LogBudgetBytes", c.LogBudgetBytes, ByteBudget(128 << 20)},
		{"ProjectsRoot", c.ProjectsRoot, wd},
		{"MaxProjectBytes", c.MaxProjectBytes, int64(20971520)},
		{"WorkerConcurrency", c.WorkerConcurrency, 4},
		{"JobTimeout", c.JobTimeout.D(), 10 * time.Minute},
		{"JobRetention", c.JobRetention.D(), 48 * time.Hour},
		{"ShutdownTimeout", c.ShutdownTimeout.D(), 30 * time.Second},
		{"JobMemory", c.JobMemory, ByteSize(2 << 30)},
		{"JobCPUs", c.JobCPUs, 2.0},
		{"JobPids", c.JobPids, int64(512)},
		{"NetworksFile", c.NetworksFile, "network.json"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadFromEnv(t *testing.T) {
	cleanEnv(t)
	root := t.TempDir()
	t.Setenv("DEPLOYER_INSTANCE", "prod-2")
	t.Setenv("PROJECTS_ROOT", root)
	t.Setenv("JOB_TIMEOUT", "600")
	t.Setenv("JOB_RETENTION", "86400")
	t.Setenv("SHUTDOWN_TIMEOUT", "1.5")
	t.Setenv("JOB_MEMORY", "512m")
	t.Setenv("WORKER_CONCURRENCY", "8")
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Instance != "prod-2" || c.ProjectsRoot != root || c.WorkerConcurrency != 8 {
		t.Errorf("Load = %+v", c)
	}
	if c.JobTimeout.D() != 10*time.Minute {
		t.Errorf("JobTimeout = %v, want 10m", c.JobTimeout.D())
	}
	if c.JobRetention.D() != 24*time.Hour {
		t.Errorf("JobRetention = %v, want 24h", c.JobRetention.D())
	}
	if c.ShutdownTimeout.D() != 1500*time.Millisecond {
		t.Errorf("ShutdownTimeout = %v, want 1.5s", c.ShutdownTimeout.D())
	}
	if c.JobMemory != 512<<20 {
		t.Errorf("JobMemory = %d", c.JobMemory)
	}
}

func TestLoadRefused(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		msg  string
	}{
		{"instance with capital and underscore", map[string]string{"DEPLOYER_INSTANCE": "Bad_Name"}, "DEPLOYER_INSTANCE"},
		{"instance with dot", map[string]string{"DEPLOYER_INSTANCE": "a.b"}, "DEPLOYER_INSTANCE"},
		{"instance with colon", map[string]string{"DEPLOYER_INSTANCE": "a:b"}, "DEPLOYER_INSTANCE"},
		{"instance with leading dash", map[string]string{"DEPLOYER_INSTANCE": "-a"}, "DEPLOYER_INSTANCE"},
		{"instance too long", map[string]string{"DEPLOYER_INSTANCE": strings.Repeat("a", 33)}, "DEPLOYER_INSTANCE"},
		{"retention 1h", map[string]string{"JOB_RETENTION": "1h"}, "JOB_RETENTION"},
		{"retention in seconds too short", map[string]string{"JOB_RETENTION": "3600"}, "JOB_RETENTION"},
		{"timeout zero", map[string]string{"JOB_TIMEOUT": "0"}, "JOB_TIMEOUT"},
		{"timeout bad", map[string]string{"JOB_TIMEOUT": "soon"}, "JOB_TIMEOUT"},
		{"timeout negative", map[string]string{"JOB_TIMEOUT": "-5"}, "JOB_TIMEOUT"},
		{"shutdown bad", map[string]string{"SHUTDOWN_TIMEOUT": "later"}, "SHUTDOWN_TIMEOUT"},
		{"memory bad", map[string]string{"JOB_MEMORY": "2gb"}, "JOB_MEMORY"},
		// The values below pass ParseDuration and ByteSize.Decode as negative numbers.
		{"shutdown infinite", map[string]string{"SHUTDOWN_TIMEOUT": "inf"}, "SHUTDOWN_TIMEOUT"},
		{"memory overflowing", map[string]string{"JOB_MEMORY": "9000000000g"}, "JOB_MEMORY"},
		{"concurrency zero", map[string]string{"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY"},
		{"concurrency not a number", map[string]string{"WORKER_CONCURRENCY": "four"}, "WORKER_CONCURRENCY"},
		{"max project bytes zero", map[string]string{"MAX_PROJECT_BYTES": "0"}, "MAX_PROJECT_BYTES"},
		{"upload budget bad", map[string]string{"UPLOAD_BUDGET_BYTES": "lots"}, "UPLOAD_BUDGET_BYTES"},
		{"log budget negative", map[string]string{"LOG_BUDGET_BYTES": "-1"}, "LOG_BUDGET_BYTES"},
		{"upload budget below one upload", map[string]string{"UPLOAD_BUDGET_BYTES": "1m", "MAX_PROJECT_BYTES": "2097152"}, "UPLOAD_BUDGET_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load()
			if err == nil {
				t.Fatalf("Load = %+v, want an error", c)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err %q does not name %s", err, tt.msg)
			}
		})
	}
}

func TestValidInstance(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"default", true},
		{"a", true},
		{"prod-2", true},
		{"0abc", true},
		{strings.Repeat("a", 32), true},
		{"", false},
		{"-a", false},
		{"Bad", false},
		{"a_b", false},
		{"a b", false},
		{"ä", false},
		{strings.Repeat("a", 33), false},
	}
	for _, tt := range tests {
		if got := validInstance(tt.in); got != tt.ok {
			t.Errorf("validInstance(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}

// Without an admin token every route is open, so the API listens on loopback unless
// told otherwise; with one, on every interface. An explicit HTTP_ADDR is honoured.
func TestHTTPAddrDependsOnAdminToken(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no admin token", nil, "127.0.0.1:5001"},
		{"an API token alone", map[string]string{"API_TOKEN": "t"}, "127.0.0.1:5001"},
		{"admin token", map[string]string{"ADMIN_TOKEN": "a"}, ":5001"},
		{"explicit, open", map[string]string{"HTTP_ADDR": "0.0.0.0:7000"}, "0.0.0.0:7000"},
		{"explicit, with admin token", map[string]string{"HTTP_ADDR": "127.0.0.1:7000", "ADMIN_TOKEN": "a"}, "127.0.0.1:7000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			if c.HTTPAddr != tt.want {
				t.Errorf("HTTPAddr = %q, want %q", c.HTTPAddr, tt.want)
			}
		})
	}
}

// Deployment tokens without an admin token would leave the dashboard and admin
// routes open while deployments need a token: the API refuses to start, saying why
// and never repeating a token.
func TestCheckAPI(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Config
		ok   bool
	}{
		{"no tokens", Config{}, true},
		{"admin token alone", Config{AdminToken: "a"}, true},
		{"both", Config{AdminToken: "a", APIToken: "secret-api"}, true},
		{"named clients with admin", Config{AdminToken: "a", APITokens: Clients{"alice": "secret-alice"}}, true},
		{"API token alone", Config{APIToken: "secret-api"}, false},
		{"named clients alone", Config{APITokens: Clients{"alice": "secret-alice"}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.CheckAPI()
			if (err == nil) != tt.ok {
				t.Fatalf("CheckAPI = %v, want ok=%t", err, tt.ok)
			}
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), "ADMIN_TOKEN") || strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q: names no ADMIN_TOKEN, or repeats a token", err)
			}
		})
	}
}

func TestByteBudgetDecode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want ByteBudget
		ok   bool
	}{
		{"0", 0, true},
		{" 0 ", 0, true},
		{"512m", 512 << 20, true},
		{"1g", 1 << 30, true},
		{"1000", 1000, true},
		{"", 0, false},
		{"-1", 0, false},
		{"off", 0, false},
		{"2gb", 0, false},
	} {
		var b ByteBudget
		err := b.Decode(tt.in)
		if (err == nil) != tt.ok || (tt.ok && b != tt.want) {
			t.Errorf("Decode(%q) = %d, %v; want %d, ok=%t", tt.in, b, err, tt.want, tt.ok)
		}
	}
}
