'use strict';
// node build.js ENTRY OUTDIR: bundles the frontend from ENTRY (src/module.ts)
// into OUTDIR/module.js and OUTDIR/module.js.map the way Grafana loads a
// plugin: one anonymous AMD module,
//
//   define(["@grafana/data", "@grafana/runtime", ...], function (...) { ...; return exports; })
//
// whose dependencies are the modules Grafana provides (externals.js) and
// whose value is the module's exports (`plugin`). This is what
// @grafana/create-plugin's webpack build emits (output.library.type "amd").
//
// esbuild has no AMD output, so it bundles to CommonJS and this script
// wraps that: the dependency list is the external imports esbuild's
// metafile reports, and inside the define() factory `require(name)` answers
// the matching factory argument, `module.exports` is what define() returns.
// esbuild's CommonJS interop (`__toESM`: a default import is `.default` of
// an `__esModule` object, else the object itself) is webpack's, which is what
// Grafana's module objects are made for. A bare import that Grafana does not
// provide is bundled (and fails the build unless its package is installed
// next to esbuild, which none is: add it to package.json first).
//
// esbuild comes from NODE_PATH (bundle.sh installs it in $PATCHGRID_CACHE).
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');
const { isProvided } = require('./externals');

const header = (deps) =>
  `define(${JSON.stringify(deps)},function(){"use strict";` +
  `var __amdDeps=${JSON.stringify(deps)},__amdArgs=arguments;` +
  `var require=function(id){var i=__amdDeps.indexOf(id);` +
  `if(i<0)throw new Error("patchgrid-datasource: module "+id+" is not a dependency of the bundle");return __amdArgs[i]};` +
  `var module={exports:{}},exports=module.exports;\n`;
const footer = '\nreturn module.exports});\n//# sourceMappingURL=module.js.map\n';

const grafanaExternals = {
  name: 'grafana-externals',
  setup(build) {
    // Bare module names only: relative and absolute paths are the plugin's own.
    build.onResolve({ filter: /^[^./]/ }, (args) => (isProvided(args.path) ? { path: args.path, external: true } : undefined));
  },
};

async function main() {
  const [entry, outdir] = process.argv.slice(2);
  if (!entry || !outdir) {
    throw new Error('usage: node build.js ENTRY OUTDIR');
  }
  const root = path.resolve(path.dirname(entry), '..'); // the plugin directory, above src/
  const outfile = path.resolve(outdir, 'module.js');
  const result = await esbuild.build({
    entryPoints: [path.resolve(entry)],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'browser',
    target: 'es2020',
    jsx: 'transform', // React.createElement, as tsconfig.json's "jsx": "react"
    define: { 'process.env.NODE_ENV': '"production"' },
    minify: true,
    sourcemap: 'external',
    metafile: true,
    write: false,
    logLevel: 'warning',
    plugins: [grafanaExternals],
  });

  // The output's imports are the require() calls left in the bundle (the
  // inputs' imports also list those that were type-only and so removed).
  const output = Object.entries(result.metafile.outputs).find(([p]) => path.resolve(p) === outfile);
  if (!output) {
    throw new Error(`no metafile entry for ${outfile}`);
  }
  const deps = new Set();
  for (const imp of output[1].imports) {
    if (!imp.external || imp.kind !== 'require-call' || !isProvided(imp.path)) {
      throw new Error(`unexpected import left in the bundle: ${JSON.stringify(imp)}`);
    }
    deps.add(imp.path);
  }
  const depList = [...deps].sort();

  const js = result.outputFiles.find((f) => f.path === outfile);
  const map = result.outputFiles.find((f) => f.path === outfile + '.map');
  if (!js || !map) {
    throw new Error(`esbuild wrote ${result.outputFiles.map((f) => f.path).join(', ')}, not module.js and its map`);
  }
  const head = header(depList);
  const sourceMap = JSON.parse(map.text);
  // The header shifts every generated line down: one empty mapping line each.
  sourceMap.mappings = ';'.repeat(head.split('\n').length - 1) + sourceMap.mappings;
  // Sources relative to the plugin directory (src/...), not to OUTDIR.
  sourceMap.sources = sourceMap.sources.map((s) =>
    path.relative(root, path.resolve(outdir, s)).split(path.sep).join('/')
  );
  sourceMap.file = 'module.js';

  fs.mkdirSync(outdir, { recursive: true });
  fs.writeFileSync(outfile, head + js.text.replace(/\n+$/, '') + footer);
  fs.writeFileSync(outfile + '.map', JSON.stringify(sourceMap));
  const size = fs.statSync(outfile).size;
  console.log(`bundle: ${path.relative(process.cwd(), outfile) || outfile} (${size} bytes), AMD dependencies: ${depList.join(', ')}`);
}

main().catch((err) => {
  console.error(`bundle: ${err.message}`);
  process.exit(1);
});
