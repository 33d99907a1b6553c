// check.js OUTDIR PLUGIN_DIR: checks src/plugin.json and every dashboard of
// src/dashboards against the schema types Grafana publishes on npm
// (@grafana/schema's Dashboard, generated from Grafana's CUE dashboard
// kind, and @grafana/data's DataSourcePluginMeta), with tsc --strict.
//
// Each JSON file becomes an object literal assigned to its type, so tsc
// checks it the way a schema validator would: required keys, value types,
// enums (panel and variable kinds, sort orders, ...) and, through excess
// property checks, unknown keys. The deviations from the published types
// are the keys that exist only in files, spelled out below.
'use strict';
const fs = require('fs');
const path = require('path');

// OUTDIR receives one .ts file per checked file and a tsconfig.json.
const [out, pluginDir] = process.argv.slice(2);

// Plain<T> is T with every TypeScript enum replaced by the union of its
// values: JSON holds "absolute", where the types say ThresholdsMode.Absolute.
const plain = `type Plain<T> = T extends string ? \`\${T}\` : T extends number | boolean | null | undefined ? T : T extends Array<infer U> ? Array<Plain<U>> : T extends object ? { [K in keyof T]: Plain<T[K]> } : T;`;

const literal = (file) => JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8')), null, 2);

// plugin.json: the runtime meta minus what Grafana fills in at load time
// (module, baseUrl), plus the keys only the file has: $schema and the
// backend's executable; grafanaDependency is required of a file.
fs.writeFileSync(
  path.join(out, 'plugin.ts'),
  `import type { DataSourcePluginMeta, PluginDependencies } from '@grafana/data';
type PluginJSON = Omit<DataSourcePluginMeta, 'module' | 'baseUrl' | 'dependencies'> & {
  $schema?: string;
  executable?: string;
  dependencies: Omit<PluginDependencies, 'grafanaVersion' | 'extensions'> & { grafanaDependency: string };
};
${plain}
export const plugin: Plain<PluginJSON> = ${literal(path.join(pluginDir, 'src', 'plugin.json'))};
`
);

// Dashboards: the Dashboard kind plus the keys of Grafana's export for
// sharing (__inputs, __requires), which the import UI reads.
const dashDir = path.join(pluginDir, 'src', 'dashboards');
const names = fs.readdirSync(dashDir).filter((f) => f.endsWith('.json'));
if (names.length === 0) {
  throw new Error(`no dashboards in ${dashDir}`);
}
for (const name of names) {
  fs.writeFileSync(
    path.join(out, name.replace(/\.json$/, '.ts').replace(/[^a-zA-Z0-9_.]/g, '_')),
    `import type { Dashboard } from '@grafana/schema';
type Input = { name: string; label: string; description: string; type: 'datasource'; pluginId: string; pluginName: string };
type Require = { type: 'grafana' | 'datasource' | 'panel'; id: string; name: string; version: string };
type Exported = Dashboard & { __inputs: Input[]; __requires: Require[] };
${plain}
export const dashboard: Plain<Exported> = ${literal(path.join(dashDir, name))};
`
  );
}
fs.writeFileSync(
  path.join(out, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, target: 'ES2020', module: 'commonjs', moduleResolution: 'node', types: [] },
    include: ['*.ts'],
  })
);
console.log(`schemacheck: plugin.json and ${names.length} dashboards (${names.join(', ')})`);
