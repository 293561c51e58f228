package producer

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/projects"
	"github.com/deployer-dev/deployer/tasks"
)

// Per-client byte budgets keep one client from filling Redis: the uploads it stores
// and the output its jobs keep, each counted per UTC day (tasks.BudgetWindow) in a
// counter of its own, checked and charged in one step by the store that keeps the
// bytes.

// uploadCharge is the budget a request's upload is charged to.
func (a *API) uploadCharge(c echo.Context) projects.Charge {
	if a.cfg.UploadBudget <= 0 {
		return projects.Charge{}
	}
	window, ends := tasks.BudgetWindow(time.Now())
	return projects.Charge{Key: a.ns.BudgetKey(tasks.UploadBudget, window, budgetClient(c)),
		Limit: a.cfg.UploadBudget, Ends: ends}
}

// chargeLogs makes the output of the job the request makes count against its
// client's log budget; the worker appending the output enforces it.
func (a *API) chargeLogs(c echo.Context, jobID string) error {
	return a.jobs.ChargeLogs(c.Request().Context(), jobID, jobs.LogBudget{Client: budgetClient(c), Limit: a.cfg.LogBudget})
}

// overBudget answers an upload past its client's budget: 429, with the seconds
// until the budget frees.
func overBudget(c echo.Context, e *projects.BudgetError) error {
	wait := max(time.Until(e.Frees), time.Second)
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	return apiError(http.StatusTooManyRequests,
		"the upload budget of client %q is spent: it stored %s of its %s a day (UPLOAD_BUDGET_BYTES), and this archive has %s; "+
			"the budget frees at %s (uploading a project stored already costs nothing)",
		budgetClient(c), tasks.BudgetBytes(e.Used), tasks.BudgetBytes(e.Limit), tasks.BudgetBytes(e.Size), e.Frees.UTC().Format(time.RFC3339))
}
