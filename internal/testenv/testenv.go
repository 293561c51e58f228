// Package testenv gives tests the real parts they run against (the Docker engine, the
// toolchain set-up fetched, a redis-server) and fails, rather than skips, when one is
// missing under CI=true.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/engine/docker"
)

// Missing skips the test, or fails it under CI=true, where a missing dependency is
// a broken machine rather than a choice.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("missing under CI: %s", msg)
	}
	t.Skipf("skipped: %s (run make setup)", msg)
}

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Toolchain is the directory set-up fills.
func Toolchain() string {
	if d := os.Getenv("TOOLCHAIN_DIR"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".toolchain")
}

// BaseImage is the base image set-up makes.
const BaseImage = "deployer-base:bookworm"

// Instance returns a fresh installation name for a test run, so that concurrent
// test packages never see each other's resources.
func Instance(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// RequireEngine returns an engine for the instance, or skips (fails under CI).
func RequireEngine(t testing.TB, instance string) *docker.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	eng, err := docker.New(ctx, instance)
	if err != nil {
		Missing(t, "Docker engine: %v", err)
	}
	if _, err := eng.InspectImage(ctx, BaseImage); err != nil {
		Missing(t, "base image %s: %v", BaseImage, err)
	}
	if _, err := os.Stat(filepath.Join(Toolchain(), "bin", "forge")); err != nil {
		Missing(t, "toolchain: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// Cleanup removes every container, volume, network and image labelled with the
// instance. Tests use instances of their own, so this never touches anything else.
func Cleanup(instance string) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", engine.LabelInstance+"="+instance),
		filters.Arg("label", engine.LabelManagedBy+"="+engine.ManagedByValue))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return err
	}
	for _, c := range cs {
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	vs, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err == nil {
		for _, v := range vs.Volumes {
			_ = cli.VolumeRemove(ctx, v.Name, true)
		}
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err == nil {
		for _, n := range ns {
			_ = cli.NetworkRemove(ctx, n.ID)
		}
	}
	imgs, err := cli.ImageList(ctx, image.ListOptions{Filters: f})
	if err == nil {
		for _, img := range imgs {
			_, _ = cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	}
	return nil
}

// Leftovers lists the containers still labelled with the instance.
func Leftovers(ctx context.Context, instance string, match map[string]string) ([]string, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	f := filters.NewArgs(filters.Arg("label", engine.LabelInstance+"="+instance))
	for k, v := range match {
		f.Add("label", k+"="+v)
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		out = append(out, c.Names[0])
	}
	return out, nil
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// RedisServer starts a real redis-server on a free port for the test and returns its
// URL.
func RedisServer(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Missing(t, "redis-server: %v", err)
	}
	url, stop, err := StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}

// StartRedis starts a real redis-server on a free port of 127.0.0.1, without
// persistence, and returns its URL and a function that stops it.
func StartRedis() (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "redis-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "redis://" + addr + "/0", stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server did not start: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Anvil starts the toolchain's anvil on a free port of 127.0.0.1 with args, for the
// test, and returns its URL once it answers.
func Anvil(t testing.TB, args ...string) string {
	t.Helper()
	bin := filepath.Join(Toolchain(), "bin", "anvil")
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "anvil: %v", err)
	}
	for attempt := 0; ; attempt++ {
		port := FreePort(t)
		cmd := exec.Command(bin, append([]string{"--host", "127.0.0.1", "--port", strconv.Itoa(port)}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		deadline := time.Now().Add(time.Minute)
		for {
			if isDone(done) {
				// Another process took the port in between: try another.
				if attempt >= 3 {
					t.Fatalf("anvil exited")
				}
				break
			}
			resp, err := http.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`))
			if err == nil {
				resp.Body.Close()
				return url
			}
			if time.Now().After(deadline) {
				t.Fatalf("anvil on %s did not answer: %v", url, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
