import { DataQuery, DataSourceJsonData } from '@grafana/data';

// Query types: DataQuery.queryType, read by pkg/plugin/query.go.
export type QueryType = 'kpi' | 'findings' | 'hosts' | 'trend' | 'count';

export const queryTypes: QueryType[] = ['kpi', 'findings', 'hosts', 'trend', 'count'];

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
  // trend
  metric?: 'open_at_end' | 'opened' | 'resolved';
  // count (with the findings filters): '' any, open (not yet due), overdue
  slaState?: '' | 'open' | 'overdue';
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
