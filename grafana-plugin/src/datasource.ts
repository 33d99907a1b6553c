import { DataSourceInstanceSettings, ScopedVars } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { Catalog, PatchgridOptions, PatchgridQuery, defaultQuery } from './types';

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
}
