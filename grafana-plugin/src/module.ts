import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './ConfigEditor';
import { DataSource } from './datasource';
import { QueryEditor } from './QueryEditor';
import { PatchgridOptions, PatchgridQuery } from './types';

export const plugin = new DataSourcePlugin<DataSource, PatchgridQuery, PatchgridOptions>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
