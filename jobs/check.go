package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/hardhat"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// RequestError says a deployment request cannot be run as asked. The API answers it
// with a 400; a worker that finds it (the project or network.json changed after the
// API checked) fails the job with it, final.
type RequestError struct {
	Msg string
	// Forbidden says the request is well formed but its client may not make it.
	Forbidden bool
}

func (e *RequestError) Error() string { return e.Msg }

// Final says a retry would not help.
func (e *RequestError) Final() bool { return true }

func requestErrorf(format string, args ...any) error {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

// AsRequestError turns the projects' and foundry's refusals of a project into a
// RequestError with their message, and leaves other errors (ours) alone.
func AsRequestError(err error) error {
	if errors.Is(err, projects.ErrInvalid) || errors.Is(err, foundry.ErrRefused) {
		return &RequestError{Msg: strings.TrimPrefix(err.Error(), projects.ErrInvalid.Error()+": ")}
	}
	return err
}

// Plan is a checked deployment: the network it goes to, and what to deploy: for
// Foundry, the project's foundry.toml as the job gets it and the target; for Hardhat,
// HardhatPlan.
type Plan struct {
	Network networks.Network
	Config  foundry.Config
	Target  foundry.Target
	Hardhat *HardhatPlan
}

// HardhatPlan is what a Hardhat deployment runs: the project's config file, the
// Ignition module, its parameters, and the manifests its dependencies install from.
type HardhatPlan struct {
	Config      string
	Module      string
	Parameters  json.RawMessage
	PackageJSON []byte
	Lockfile    []byte
}

// Rules are what a deployment is checked against.
type Rules struct {
	Networks networks.Set
	// Durable says the queue's Redis survives a crash: a remote deployment's journal
	// of sent transactions must, or a crash could send a deployment twice.
	Durable bool
	// Secrets says this process holds the networks' secrets (RPC URLs, keys) and
	// checks they are set. A worker does; an API on its own does not need them, and
	// leaves that check to the worker, which fails the job with the same message.
	Secrets bool
}

// Check validates a deployment against the rules and its project, listed by the
// caller: the API before it enqueues, the worker again before it deploys, with the
// same rules and messages. A nil listing checks everything but the project.
func (r Rules) Check(p tasks.Deploy, listing *projects.Listing) (Plan, error) {
	nets := r.Networks
	switch p.Framework {
	case "foundry":
		if p.Module != "" || len(p.Parameters) > 0 {
			return Plan{}, requestErrorf("module and parameters are Hardhat Ignition's; a Foundry deployment takes script or contract")
		}
	case "hardhat":
		if p.Script != "" || p.Contract != "" || len(p.ConstructorArgs) > 0 || p.Sig != "" || len(p.Args) > 0 || len(p.Env) > 0 {
			return Plan{}, requestErrorf("script, contract, constructor_args, sig, args and env are Foundry's; a Hardhat deployment takes module and parameters")
		}
	case "":
		return Plan{}, requestErrorf("framework is required (foundry or hardhat)")
	default:
		return Plan{}, requestErrorf("unknown framework %q (supported: foundry, hardhat)", p.Framework)
	}
	name := p.Network
	if name == "" {
		name = DefaultNetwork
	}
	net, err := nets.Get(name)
	if errors.Is(err, networks.ErrUnknown) {
		return Plan{}, requestErrorf("unknown network %q (known: %s)", name, strings.Join(nets.Names(), ", "))
	}
	if err != nil {
		return Plan{}, requestErrorf("%v", err)
	}
	if r.Secrets {
		if err := net.Available(); err != nil {
			return Plan{}, requestErrorf("%v", err)
		}
	}
	if !net.Allows(p.Client) {
		return Plan{}, &RequestError{Msg: fmt.Sprintf("client %q may not deploy to network %q: it is a real network, open to its listed clients and the admin", p.Client, name), Forbidden: true}
	}
	if !net.Managed() && !r.Durable {
		return Plan{}, requestErrorf("network %q is remote, and remote deployments need a Redis that survives a crash (set REDIS_URL): the record of sent transactions is what keeps a retried job from sending them twice", name)
	}
	plan := Plan{Network: net}
	if listing == nil {
		return plan, nil
	}
	if p.Framework == "hardhat" {
		return r.checkHardhat(p, plan, listing)
	}
	if listing.FoundryTOML == nil {
		return Plan{}, requestErrorf("path_url %q is not a Foundry project: it has no foundry.toml", p.Project.String())
	}
	if plan.Config, err = foundry.SanitizeConfig(listing.FoundryTOML); err != nil {
		return Plan{}, AsRequestError(err)
	}
	if plan.Target, err = foundry.ResolveTarget(listing, p.Script, p.Contract, p.ConstructorArgs); err != nil {
		return Plan{}, requestErrorf("%v", err)
	}
	if p.Sig != "" || len(p.Args) > 0 {
		if !plan.Target.IsScript() {
			return Plan{}, requestErrorf("sig and args go with a script; a contract takes constructor_args")
		}
		if err := foundry.CheckSig(p.Sig, p.Args); err != nil {
			return Plan{}, requestErrorf("%v", err)
		}
		plan.Target.Sig, plan.Target.Args = p.Sig, p.Args
	}
	if len(p.Env) > 0 {
		if !plan.Target.IsScript() {
			return Plan{}, requestErrorf("env goes with a script, which reads it with vm.envOr")
		}
		if err := foundry.CheckEnv(p.Env); err != nil {
			return Plan{}, requestErrorf("%v", err)
		}
		plan.Target.Env = p.Env
	}
	return plan, nil
}

// DefaultNetwork is where a request that names no network deploys.
const DefaultNetwork = "local"

// checkHardhat checks a Hardhat project: its config, its dependencies (before anything
// installs them), the module and its parameters.
func (r Rules) checkHardhat(p tasks.Deploy, plan Plan, listing *projects.Listing) (Plan, error) {
	conf := hardhat.ConfigOf(listing)
	if conf == "" {
		return Plan{}, requestErrorf("path_url %q is not a Hardhat project: it has no hardhat.config.ts (or .js, .mjs, .cjs)", p.Project.String())
	}
	pkg, lock := listing.Manifests["package.json"], listing.Manifests["package-lock.json"]
	if err := hardhat.CheckDependencies(listing, pkg, lock); err != nil {
		return Plan{}, requestErrorf("%v", strings.TrimPrefix(err.Error(), hardhat.ErrRefused.Error()+": "))
	}
	module, err := hardhat.ResolveModule(listing, p.Module)
	if err != nil {
		return Plan{}, requestErrorf("%v", err)
	}
	if err := hardhat.CheckParameters(p.Parameters); err != nil {
		return Plan{}, requestErrorf("%v", err)
	}
	plan.Hardhat = &HardhatPlan{Config: conf, Module: module, Parameters: p.Parameters, PackageJSON: pkg, Lockfile: lock}
	return plan, nil
}
