// Package tasks is the contract between the API and the workers: task types, their
// versioned payloads, and the names (queues, Redis keys) of one installation.
package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task types.
const (
	TypeDeploy = "deploy:run"
)

// DeployVersion is the newest version of the Deploy payload this release writes;
// it reads every version from 1. A payload is written with the oldest version that
// holds what it carries, so that workers of the release before read what they can
// run while an installation upgrades. Version 2 added a script's sig and args.
const DeployVersion = 2

// ErrPayloadVersion says a payload was written by a release this one cannot read.
var ErrPayloadVersion = errors.New("unsupported payload version")

// ProjectRef says where a job's project comes from.
type ProjectRef struct {
	// Upload is the sha256 (hex) of an archive stored through POST /projects.
	Upload string `json:"upload,omitempty"`
	// Path is a directory relative to PROJECTS_ROOT. The API enqueues a path project
	// as the Upload of its snapshot; workers refuse a task naming only a Path (one
	// queued by an older API), since clients may write under the root.
	Path string `json:"path,omitempty"`
}

func (r ProjectRef) String() string {
	if r.Upload != "" {
		return "project://" + r.Upload
	}
	return r.Path
}

// Deploy is the payload of a deployment task. It carries no secret: keys and RPC
// credentials are the worker's, looked up by network name.
type Deploy struct {
	Version         int        `json:"version"`
	JobID           string     `json:"job_id"`
	Framework       string     `json:"framework"`
	Network         string     `json:"network"`
	Project         ProjectRef `json:"project"`
	Script          string     `json:"script,omitempty"`
	Contract        string     `json:"contract,omitempty"`
	ConstructorArgs []string   `json:"constructor_args,omitempty"`
	// Sig and Args are a script's entry point and arguments (version 2).
	Sig  string   `json:"sig,omitempty"`
	Args []string `json:"args,omitempty"`
	// Client names the token holder who asked (version 2): deployments of one client
	// sign with one key. Empty: the job is its own client.
	Client string `json:"client,omitempty"`
	// Env are the script's settings (version 2), checked: no secrets, no forge flags.
	Env map[string]string `json:"env,omitempty"`
	// Module and Parameters are a Hardhat deployment's Ignition module and its
	// parameters (version 2).
	Module     string          `json:"module,omitempty"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	EnqueuedAt time.Time       `json:"enqueued_at"`
}

// version is the oldest payload version that holds p.
func (p Deploy) version() int {
	if p.Sig != "" || len(p.Args) > 0 || p.Client != "" || len(p.Env) > 0 || p.Framework != "foundry" {
		return 2
	}
	return 1
}

// Limits of a deployment's steps. JOB_TIMEOUT bounds only the user's steps
// (copying the project in, compiling, running the script, confirming on chain); the
// service's own preparation has limits of its own, so that a cold machine building
// its first runner image does not eat a user's budget. A step past its limit ends
// the job for good, naming the step: it is never retried.
const (
	ImageStepLimit     = 10 * time.Minute
	ChainStepLimit     = 2 * time.Minute
	ContainerStepLimit = 2 * time.Minute
	ProjectStepLimit   = 2 * time.Minute
	// MineStepLimit bounds the wait for a real network to mine a job's transactions.
	MineStepLimit = 10 * time.Minute
)

// SenderWait is how long a job waits for other deployments from its chain's sender:
// one other job's JOB_TIMEOUT.
func SenderWait(jobTimeout time.Duration) time.Duration { return jobTimeout }

// DeployTimeout is the asynq timeout of a deployment task: every step's limit and a
// margin, so that asynq never ends a job before the worker's own limits do.
func DeployTimeout(jobTimeout time.Duration) time.Duration {
	return ProjectStepLimit + ImageStepLimit + ChainStepLimit + ContainerStepLimit +
		SenderWait(jobTimeout) + jobTimeout + MineStepLimit + time.Minute
}

// NewDeploy makes the asynq task of a deployment; its task id is the job id.
func NewDeploy(p Deploy) (*asynq.Task, error) {
	p.Version = p.version()
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode deploy payload: %w", err)
	}
	return asynq.NewTask(TypeDeploy, b), nil
}

// DecodeDeploy reads a deployment payload, refusing a version it does not know
// instead of misreading it.
func DecodeDeploy(b []byte) (Deploy, error) {
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return Deploy{}, fmt.Errorf("decode deploy payload: %w", err)
	}
	if head.Version < 1 || head.Version > DeployVersion {
		return Deploy{}, fmt.Errorf("deploy payload version %d, this worker reads %d: %w",
			head.Version, DeployVersion, ErrPayloadVersion)
	}
	var p Deploy
	if err := json.Unmarshal(b, &p); err != nil {
		return Deploy{}, fmt.Errorf("decode deploy payload: %w", err)
	}
	if p.JobID == "" {
		return Deploy{}, errors.New("decode deploy payload: no job id")
	}
	return p, nil
}

// Maintenance task types. They go to one worker per engine (its own queue), since
// images, containers and artifacts live per engine.
const (
	TypeImageExpire = "cache:images:expire"
	TypeImageClear  = "cache:images:clear"
	// Sent to every worker: each expires or clears its compile cache store.
	TypeCompileExpire = "cache:compile:expire"
	TypeCompileClear  = "cache:compile:clear"
	// Sent to every worker: each reports and cleans what it holds.
	TypeContainerStats   = "containers:stats"
	TypeContainerCleanup = "containers:cleanup"
	TypePoolSweep        = "containers:sweep"
	// A scheduled run, on the shared maintenance queue: its worker sends the
	// maintenance of its Kind to every engine or worker.
	TypeMaintenanceRun = "maintenance:run"
)

// Kinds of scheduled maintenance.
const (
	MaintenanceImageExpiry   = "image-expiry"
	MaintenanceCompileExpiry = "compile-expiry"
	MaintenancePoolSweep     = "pool-sweep"
)

// MaintenanceVersion is the version of the Maintenance payload.
const MaintenanceVersion = 1

// Maintenance is the payload of a maintenance task.
type Maintenance struct {
	Version int `json:"version"`
	// Kind is the maintenance a scheduled run stands for.
	Kind string `json:"kind,omitempty"`
	// MaxAge overrides the worker's configured age limit when not zero.
	MaxAgeSeconds int64     `json:"max_age_seconds,omitempty"`
	RequestedAt   time.Time `json:"requested_at"`
}

// NewMaintenance makes a maintenance task of the type.
func NewMaintenance(typ string, p Maintenance) (*asynq.Task, error) {
	p.Version = MaintenanceVersion
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode maintenance payload: %w", err)
	}
	return asynq.NewTask(typ, b), nil
}

// DecodeMaintenance reads a maintenance payload, refusing a version it does not know.
func DecodeMaintenance(b []byte) (Maintenance, error) {
	var p Maintenance
	if err := json.Unmarshal(b, &p); err != nil {
		return Maintenance{}, fmt.Errorf("decode maintenance payload: %w", err)
	}
	if p.Version != MaintenanceVersion {
		return Maintenance{}, fmt.Errorf("maintenance payload version %d, this worker reads %d: %w",
			p.Version, MaintenanceVersion, ErrPayloadVersion)
	}
	return p, nil
}
