import { DataSourceInstanceSettings, MetricFindValue, ScopedVars } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { Catalog, PatchgridOptions, PatchgridQuery, defaultQuery, parseVariableQuery } from './types';

// The queries run in the backend (pkg/plugin); the browser only fills in
// dashboard variables and asks the backend for the editor's choices.
export class DataSource extends DataSourceWithBackend<PatchgridQuery, PatchgridOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<PatchgridOptions>) {
    super(instanceSettings);
  }

  getDefaultQuery(): Partial<PatchgridQuery> {
    return defaultQuery;
  }

  // Multi-value variables become comma-separated lists: the backend reads
  // severity filters that way.
  applyTemplateVariables(query: PatchgridQuery, scopedVars: ScopedVars): PatchgridQuery {
    const srv = getTemplateSrv();
    const str = (v?: string) => (v === undefined ? v : srv.replace(v, scopedVars, 'csv'));
    return {
      ...query,
      kpi: str(query.kpi),
      dimension: str(query.dimension),
      value: str(query.value),
      policy: str(query.policy),
      severity: str(query.severity),
      ring: str(query.ring),
      owner: str(query.owner),
      os: str(query.os),
      host: str(query.host),
    };
  }

  filterQuery(query: PatchgridQuery): boolean {
    return query.queryType !== 'kpi' || !!query.kpi;
  }

  catalog(): Promise<Catalog> {
    return this.getResource<Catalog>('kpis');
  }

  // Template variable values for a query variable: the query is a field
  // (ring, owner, os, severity, advisory), for advisories optionally
  // followed by a prefix ("advisory CVE-2024-"). The backend's /values
  // resource lists what the store holds.
  async metricFindQuery(query: string, options?: { scopedVars?: ScopedVars }): Promise<MetricFindValue[]> {
    const q = parseVariableQuery(getTemplateSrv().replace(query, options?.scopedVars));
    const params: Record<string, string> = { field: q.field };
    if (q.prefix) {
      params.prefix = q.prefix;
    }
    const values = await this.getResource<string[]>('values', params);
    return values.map((text) => ({ text, value: text }));
  }
}
