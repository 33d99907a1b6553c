package api

import (
	"net/http"

	"github.com/patchgrid/patchgrid/analytics/auth"
)

// Route is one endpoint: its pattern (method and path, as http.ServeMux
// reads them), the least role a token needs to call it, and its handler.
// A handler returns an error instead of writing one: guard turns it into
// the client's message and request id, and logs the detail.
type Route struct {
	Pattern string
	Role    auth.Role
	Handler func(http.ResponseWriter, *http.Request) error
	// Public routes need no token (/healthz, /metrics when so configured).
	Public bool
	// NoStore marks a route that runs no store query: it bypasses the
	// concurrency cap.
	NoStore bool
	// Cost, when set, tells which lane a request runs in (Config.MaxHeavy):
	// the quick one, the heavy one, or none when this request runs no
	// query (a HEAD on an export). Unset: quick, or none for NoStore.
	Cost func(*http.Request) cost
}

// cost is the lane a request runs in.
type cost int

const (
	costQuick cost = iota
	costHeavy
	costNone
)

// routes is every endpoint of the API and the role it needs: reads need a
// viewer; writes (outcomes, exception requests, plan runs) an analyst;
// decisions (approving exceptions or plans) an approver; policy and tokens
// an admin. A new endpoint is one line here (SECURITY.md has the table).
func (s *server) routes() []Route {
	return append([]Route{
		{Pattern: "GET /healthz", Role: auth.Viewer, Handler: s.healthz, Public: s.cfg.PublicHealthz, NoStore: true},
		{Pattern: "GET /metrics", Role: auth.Viewer, Handler: s.metrics, Public: s.cfg.PublicMetrics, NoStore: true},
		{Pattern: "GET /api/v1/kpis", Role: auth.Viewer, Handler: s.kpiList, NoStore: true},
		{Pattern: "GET /api/v1/kpis/{name}", Role: auth.Viewer, Handler: s.kpi},
		// Deployment KPIs (0015_deploy_kpis.sql, kpi_deploy.go).
		{Pattern: "GET /api/v1/kpis/deployments", Role: auth.Viewer, Handler: s.deployKPIList, NoStore: true},
		{Pattern: "GET /api/v1/kpis/deployments/{name}", Role: auth.Viewer, Handler: s.deployKPI},
		{Pattern: "GET /api/v1/findings", Role: auth.Viewer, Handler: s.findings, Cost: s.pageCost},
		{Pattern: "GET /api/v1/hosts", Role: auth.Viewer, Handler: s.hosts},
		{Pattern: "GET /api/v1/hosts/{id}", Role: auth.Viewer, Handler: s.host, Cost: s.pageCost},
		{Pattern: "GET /api/v1/risk", Role: auth.Viewer, Handler: s.risk},
		{Pattern: "GET /api/v1/export", Role: auth.Viewer, Handler: s.export, Cost: exportCost},
		{Pattern: "GET /api/v1/verdicts", Role: auth.Viewer, Handler: s.verdicts},
		{Pattern: "GET /api/v1/plans", Role: auth.Viewer, Handler: s.planList},
		{Pattern: "GET /api/v1/plans/{id}", Role: auth.Viewer, Handler: s.planGet},
		{Pattern: "GET /api/v1/plans/{id}/actions", Role: auth.Viewer, Handler: s.planActions},
		{Pattern: "GET /api/v1/plans/{id}/status", Role: auth.Viewer, Handler: s.planStatus}, // deploy.go (issue 13)
		// deployment outcomes (issue 13): analysts and approvers report them
		{Pattern: "POST /api/v1/outcomes", Role: auth.Analyst, Handler: s.outcomesPost()},
		{Pattern: "GET /api/v1/whoami", Role: auth.Viewer, Handler: s.whoami, NoStore: true},
		// Compliance posture per framework and group (analytics/compliance/frameworks).
		{Pattern: "GET /api/v1/posture", Role: auth.Viewer, Handler: s.posture},
		{Pattern: "GET /api/v1/tokens", Role: auth.Admin, Handler: s.tokenList},
		{Pattern: "POST /api/v1/tokens", Role: auth.Admin, Handler: s.tokenCreate},
		{Pattern: "DELETE /api/v1/tokens/{id}", Role: auth.Admin, Handler: s.tokenRevoke},
	}, s.governanceRoutes()...)
}
