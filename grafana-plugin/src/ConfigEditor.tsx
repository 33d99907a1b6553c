import React, { ChangeEvent } from 'react';
import { DataSourcePluginOptionsEditorProps, SelectableValue } from '@grafana/data';
import { FieldSet, InlineField, Input, RadioButtonGroup, SecretInput } from '@grafana/ui';

import { PatchgridOptions, PatchgridSecureOptions } from './types';

type Props = DataSourcePluginOptionsEditorProps<PatchgridOptions, PatchgridSecureOptions>;

const backends: Array<SelectableValue<'chdb' | 'clickhouse'>> = [
  { label: 'ClickHouse server', value: 'clickhouse' },
  { label: 'Embedded (chDB)', value: 'chdb' },
];

const labelWidth = 20;

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields } = options;
  const secure = (options.secureJsonData ?? {}) as PatchgridSecureOptions;
  const backend = jsonData.backend ?? 'chdb';

  const set = <K extends keyof PatchgridOptions>(key: K, value: PatchgridOptions[K]) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, [key]: value } });
  const text = (key: 'dataDir' | 'addr' | 'database' | 'user') => (e: ChangeEvent<HTMLInputElement>) =>
    set(key, e.currentTarget.value);

  return (
    <>
      <FieldSet label="Store">
        <InlineField label="Backend" labelWidth={labelWidth}>
          <RadioButtonGroup options={backends} value={backend} onChange={(v) => set('backend', v)} />
        </InlineField>
        <InlineField label="Database" labelWidth={labelWidth} tooltip="Default: patchgrid">
          <Input width={40} value={jsonData.database ?? ''} placeholder="patchgrid" onChange={text('database')} />
        </InlineField>
      </FieldSet>
      {backend === 'clickhouse' ? (
        <FieldSet label="ClickHouse server">
          <InlineField label="Address" labelWidth={labelWidth} tooltip="host:port of the native protocol" required>
            <Input width={40} value={jsonData.addr ?? ''} placeholder="127.0.0.1:9000" onChange={text('addr')} />
          </InlineField>
          <InlineField label="User" labelWidth={labelWidth} tooltip="Default: default">
            <Input width={40} value={jsonData.user ?? ''} placeholder="default" onChange={text('user')} />
          </InlineField>
          <InlineField label="Password" labelWidth={labelWidth}>
            <SecretInput
              width={40}
              isConfigured={!!secureJsonFields?.password}
              value={secure.password ?? ''}
              onChange={(e: ChangeEvent<HTMLInputElement>) =>
                onOptionsChange({ ...options, secureJsonData: { ...secure, password: e.currentTarget.value } })
              }
              onReset={() =>
                onOptionsChange({
                  ...options,
                  secureJsonFields: { ...secureJsonFields, password: false },
                  secureJsonData: { ...secure, password: '' },
                })
              }
            />
          </InlineField>
          <InlineField label="Dial timeout (s)" labelWidth={labelWidth} tooltip="Default: 10">
            <Input
              width={10}
              type="number"
              value={jsonData.dialTimeoutSeconds ?? ''}
              onChange={(e: ChangeEvent<HTMLInputElement>) =>
                set('dialTimeoutSeconds', e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value))
              }
            />
          </InlineField>
        </FieldSet>
      ) : (
        <FieldSet label="Embedded store">
          <InlineField
            label="Data directory"
            labelWidth={labelWidth}
            tooltip="Held by this Grafana's plugin alone while it runs: no other patchgrid process can open it meanwhile"
            required
          >
            <Input width={60} value={jsonData.dataDir ?? ''} placeholder="/var/lib/patchgrid" onChange={text('dataDir')} />
          </InlineField>
        </FieldSet>
      )}
    </>
  );
}
