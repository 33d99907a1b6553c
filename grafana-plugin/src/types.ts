import { DataQuery, DataSourceJsonData } from '@grafana/data';

// Query types: DataQuery.queryType, read by pkg/plugin/query.go.
export type QueryType = 'kpi' | 'findings' | 'hosts' | 'trend' | 'count' | 'verdicts' | 'deployments';

export const queryTypes: QueryType[] = ['kpi', 'findings', 'hosts', 'trend', 'count', 'verdicts', 'deployments'];

// deployments (pkg/plugin/deployments.go, as /api/v1/kpis/deployments/{name}):
// the deployment KPIs (views kpi_deploy_*), and the numeric columns of the
// weekly ones (failures, regressions) a time series can draw.
export type DeployKPI = 'failures' | 'stage_success' | 'test_pass' | 'time_to_verify' | 'still_exposed' | 'regressions' | 'plans';

export const deployKPIs: DeployKPI[] = ['failures', 'stage_success', 'test_pass', 'time_to_verify', 'still_exposed', 'regressions', 'plans'];

export type DeployMetric =
  | 'failure_rate_pct'
  | 'rollback_rate_pct'
  | 'deployments'
  | 'succeeded'
  | 'failed'
  | 'rolled_back'
  | 'skipped'
  | 'reopened_exposures'
  | 'reopen_events'
  | 'hosts'
  | 'open_now';

export const deployWeeklyMetrics: Partial<Record<DeployKPI, DeployMetric[]>> = {
  failures: ['failure_rate_pct', 'rollback_rate_pct', 'deployments', 'succeeded', 'failed', 'rolled_back', 'skipped'],
  regressions: ['reopened_exposures', 'reopen_events', 'hosts', 'open_now'],
};

// verdicts (pkg/plugin/verdicts.go, as /api/v1/verdicts): stale hosts with
// the age of their last scan, hosts on an end-of-life release, packages
// matching could not judge.
export type VerdictKind = 'stale' | 'eol' | 'unmatched';

export const verdictKinds: VerdictKind[] = ['stale', 'eol', 'unmatched'];

// PatchgridQuery mirrors plugin.Query (pkg/plugin/query.go); which fields
// count depends on queryType.
export interface PatchgridQuery extends DataQuery {
  queryType?: QueryType;
  // kpi and trend
  kpi?: string;
  dimension?: string; // all, ring, owner, os, criticality
  value?: string; // one value of the dimension; empty: every one
  policy?: string; // SLA policy; empty: default
  // kpi and trend: one severity ("all" is the rollup); findings: comma-separated list
  severity?: string;
  // findings and hosts
  kev?: '' | 'true' | 'false';
  ring?: string;
  owner?: string;
  os?: string;
  host?: string;
  minRisk?: number;
  limit?: number;
  // trend; deployments: a numeric column of a weekly KPI (deployWeeklyMetrics), empty: a table
  metric?: 'open_at_end' | 'opened' | 'resolved' | DeployMetric;
  // deployments: which KPI (default failures); dimension and value filter it
  deployKpi?: DeployKPI;
  // count (with the findings filters): '' any, open (not yet due), overdue,
  // accepted (an exception covers it; with exceptions honoured), stale (its host's scan is too old)
  slaState?: '' | 'open' | 'overdue' | 'accepted' | 'stale';
  // kpi, trend, findings, hosts and count: honoured (default: accepted
  // exposures counted apart, accepted findings ranked last) or ignored
  exceptions?: '' | 'honoured' | 'ignored';
  // verdicts: which list (default stale), and the stale limit (a duration such as 72h, the default)
  verdict?: VerdictKind;
  staleAfter?: string;
}

export const defaultQuery: Partial<PatchgridQuery> = {
  queryType: 'kpi',
  kpi: 'open_exposure',
  dimension: 'all',
};

// PatchgridOptions mirrors plugin.Settings (pkg/plugin/settings.go).
export interface PatchgridOptions extends DataSourceJsonData {
  backend?: 'chdb' | 'clickhouse';
  dataDir?: string;
  // No chdbLib: the libchdb.so path is Grafana's administrator's to set
  // (GF_PLUGIN_CHDB_LIB / PATCHGRID_CHDB_LIB), never a data source's.
  addr?: string;
  database?: string;
  user?: string;
  dialTimeoutSeconds?: number;
}

// Stored encrypted by Grafana; only the backend reads it.
export interface PatchgridSecureOptions {
  password?: string;
}

// The /kpis resource (plugin.Catalog).
export interface Catalog {
  kpis: Array<{ name: string; summary: string; per_policy: boolean; breakdown: string[] }>;
  dimensions: string[];
  query_types: QueryType[];
  trend_metrics: string[];
  severities: string[];
}

// Template variable queries (DataSource.metricFindQuery): fields the
// backend's /values resource lists (risk.ValueFields).
export const variableFields = ['ring', 'owner', 'os', 'severity', 'advisory'] as const;
export type VariableField = (typeof variableFields)[number];

export interface VariableQuery {
  field: VariableField;
  prefix?: string; // advisory only
}

// parseVariableQuery reads "field" or "advisory PREFIX"; anything else is
// an error naming the query, shown by Grafana under the variable.
export function parseVariableQuery(query: string): VariableQuery {
  const [field, prefix, ...rest] = query.trim().split(/\s+/);
  if (!(variableFields as readonly string[]).includes(field) || rest.length > 0 || (prefix && field !== 'advisory')) {
    throw new Error(`patchgrid variable query "${query}": want one of ${variableFields.join(', ')} (advisory may be followed by a prefix)`);
  }
  return prefix ? { field: field as VariableField, prefix } : { field: field as VariableField };
}
