import React, { ChangeEvent, useEffect, useState } from 'react';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { InlineField, InlineFieldRow, Input, RadioButtonGroup, Select } from '@grafana/ui';

import { DataSource } from './datasource';
import {
  Catalog,
  DeployKPI,
  deployKPIs,
  deployWeeklyMetrics,
  PatchgridOptions,
  PatchgridQuery,
  QueryType,
  queryTypes,
  VerdictKind,
  verdictKinds,
} from './types';

type Props = QueryEditorProps<DataSource, PatchgridQuery, PatchgridOptions>;

const typeOptions: Array<SelectableValue<QueryType>> = queryTypes.map((t) => ({ label: t, value: t }));
const kevOptions: Array<SelectableValue<'' | 'true' | 'false'>> = [
  { label: 'any', value: '' },
  { label: 'in KEV', value: 'true' },
  { label: 'not in KEV', value: 'false' },
];

const slaOptions: Array<SelectableValue<'' | 'open' | 'overdue' | 'accepted' | 'stale'>> = [
  { label: 'any', value: '' },
  { label: 'open', value: 'open' },
  { label: 'overdue', value: 'overdue' },
  { label: 'accepted', value: 'accepted' },
  { label: 'stale', value: 'stale' },
];

const exceptionsOptions: Array<SelectableValue<'' | 'honoured' | 'ignored'>> = [
  { label: 'honoured', value: '' },
  { label: 'ignored', value: 'ignored' },
];

const verdictOptions: Array<SelectableValue<VerdictKind>> = verdictKinds.map((v) => ({ label: v, value: v }));
const deployOptions: Array<SelectableValue<DeployKPI>> = deployKPIs.map((k) => ({ label: k, value: k }));

const opts = (values: string[] = []): Array<SelectableValue<string>> => values.map((v) => ({ label: v, value: v }));

export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const [catalog, setCatalog] = useState<Catalog | undefined>();
  const [error, setError] = useState<string | undefined>();

  useEffect(() => {
    datasource
      .catalog()
      .then(setCatalog)
      .catch((e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [datasource]);

  const type = query.queryType ?? 'kpi';
  const update = (patch: Partial<PatchgridQuery>) => {
    onChange({ ...query, ...patch });
    onRunQuery();
  };
  const text =
    (key: 'value' | 'policy' | 'severity' | 'ring' | 'owner' | 'os' | 'host' | 'staleAfter' | 'dimension') => (e: ChangeEvent<HTMLInputElement>) =>
      onChange({ ...query, [key]: e.currentTarget.value });
  const num = (key: 'minRisk' | 'limit') => (e: ChangeEvent<HTMLInputElement>) =>
    onChange({ ...query, [key]: e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value) });
  const selected = catalog?.kpis.find((k) => k.name === query.kpi);

  return (
    <>
      <InlineFieldRow>
        <InlineField label="Query" error={error} invalid={!!error}>
          <RadioButtonGroup options={typeOptions} value={type} onChange={(v) => update({ queryType: v })} />
        </InlineField>
      </InlineFieldRow>
      {(type === 'kpi' || type === 'trend') && (
        <InlineFieldRow>
          {type === 'kpi' && (
            <InlineField label="KPI" tooltip={selected?.summary}>
              <Select
                width={24}
                options={(catalog?.kpis ?? []).map((k) => ({ label: k.name, value: k.name, description: k.summary }))}
                value={query.kpi}
                onChange={(v) => update({ kpi: v.value })}
              />
            </InlineField>
          )}
          <InlineField label="Breakdown">
            <Select
              width={16}
              options={opts(catalog?.dimensions)}
              value={query.dimension ?? 'all'}
              onChange={(v) => update({ dimension: v.value })}
            />
          </InlineField>
          <InlineField label="Value" tooltip="One value of the breakdown (a ring, owner, ...); empty: every one">
            <Input width={16} value={query.value ?? ''} onChange={text('value')} onBlur={onRunQuery} />
          </InlineField>
          <InlineField label="Severity" tooltip="One severity, or all (the rollup); empty: every row">
            <Input width={12} value={query.severity ?? ''} onChange={text('severity')} onBlur={onRunQuery} />
          </InlineField>
          {type === 'kpi' && selected?.per_policy && (
            <InlineField label="SLA policy">
              <Input width={12} value={query.policy ?? ''} placeholder="default" onChange={text('policy')} onBlur={onRunQuery} />
            </InlineField>
          )}
          {type === 'trend' && (
            <InlineField label="Metric">
              <Select
                width={16}
                options={opts(catalog?.trend_metrics)}
                value={query.metric ?? 'open_at_end'}
                onChange={(v) => update({ metric: v.value as PatchgridQuery['metric'] })}
              />
            </InlineField>
          )}
        </InlineFieldRow>
      )}
      {(type === 'findings' || type === 'hosts' || type === 'count') && (
        <InlineFieldRow>
          {(type === 'findings' || type === 'count') && (
            <>
              <InlineField label="Severities" tooltip="Comma-separated, e.g. critical,high">
                <Input width={18} value={query.severity ?? ''} onChange={text('severity')} onBlur={onRunQuery} />
              </InlineField>
              <InlineField label="KEV">
                <RadioButtonGroup options={kevOptions} value={query.kev ?? ''} onChange={(v) => update({ kev: v })} />
              </InlineField>
            </>
          )}
          <InlineField label="Ring">
            <Input width={10} value={query.ring ?? ''} onChange={text('ring')} onBlur={onRunQuery} />
          </InlineField>
          <InlineField label="Owner">
            <Input width={12} value={query.owner ?? ''} onChange={text('owner')} onBlur={onRunQuery} />
          </InlineField>
          <InlineField label="OS" tooltip="Ecosystem, e.g. Debian:12">
            <Input width={12} value={query.os ?? ''} onChange={text('os')} onBlur={onRunQuery} />
          </InlineField>
          {(type === 'findings' || type === 'count') && (
            <InlineField label="Host">
              <Input width={12} value={query.host ?? ''} onChange={text('host')} onBlur={onRunQuery} />
            </InlineField>
          )}
          <InlineField label="Min risk" tooltip="0..100">
            <Input width={8} type="number" value={query.minRisk ?? ''} onChange={num('minRisk')} onBlur={onRunQuery} />
          </InlineField>
          {type === 'count' ? (
            <InlineField label="SLA" tooltip="Count only findings in this SLA state">
              <RadioButtonGroup options={slaOptions} value={query.slaState ?? ''} onChange={(v) => update({ slaState: v })} />
            </InlineField>
          ) : (
            <InlineField label="Limit" tooltip="Rows, 1..10000 (default 100)">
              <Input width={8} type="number" value={query.limit ?? ''} onChange={num('limit')} onBlur={onRunQuery} />
            </InlineField>
          )}
        </InlineFieldRow>
      )}
      {type !== 'verdicts' && type !== 'deployments' && (
        <InlineFieldRow>
          <InlineField
            label="Exceptions"
            tooltip="honoured: exposures an approved, unexpired exception covers count as accepted, never open or overdue, and rank last; ignored: as if no exception existed"
          >
            <RadioButtonGroup
              options={exceptionsOptions}
              value={query.exceptions === 'honoured' ? '' : query.exceptions ?? ''}
              onChange={(v) => update({ exceptions: v })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {type === 'verdicts' && (
        <InlineFieldRow>
          <InlineField label="Verdict" tooltip="stale: hosts not scanned lately; eol: hosts on an end-of-life release; unmatched: packages matching could not judge">
            <RadioButtonGroup options={verdictOptions} value={query.verdict ?? 'stale'} onChange={(v) => update({ verdict: v })} />
          </InlineField>
          {(query.verdict ?? 'stale') === 'stale' && (
            <InlineField label="Stale after" tooltip="A duration such as 72h (the default)">
              <Input width={10} value={query.staleAfter ?? ''} placeholder="72h" onChange={text('staleAfter')} onBlur={onRunQuery} />
            </InlineField>
          )}
        </InlineFieldRow>
      )}
      {type === 'deployments' && (
        <InlineFieldRow>
          <InlineField label="Deployment KPI" tooltip="A view kpi_deploy_* (schemas/VIEWS.md, Deployment KPIs)">
            <Select
              width={18}
              options={deployOptions}
              value={query.deployKpi ?? 'failures'}
              onChange={(v) => update({ deployKpi: v.value, metric: undefined })}
            />
          </InlineField>
          <InlineField label="Breakdown" tooltip="all, ring, package, stage, ... as the KPI has them; empty: every row">
            <Input width={12} value={query.dimension ?? ''} onChange={text('dimension')} onBlur={onRunQuery} />
          </InlineField>
          <InlineField label="Value" tooltip="Keep the rows whose value (dim_value, ring, stage or plan_id) is this; empty: every one">
            <Input width={16} value={query.value ?? ''} onChange={text('value')} onBlur={onRunQuery} />
          </InlineField>
          {deployWeeklyMetrics[query.deployKpi ?? 'failures'] && (
            <InlineField label="Series" tooltip="Draw this column per week and value; empty: a table">
              <Select
                width={20}
                isClearable
                options={opts(deployWeeklyMetrics[query.deployKpi ?? 'failures'])}
                value={query.metric ?? null}
                onChange={(v) => update({ metric: (v?.value ?? undefined) as PatchgridQuery['metric'] })}
              />
            </InlineField>
          )}
        </InlineFieldRow>
      )}
    </>
  );
}
