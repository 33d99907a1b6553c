import { DataQuery, DataSourceJsonData } from '@grafana/data';

// Query types: DataQuery.queryType, read by pkg/plugin/query.go.
export type QueryType = 'kpi' | 'findings' | 'hosts' | 'trend';

export const queryTypes: QueryType[] = ['kpi', 'findings', 'hosts', 'trend'];

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
  chdbLib?: string;
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
