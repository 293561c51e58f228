package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/deployer-dev/deployer/api"
	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/internal/testenv"
	"github.com/deployer-dev/deployer/projects"
)

// byHandConfig is what a user writes to deploy by hand: the project's config, the
// compiler's path, and a network that reaches the chain and signs with anvil's first
// key itself.
const byHandConfig = `import user from "./hardhat.config.ts";
export default {
  ...user,
  solidity: { version: "0.8.28", path: "/opt/compilers/0.8.28/soljson.js" },
  networks: { byhand: { type: "http", url: %q,
    accounts: ["0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"] } },
};
`

// BenchmarkWarmHardhatDeployment compares a warm Hardhat deployment through the
// service (image, container, dependencies and compile cache reused, the gateway
// signing) with `hardhat ignition deploy` run by hand in a warm container that has
// the same dependencies and compiler and reaches the same chain. Run it with
// `make bench-hardhat`.
func BenchmarkWarmHardhatDeployment(b *testing.B) {
	requireParts(b)
	s, err := startStack(stackOpts{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.stop()
	ctx := context.Background()
	dir := filepath.Join(testenv.RepoRoot(), "examples", "hardhat-counter")
	up, err := s.client.UploadDir(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	req := api.DeployRequest{PathURL: up.PathURL, Framework: "hardhat"}
	// The first deployment builds the image, installs the dependencies, fetches the
	// compiler, starts the chain and fills the caches.
	first := s.deploy(b, req)
	requireCompleted(b, first)

	// By hand: a container of the same image, with the same volumes, on the chains'
	// network.
	eng := testenv.RequireEngine(b, s.instance)
	jobs, err := eng.ListContainers(ctx, map[string]string{engine.LabelRole: engine.RoleJob})
	if err != nil || len(jobs) == 0 {
		b.Fatalf("no job container to copy the setting of: %v", err)
	}
	job, err := eng.InspectContainer(ctx, jobs[0].ID)
	if err != nil {
		b.Fatal(err)
	}
	var mounts []engine.Mount
	for _, vol := range inspectMounts(b, job.ID) {
		target := "/opt/compilers"
		if strings.Contains(vol, "-deps-") {
			target = "/opt/deps"
		}
		mounts = append(mounts, engine.Mount{Volume: vol, Target: target, ReadOnly: true})
	}
	id, err := eng.CreateContainer(ctx, engine.ContainerSpec{
		Name: "deployer-" + s.instance + "-byhand", Image: job.Image, Cmd: []string{"sleep", "infinity"}, User: "10001:10001",
		Labels: eng.Labels(engine.RoleJob, nil), Tmpfs: map[string]string{"/work": "size=512m,uid=10001,gid=10001,mode=0700", "/tmp": "size=64m,uid=10001,gid=10001,mode=0700"},
		Mounts: mounts, Network: "deployer-network-" + s.instance,
	})
	if err != nil {
		b.Fatal(err)
	}
	var archive bytes.Buffer
	if err := projects.Pack(&archive, dir, projects.DefaultLimits, projects.PackOptions{Prefix: "p/", UID: 10001, GID: 10001,
		Skip:    func(rel string, _ bool) bool { return rel == "node_modules" || rel == "ignition/deployments" },
		Replace: map[string][]byte{"byhand.config.ts": fmt.Appendf(nil, byHandConfig, "http://chain-local:8545")}}); err != nil {
		b.Fatal(err)
	}
	run := func(cmd string) time.Duration {
		var out bytes.Buffer
		start := time.Now()
		code, err := eng.Exec(ctx, id, engine.ExecSpec{Cmd: []string{"sh", "-c", cmd}, WorkDir: "/work/p", Env: []string{"HARDHAT_IGNITION_CONFIRM_DEPLOYMENT=1"}, Stdout: &out, Stderr: &out})
		if err != nil || code != 0 {
			b.Fatalf("%s: %d %v\n%s", cmd, code, err, out.String())
		}
		return time.Since(start)
	}
	if code, err := eng.Exec(ctx, id, engine.ExecSpec{Cmd: []string{"tar", "-x", "-C", "/work"}, Stdin: &archive}); err != nil || code != 0 {
		b.Fatalf("copy the project: %d %v", code, err)
	}
	run("ln -s /opt/deps/node_modules node_modules && node node_modules/hardhat/dist/src/cli.js --config byhand.config.ts build")

	var service, forHand, inHardhat int64
	b.ResetTimer()
	for range b.N {
		j := s.deploy(b, req)
		requireCompleted(b, j)
		if !j.Cache.CompileHit || !j.Cache.DepsHit || !j.Cache.ContainerReused {
			b.Fatalf("a warm deployment missed a cache: %+v", j.Cache)
		}
		service += j.Timings.Total
		inHardhat += j.Timings.Within.Forge
		forHand += run("rm -rf ignition/deployments && node node_modules/hardhat/dist/src/cli.js --config byhand.config.ts ignition deploy ignition/modules/Counter.ts --network byhand").Milliseconds()
	}
	n := float64(b.N)
	svc, hand := float64(service)/n, float64(forHand)/n
	b.ReportMetric(svc, "service-ms")
	b.ReportMetric(hand, "by-hand-ms")
	b.ReportMetric(svc/hand, "service/by-hand")
	fmt.Printf("\nwarm Hardhat Ignition deployment of examples/hardhat-counter (n=%d)\n", b.N)
	fmt.Printf("  by hand in a warm container (ignition deploy, signing itself)   %6.0f ms\n", hand)
	fmt.Printf("  through the service (API to completed, gateway signing)         %6.0f ms   (in Hardhat: %.0f ms)\n", svc, float64(inHardhat)/n)
	fmt.Printf("  service / by hand                                                %6.2f\n", svc/hand)
}

// inspectMounts lists the named volumes a container mounts.
func inspectMounts(b *testing.B, id string) []string {
	b.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	c, err := cli.ContainerInspect(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, m := range c.Mounts {
		if m.Name != "" {
			out = append(out, m.Name)
		}
	}
	return out
}
