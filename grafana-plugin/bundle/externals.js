'use strict';
// The modules Grafana hands to a plugin's module.js at run time: the bundle
// imports them (its AMD define() lists them as dependencies) instead of
// carrying its own copy. The same list as the externals of
// @grafana/create-plugin's webpack configuration (.config/webpack or
// .config/bundler/externals.ts in a scaffolded plugin), without its legacy
// "grafana/..." prefix and "amd-module" entries, which this plugin does not use:
// exact names, and @grafana/data, runtime and ui with their subpaths.
const exact = new Set([
  'lodash',
  'jquery',
  'moment',
  'slate',
  'emotion',
  '@emotion/react',
  '@emotion/css',
  'prismjs',
  'slate-plain-serializer',
  '@grafana/slate-react',
  'react',
  'react-dom',
  'react-redux',
  'redux',
  'rxjs',
  'i18next',
  'react-router',
  'react-router-dom',
  'd3',
  'angular',
]);
const prefixed = /^@grafana\/(data|runtime|ui)(\/.*)?$/;

// isProvided tells whether Grafana provides module `id`.
function isProvided(id) {
  return exact.has(id) || prefixed.test(id);
}

module.exports = { isProvided };
