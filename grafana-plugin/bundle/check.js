'use strict';
// node check.js MODULE_JS: loads a built module.js the way Grafana does and
// fails (exit 1) unless it is a working data source plugin. Grafana's
// modules are stand-ins; SystemJS comes from NODE_PATH (bundle.sh).
//
// Checked:
//  * the file calls define() once, anonymously, with dependencies that are
//    all modules Grafana provides (externals.js) and a factory;
//  * SystemJS 6 with its AMD extra, Grafana's plugin loader, imports it with
//    the dependencies registered and mapped as Grafana does ("package:NAME"
//    in the registry, an import map from NAME), and its exports' `plugin` is
//    a DataSourcePlugin of a DataSourceWithBackend subclass, with a config
//    and a query editor;
//  * the data source: default query, template variables (csv), query filter
//    and the `kpis` resource of the query editor's catalog;
//  * both editors render (React.createElement is a recorder) into the
//    fields they are for, and their handlers send the changes they should.
const assert = require('assert/strict');
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');
const vm = require('vm');
const { isProvided } = require('./externals');

// --- stand-ins for what Grafana provides ---------------------------------

class DataSourcePlugin {
  constructor(DataSourceClass) {
    this.DataSourceClass = DataSourceClass;
    this.components = {};
  }
  setConfigEditor(editor) {
    this.components.ConfigEditor = editor;
    return this;
  }
  setQueryEditor(editor) {
    this.components.QueryEditor = editor;
    return this;
  }
}

const resources = [];
const valueCalls = [];
const catalog = { kpis: [{ name: 'open_exposure', summary: 'open exposures', per_policy: false }], dimensions: ['all', 'ring'] };
class DataSourceWithBackend {
  constructor(instanceSettings) {
    this.instanceSettings = instanceSettings;
  }
  getResource(p, params) {
    resources.push(p);
    if (p === 'values') {
      valueCalls.push(params);
      return Promise.resolve(['prod', 'test']);
    }
    return Promise.resolve(catalog);
  }
}

const templateCalls = [];
const templateSrv = {
  replace(value, scopedVars, format) {
    templateCalls.push({ value, format });
    return value === '$severity' ? ['high', 'critical'].join(format === 'csv' ? ',' : '|') : value;
  },
};

// Any name of a module without a hand-made stand-in is a component stub
// whose name tells what it stands for.
function stubModule(name) {
  const cache = new Map();
  return new Proxy(
    {},
    {
      get(target, key) {
        if (key === Symbol.toStringTag) {
          return 'Module'; // SystemJS registers it as it is
        }
        if (typeof key !== 'string' || key.startsWith('__') || key === 'then' || key === 'default') {
          return undefined;
        }
        if (!cache.has(key)) {
          const stub = function () {
            return null;
          };
          Object.defineProperty(stub, 'name', { value: `${name}.${key}` });
          cache.set(key, stub);
        }
        return cache.get(key);
      },
    }
  );
}

const Fragment = Symbol('Fragment');
const effects = [];
const react = {
  Fragment,
  createElement(type, props, ...children) {
    return { type, props: { ...(props || {}), children } };
  },
  useState(initial) {
    return [typeof initial === 'function' ? initial() : initial, () => {}];
  },
  useEffect(effect) {
    effects.push(effect);
  },
  useMemo(fn) {
    return fn();
  },
  useCallback(fn) {
    return fn;
  },
};

// namespace shapes a module as Grafana's loader registers it: a webpack
// module namespace (toStringTag "Module", __esModule), of an ES module
// (`import * as grafanaData`) or of a CommonJS one (`import('react')`: its
// exports once more as `default`).
function namespace(exports, commonJS) {
  const ns = Object.create(null);
  Object.defineProperty(ns, Symbol.toStringTag, { value: 'Module' });
  Object.defineProperty(ns, '__esModule', { value: true });
  Object.assign(ns, exports);
  if (commonJS) {
    ns.default = exports;
  }
  return ns;
}

// Hand-made where the plugin's code needs behaviour; @grafana/ui is all
// components, so stubs do.
const provided = {
  '@grafana/data': namespace({ DataSourcePlugin }),
  '@grafana/runtime': namespace({ DataSourceWithBackend, getTemplateSrv: () => templateSrv }),
  '@grafana/ui': stubModule('@grafana/ui'),
  react: namespace(react, true),
};

// --- helpers -----------------------------------------------------------------

// render calls a function component and, below it, every element whose
// type is a function that is not a stand-in; returns all elements.
function render(component, props) {
  const out = [];
  const walk = (node) => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (!node || typeof node !== 'object') {
      return;
    }
    out.push(node);
    if (typeof node.type === 'function' && !node.type.name.startsWith('@grafana/')) {
      walk(node.type(node.props));
    }
    walk(node.props.children);
  };
  walk(component(props));
  return out;
}

const ofType = (elements, name) => elements.filter((e) => typeof e.type === 'function' && e.type.name === `@grafana/ui.${name}`);
const labels = (elements) => ofType(elements, 'InlineField').map((e) => e.props.label);

function spy() {
  const calls = [];
  const fn = (...args) => {
    calls.push(args);
  };
  fn.calls = calls;
  return fn;
}

// importWithSystemJS imports module.js as Grafana's plugin loader does:
// SystemJS 6 with the AMD extra, each dependency in the registry as
// "package:NAME" and an import map from NAME to it. Only after the define()
// check: the AMD extra takes over the global define.
async function importWithSystemJS(file, deps) {
  require('systemjs/dist/system.js');
  require('systemjs/dist/extras/amd.js');
  const System = globalThis.System;
  System.shouldFetch = () => true;
  System.fetch = async (url) =>
    new Response(fs.readFileSync(new URL(url)), { headers: { 'content-type': 'application/javascript' } });
  const imports = {};
  for (const d of deps) {
    System.set(`package:${d}`, provided[d] ?? stubModule(d));
    imports[d] = `package:${d}`;
  }
  System.addImportMap({ imports });
  return System.import(pathToFileURL(path.resolve(file)).href);
}

// --- the check ---------------------------------------------------------------

async function main() {
  const file = process.argv[2];
  if (!file) {
    throw new Error('usage: node check.js MODULE_JS');
  }
  const code = fs.readFileSync(file, 'utf8');

  const defines = [];
  const define = (...args) => {
    defines.push(args);
  };
  define.amd = {};
  // Only the define() call is looked at here; SystemJS runs the factory below.
  vm.runInThisContext(`(function (define) {${code}\n})`, { filename: path.resolve(file) })(define);

  assert.equal(defines.length, 1, 'module.js must call define() exactly once');
  const args = defines[0];
  assert.equal(args.length, 2, 'define() must be anonymous: define([dependencies], factory)');
  const [deps, factory] = args;
  assert.ok(Array.isArray(deps) && deps.every((d) => typeof d === 'string'), 'define() dependencies must be module names');
  assert.equal(typeof factory, 'function', 'define() needs a factory function');
  for (const d of deps) {
    assert.ok(isProvided(d), `dependency ${d} is not a module Grafana provides`);
  }
  // Grafana's DataSourcePlugin, DataSourceWithBackend and React: a copy of its own would break the plugin.
  for (const d of ['@grafana/data', '@grafana/runtime', 'react']) {
    assert.ok(deps.includes(d), `dependency ${d} is missing: the bundle carries its own copy`);
  }

  const exported = await importWithSystemJS(file, deps);
  assert.ok(exported && typeof exported === 'object', 'SystemJS imported no exports');
  const { plugin } = exported;
  assert.ok(plugin instanceof DataSourcePlugin, 'exports.plugin must be a DataSourcePlugin');
  const DataSource = plugin.DataSourceClass;
  assert.ok(DataSource && DataSource.prototype instanceof DataSourceWithBackend, 'the data source must extend DataSourceWithBackend');
  const { ConfigEditor, QueryEditor } = plugin.components;
  assert.equal(typeof ConfigEditor, 'function', 'plugin has no config editor');
  assert.equal(typeof QueryEditor, 'function', 'plugin has no query editor');

  // The data source.
  const settings = { id: 1, uid: 'patchgrid', type: 'patchgrid-datasource', name: 'patchgrid', jsonData: {} };
  const ds = new DataSource(settings);
  assert.equal(ds.instanceSettings, settings);
  assert.equal(ds.getDefaultQuery().queryType, 'kpi');
  const applied = ds.applyTemplateVariables({ refId: 'A', queryType: 'findings', severity: '$severity', ring: 'canary' }, {});
  assert.equal(applied.severity, 'high,critical', 'multi-value variables must become comma-separated lists');
  assert.equal(applied.ring, 'canary');
  assert.equal(applied.refId, 'A');
  assert.ok(templateCalls.some((c) => c.value === '$severity' && c.format === 'csv'));
  assert.equal(ds.filterQuery({ refId: 'A', queryType: 'kpi' }), false, 'a KPI query without a KPI is not sent');
  assert.equal(ds.filterQuery({ refId: 'A', queryType: 'kpi', kpi: 'mttr' }), true);
  assert.deepEqual(await ds.catalog(), catalog);
  assert.deepEqual(resources, ['kpis']);

  // Template variable queries: a field, for advisories with a prefix, read
  // from the backend's /values resource; anything else is refused.
  resources.length = 0;
  assert.deepEqual(await ds.metricFindQuery('ring'), [
    { text: 'prod', value: 'prod' },
    { text: 'test', value: 'test' },
  ]);
  await ds.metricFindQuery(' advisory  CVE-2024- ');
  assert.deepEqual(resources, ['values', 'values']);
  assert.deepEqual(valueCalls, [{ field: 'ring' }, { field: 'advisory', prefix: 'CVE-2024-' }]);
  for (const bad of ['hostname', 'ring x', 'advisory a b', '']) {
    await assert.rejects(ds.metricFindQuery(bad), /patchgrid variable query/, `variable query "${bad}" must be refused`);
  }
  resources.length = 0;

  // The config editor: ClickHouse settings, and a backend switch that
  // writes jsonData.backend.
  const onOptionsChange = spy();
  const options = { jsonData: { backend: 'clickhouse', addr: 'ch:9000' }, secureJsonFields: {}, secureJsonData: {} };
  const config = render(ConfigEditor, { options, onOptionsChange });
  for (const l of ['Backend', 'Database', 'Address', 'User', 'Password']) {
    assert.ok(labels(config).includes(l), `config editor has no "${l}" field (fields: ${labels(config).join(', ')})`);
  }
  const [backendSwitch] = ofType(config, 'RadioButtonGroup');
  assert.ok(backendSwitch, 'config editor has no backend switch');
  backendSwitch.props.onChange('chdb');
  assert.equal(onOptionsChange.calls.length, 1);
  assert.equal(onOptionsChange.calls[0][0].jsonData.backend, 'chdb');
  assert.equal(onOptionsChange.calls[0][0].jsonData.addr, 'ch:9000', 'other settings are kept');
  const chdb = render(ConfigEditor, { options: { ...options, jsonData: { backend: 'chdb' } }, onOptionsChange });
  assert.ok(!labels(chdb).includes('Address'), 'the chdb backend shows no ClickHouse address');
  assert.ok(!labels(chdb).some((l) => /libchdb/i.test(l)), 'the libchdb.so path is the administrator\'s, never a data source setting');

  // The query editor: the catalog is loaded from the backend, and choosing a
  // query type changes the query and runs it.
  effects.length = 0;
  resources.length = 0;
  const onChange = spy();
  const onRunQuery = spy();
  const query = { refId: 'A', queryType: 'kpi', kpi: 'open_exposure' };
  const editor = render(QueryEditor, { query, onChange, onRunQuery, datasource: ds });
  assert.ok(labels(editor).includes('Query') && labels(editor).includes('KPI'), `query editor fields: ${labels(editor).join(', ')}`);
  assert.ok(effects.length > 0, 'query editor loads nothing');
  effects.forEach((e) => e());
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(resources, ['kpis'], 'query editor must read the catalog resource');
  const [typeSwitch] = ofType(editor, 'RadioButtonGroup');
  assert.ok(typeSwitch, 'query editor has no query type switch');
  typeSwitch.props.onChange('findings');
  assert.deepEqual(onChange.calls[0][0], { ...query, queryType: 'findings' });
  assert.equal(onRunQuery.calls.length, 1);
  const findings = render(QueryEditor, { query: { refId: 'A', queryType: 'findings' }, onChange, onRunQuery, datasource: ds });
  assert.ok(!labels(findings).includes('KPI'), 'findings queries have no KPI field');

  console.log(`bundle check: ok (${path.basename(file)}: define([${deps.join(', ')}]), plugin with config and query editor)`);
}

main().catch((err) => {
  console.error(`bundle check: FAILED: ${err.stack || err}`);
  process.exit(1);
});
