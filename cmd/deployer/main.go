// Command deployer deploys smart-contract projects in Docker containers. One binary
// runs every role: the HTTP API, workers, the scheduler, all three at once, and a
// client that submits a project and waits for it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/deployer-dev/deployer/internal/config"
)

const usage = `usage: deployer <command>

commands:
  api        serve the HTTP API (needs REDIS_URL)
  worker     run deployments on this host's Docker engine (needs REDIS_URL)
  scheduler  enqueue periodic maintenance (needs REDIS_URL)
  all        api, worker and scheduler in one process; embeds Redis without REDIS_URL
  submit     upload a project directory, deploy it and wait: deployer submit [flags] DIR

Configuration comes from the environment; see README.md.
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deployer:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := newLogger(cfg.LogLevel).With("instance", cfg.Instance)

	cmd, args := os.Args[1], os.Args[2:]
	if cmd == "api" || cmd == "all" {
		// Before anything starts: a half-open API is refused, not served.
		if err := cfg.CheckAPI(); err != nil {
			fmt.Fprintln(os.Stderr, "deployer:", err)
			os.Exit(2)
		}
	}
	switch cmd {
	case "api":
		err = runRoles(ctx, cfg, log, roleAPI)
	case "worker":
		err = runRoles(ctx, cfg, log, roleWorker)
	case "scheduler":
		err = runRoles(ctx, cfg, log, roleScheduler)
	case "all":
		err = runRoles(ctx, cfg, log, roleAPI|roleWorker|roleScheduler)
	case "submit":
		err = submit(ctx, cfg, args)
	default:
		fmt.Fprintf(os.Stderr, "deployer: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		log.Error("deployer stopped", "command", cmd, "error", err)
		os.Exit(1)
	}
}

// exitError ends the process with a code and no further message.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func newLogger(level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
