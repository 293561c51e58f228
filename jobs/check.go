package jobs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/deployer-dev/deployer/foundry"
	"github.com/deployer-dev/deployer/networks"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// RequestError says a deployment request cannot be run as asked. The API answers it
// with a 400; a worker that finds it (the project or network.json changed after the
// API checked) fails the job with it, final.
type RequestError struct {
	Msg string
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

// Plan is a checked deployment: the network it goes to, the project's foundry.toml
// as the job gets it, and what to deploy.
type Plan struct {
	Network networks.Network
	Config  foundry.Config
	Target  foundry.Target
}

// Check validates a deployment against the networks and its project, listed by the
// caller: the API before it enqueues, the worker again before it deploys, with the
// same rules and messages. A nil listing checks everything but the project.
func Check(p tasks.Deploy, nets networks.Set, listing *projects.Listing) (Plan, error) {
	switch p.Framework {
	case "foundry":
	case "":
		return Plan{}, requestErrorf("framework is required (foundry)")
	case "hardhat":
		return Plan{}, requestErrorf("framework hardhat is not supported yet")
	default:
		return Plan{}, requestErrorf("unknown framework %q (supported: foundry)", p.Framework)
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
	if !net.Managed() {
		return Plan{}, requestErrorf("network %q is remote, and remote deployments are not enabled", name)
	}
	if err := net.Available(); err != nil {
		return Plan{}, requestErrorf("%v", err)
	}
	plan := Plan{Network: net}
	if listing == nil {
		return plan, nil
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
	return plan, nil
}

// DefaultNetwork is where a request that names no network deploys.
const DefaultNetwork = "local"
