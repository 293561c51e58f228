// Package engine is the vocabulary of the Docker engine as deployer uses it: the
// labels everything it creates carries, the roles of those resources, the specs of
// containers, builds and commands, and the errors callers decide on. It holds no
// client: engine/docker talks to the engine, and the packages that need a part of it
// (the pool, the chains, the image cache, a deployment) name that part in an
// interface of their own, so that their logic is tested without an engine.
package engine

import (
	"errors"
	"io"
	"maps"
	"time"
)

// Labels every resource we create carries.
const (
	LabelManagedBy = "io.deployer.managed-by"
	LabelInstance  = "io.deployer.instance"
	LabelRole      = "io.deployer.role"
	LabelWorker    = "io.deployer.worker"
	LabelNetwork   = "io.deployer.network"
	LabelImageKey  = "io.deployer.image-key"
	LabelFramework = "io.deployer.framework"

	ManagedByValue = "deployer"
)

// Roles of the resources we create.
const (
	// RoleBase is the base image scripts/setup.sh makes; nothing here removes it.
	RoleBase        = "base"
	RoleRunnerImage = "runner-image"
	RoleChain       = "chain"
	RoleJob         = "job"
	RoleNetwork     = "network"
	RoleChainIPC    = "chain-ipc"
	// RoleCompilers is the compiler store's volume and the container that fills it.
	RoleCompilers = "compilers"
	// RoleDeps is a Hardhat dependency set's volume and the container that fills it.
	RoleDeps = "deps"
)

// Errors callers decide on.
var (
	// ErrUnavailable says the engine does not answer; the work can be retried.
	ErrUnavailable = errors.New("docker engine unavailable")
	// ErrNotFound says the resource does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict says a resource with the name exists already.
	ErrConflict = errors.New("already exists")
	// ErrNotOurs says the resource exists but does not carry this installation's labels.
	ErrNotOurs = errors.New("not managed by this installation")
)

// Mount is a named volume in a container.
type Mount struct {
	Volume   string
	Target   string
	ReadOnly bool
}

// ContainerSpec describes a container. The zero value of a security field is the
// safe one: callers opt out of nothing.
type ContainerSpec struct {
	Name    string
	Image   string
	Cmd     []string
	Env     []string
	User    string
	WorkDir string
	Labels  map[string]string

	// Tmpfs mounts: path to options ("size=64m,uid=10001").
	Tmpfs  map[string]string
	Mounts []Mount
	// Network is "none" or the name of one of our networks.
	Network string
	// Aliases are the container's names on Network.
	Aliases []string
	// Ports publishes container ports on 127.0.0.1: container port to host port,
	// host port 0 for one the engine picks.
	Ports map[int]int

	Memory   int64
	NanoCPUs int64
	Pids     int64
	// Init runs a reaper as PID 1, so that stray processes do not linger.
	Init bool
	// RestartUnlessStopped restarts the container if it dies (chains).
	RestartUnlessStopped bool
}

// Container is what we read of a container.
type Container struct {
	ID        string
	Name      string
	Image     string
	Labels    map[string]string
	User      string
	Running   bool
	State     string
	OOMKilled bool
	StartedAt time.Time
	// HostPorts maps container ports to the host ports they are published on.
	HostPorts map[int]int
	Created   time.Time
	// Env is the container's environment (read on inspect only).
	Env []string
}

// ExecSpec is a command run in a running container.
type ExecSpec struct {
	Cmd     []string
	Env     []string
	WorkDir string
	User    string
	// Stdin, when set, is copied to the command's standard input, then closed.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Image is an image on the engine.
type Image struct {
	ID      string
	Tags    []string
	Labels  map[string]string
	Size    int64
	Created time.Time
}

// BuildSpec is an image build.
type BuildSpec struct {
	// Context is a tar stream holding the Dockerfile.
	Context   io.Reader
	Tags      []string
	BuildArgs map[string]string
	Labels    map[string]string
}

// ErrInUse says a container uses the image.
var ErrInUse = errors.New("image in use by a container")

// Labels returns the labels of a resource of the installation: ours, with a role,
// and extra.
func Labels(instance, role string, extra map[string]string) map[string]string {
	l := map[string]string{LabelManagedBy: ManagedByValue, LabelInstance: instance, LabelRole: role}
	maps.Copy(l, extra)
	return l
}

// Ours says whether labels are the installation's.
func Ours(instance string, labels map[string]string) bool {
	return labels[LabelManagedBy] == ManagedByValue && labels[LabelInstance] == instance
}
