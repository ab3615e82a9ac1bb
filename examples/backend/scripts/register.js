'use strict';
// `node -r ./scripts/register.js src/server.ts`: runs the TypeScript sources directly, compiled
// in memory by @swc/core (the compiler jest uses through @swc/jest). No type checking here:
// `npm run typecheck` does that. `npm run build` compiles to dist/ with tsc for production.
const fs = require('fs');
const path = require('path');
const { transformSync } = require('@swc/core');

const root = path.resolve(__dirname, '..');

require.extensions['.ts'] = function compileTs(module, filename) {
  if (filename.includes(`${path.sep}node_modules${path.sep}`) || !filename.startsWith(root)) {
    throw new Error(`register.js only compiles the example's own sources, not ${filename}`);
  }
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    sourceMaps: 'inline',
    jsc: { parser: { syntax: 'typescript' }, target: 'es2021' },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};
process.setSourceMapsEnabled?.(true);
