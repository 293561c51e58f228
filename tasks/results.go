package tasks

import "time"

// The results workers write for maintenance and stats tasks, which the API collects.

// ImageReport says what an image expiry or clear did on one engine.
type ImageReport struct {
	EngineID string   `json:"engine_id"`
	Removed  []string `json:"removed"`
	// InUse are images a container uses: never removed (a clear only untags them,
	// so that the next deployment builds again).
	InUse   []string `json:"in_use"`
	Kept    int      `json:"kept"`
	Adopted []string `json:"adopted,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

// PoolKey is one pool key's containers.
type PoolKey struct {
	Key  string `json:"key"`
	Idle int    `json:"idle"`
	Busy int    `json:"busy"`
}

// PoolSnapshot is a worker's pool.
type PoolSnapshot struct {
	WorkerID string    `json:"worker_id"`
	Enabled  bool      `json:"enabled"`
	Total    int       `json:"total"`
	Max      int       `json:"max"`
	Hits     int64     `json:"reuse_hits"`
	Misses   int64     `json:"reuse_misses"`
	Keys     []PoolKey `json:"keys"`
}

// ChainStatus is a managed chain.
type ChainStatus struct {
	Network   string    `json:"network"`
	Container string    `json:"container"`
	State     string    `json:"state"`
	Healthy   bool      `json:"healthy"`
	RPCURL    string    `json:"rpc_url"`
	StartedAt time.Time `json:"started_at"`
}

// Inventory is what one worker reports of its engine and its pool.
type Inventory struct {
	WorkerID string `json:"worker_id"`
	EngineID string `json:"engine_id"`
	// Containers counts the installation's containers on the engine by role, then by
	// network ("" for none).
	Containers   map[string]map[string]int `json:"containers"`
	Pool         PoolSnapshot              `json:"pool"`
	CachedImages int                       `json:"cached_images"`
	Chains       []ChainStatus             `json:"chains"`
}

// CleanupReport says what a container cleanup removed.
type CleanupReport struct {
	WorkerID string   `json:"worker_id"`
	EngineID string   `json:"engine_id"`
	Idle     []string `json:"idle_removed"`
	Exited   []string `json:"exited_removed"`
	Orphans  []string `json:"orphans_removed"`
	Errors   []string `json:"errors,omitempty"`
}

// ArtifactReport says what a compile cache expiry or clear did to one store.
type ArtifactReport struct {
	StoreID string   `json:"store_id"`
	Removed []string `json:"removed"`
	Kept    int      `json:"kept"`
	Errors  []string `json:"errors,omitempty"`
}
