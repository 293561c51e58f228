package worker

import (
	"context"

	"github.com/deployer-dev/deployer/engine"
	"github.com/deployer-dev/deployer/tasks"
)

func (w *Worker) inventory(ctx context.Context) (tasks.Inventory, error) {
	inv := tasks.Inventory{WorkerID: w.cfg.ID, EngineID: w.eng.ID(), Containers: map[string]map[string]int{}, Pool: w.pool.Snapshot()}
	cs, err := w.eng.ListContainers(ctx, nil)
	if err != nil {
		return inv, err
	}
	for _, c := range cs {
		role := c.Labels[engine.LabelRole]
		if inv.Containers[role] == nil {
			inv.Containers[role] = map[string]int{}
		}
		inv.Containers[role][c.Labels[engine.LabelNetwork]]++
	}
	imgs, err := w.eng.ListImages(ctx, engine.RoleRunnerImage)
	if err != nil {
		return inv, err
	}
	inv.CachedImages = len(imgs)
	if inv.Chains, err = w.chains.List(ctx, w.networks); err != nil {
		return inv, err
	}
	return inv, nil
}
