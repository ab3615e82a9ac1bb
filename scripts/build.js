'use strict';
// Build entry for `npm install` (and `npm pack`).
//
// - In a source checkout (or any install with Rust available) it builds the addon with the
//   napi CLI, which also regenerates binding.js / binding.d.ts.
// - A tarball made by `npm pack` carries the built linux-x64 binary and a `.prebuilt` marker:
//   installing it needs no Rust at all.
//   `--prepack` builds in release mode and writes the marker; `--postpack` removes it.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { SHIPPED, platformTriple } = require('../lib/platform');

const root = path.join(__dirname, '..');
const marker = path.join(root, '.prebuilt');
const binary = path.join(root, 'queue-native.linux-x64-gnu.node');
const mode = process.argv[2];

function log(msg) {
  console.log(`[queue-native] ${msg}`);
}

function hasCargo() {
  return spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status === 0;
}

function napiBuild() {
  let cli;
  try {
    const pkg = require.resolve('@napi-rs/cli/package.json', { paths: [root] });
    cli = path.join(path.dirname(pkg), require(pkg).bin.napi);
  } catch {
    cli = null;
  }
  const args = ['build', '--platform', '--release', '--features', 'node', '--js', 'binding.js', '--dts', 'binding.d.ts'];
  const run = cli
    ? spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit' })
    : spawnSync('npx', ['--yes', '@napi-rs/cli@3', ...args], { cwd: root, stdio: 'inherit' });
  if (run.status !== 0) {
    console.error('[queue-native] the Rust build failed (see above).');
    process.exit(run.status || 1);
  }
}

// The tarball's package.json carries no `prepare` script: npm would not run it for a tarball
// anyway, but npm 11 still lists it as a script awaiting approval on every consumer install.
// prepack sets the checkout's manifest aside and postpack puts it back, byte for byte.
const manifest = path.join(root, 'package.json');
const manifestKept = path.join(root, '.package.json.prepack');

function restoreManifest() {
  if (fs.existsSync(manifestKept)) fs.renameSync(manifestKept, manifest);
}

if (mode === '--postpack') {
  fs.rmSync(marker, { force: true });
  restoreManifest();
  process.exit(0);
}

if (mode === '--prepack') {
  restoreManifest(); // a pack that died half-way left the checkout's manifest aside
  napiBuild();
  fs.writeFileSync(marker, `built ${new Date().toISOString()} for ${process.platform}-${process.arch}\n`);
  const text = fs.readFileSync(manifest, 'utf8');
  const published = JSON.parse(text);
  delete published.scripts.prepare;
  fs.writeFileSync(manifestKept, text);
  fs.writeFileSync(manifest, `${JSON.stringify(published, null, 2)}\n`);
  log('release binary built; the tarball will carry it (and no prepare script)');
  process.exit(0);
}

if (process.env.QUEUE_NATIVE_SKIP_BUILD === '1') {
  log('QUEUE_NATIVE_SKIP_BUILD=1: not building');
  process.exit(0);
}

const triple = platformTriple();
const prebuiltUsable = fs.existsSync(marker) && fs.existsSync(binary) && SHIPPED.has(triple);
if (prebuiltUsable) {
  log(`using the prebuilt ${triple} binary from the package`);
  process.exit(0);
}

if (!hasCargo()) {
  const why = fs.existsSync(marker) ? `the package ships ${[...SHIPPED].join(', ')} only, this is ${triple}` : 'this is a source checkout';
  console.error(
    `[queue-native] cannot install: no prebuilt binary fits (${why}) and no Rust toolchain (cargo) is on PATH.\n` +
      '  Install Rust (https://rustup.rs) and run `node node_modules/@anant/queue-native/scripts/build.js`, or run on a platform the package ships.\n' +
      '  On Alpine: see the README section "Docker and Alpine".',
  );
  process.exit(1);
}

log('building the native addon from source (cargo, release mode)');
napiBuild();
