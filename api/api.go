// Package api holds the wire types of the HTTP API, shared by the server (producer)
// and its clients (deployer submit, tests).
package api

import (
	"encoding/json"
	"time"

	"github.com/deployer-dev/deployer/jobs"
)

// UploadResponse answers POST /projects.
type UploadResponse struct {
	ProjectID string `json:"project_id"`
	PathURL   string `json:"path_url"`
}

// DeployRequest is the body of POST /deploy.
type DeployRequest struct {
	PathURL         string   `json:"path_url"`
	Framework       string   `json:"framework"`
	Network         string   `json:"network,omitempty"`
	Script          string   `json:"script,omitempty"`
	Contract        string   `json:"contract,omitempty"`
	ConstructorArgs []string `json:"constructor_args,omitempty"`
	// Sig and Args call a script's entry point with arguments: "run(address)", ["0x…"].
	Sig  string   `json:"sig,omitempty"`
	Args []string `json:"args,omitempty"`
	// Env are settings a script reads with vm.envOr and vm.envString. They are not
	// secrets: the service keeps and shows them like the rest of the request.
	Env map[string]string `json:"env,omitempty"`
	// Module and Parameters are a Hardhat deployment's: the Ignition module (default:
	// the only one under ignition/modules) and its parameters.
	Module     string          `json:"module,omitempty"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// DeployResponse answers POST /deploy.
type DeployResponse struct {
	JobID     string `json:"job_id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
}

// Job answers GET /deploy/<id>. The first eight keys are always present, null where
// they do not apply.
type Job struct {
	JobID     string        `json:"job_id"`
	Status    jobs.Status   `json:"status"`
	Framework string        `json:"framework"`
	Network   string        `json:"network"`
	Result    *jobs.Result  `json:"result"`
	Error     *string       `json:"error"`
	Timings   *jobs.Timings `json:"timings_ms"`
	Cache     *jobs.Cache   `json:"cache"`

	Step string `json:"step,omitempty"`
	// Client names whose job it is, when tokens name clients.
	Client          string     `json:"client,omitempty"`
	Project         string     `json:"project"`
	Target          string     `json:"target,omitempty"`
	Attempts        int        `json:"attempts"`
	Worker          string     `json:"worker,omitempty"`
	ContainerID     string     `json:"container_id,omitempty"`
	CancelRequested bool       `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	StartedAt       *time.Time `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
}

// Error is the body of every 4xx and 5xx answer.
type Error struct {
	Error string `json:"error"`
}
