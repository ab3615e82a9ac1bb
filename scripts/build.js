'use strict';
// Build entry: the checkout's `prepare` script (`npm install` / `npm ci` in the checkout) and
// `npm pack`'s prepack/postpack. A consumer installing the tarball runs none of it.
//
// - In a source checkout it builds the addon with the napi CLI, which also regenerates
//   binding.js / binding.d.ts.
// - `--prepack` builds the release binary for linux-x64 glibc, cross-builds the musl one
//   (Alpine) when this machine can, and writes the `.prebuilt` marker; the tarball carries them.
// - Run by hand in an installed package (`node node_modules/@anant/queue-native/scripts/build.js`)
//   it builds from source when no shipped binary fits this platform (see README, Alpine).
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { platformTriple, binaryPath } = require('../lib/platform');

const root = path.join(__dirname, '..');
const marker = path.join(root, '.prebuilt');
const mode = process.argv[2];

function log(msg) {
  console.log(`[queue-native] ${msg}`);
}

function succeeds(cmd, args) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
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

// Cross-builds queue-native.linux-x64-musl.node on a glibc machine. Needs rustup's musl target
// and musl-gcc (Debian: musl-tools). A Node addon must link musl dynamically (-crt-static off),
// and Rust's unwinder links libgcc_s, which musl-tools lacks: the host's copy satisfies the
// link (Alpine's node images ship their own libgcc_s.so.1 at run time).
function muslBuild() {
  const target = 'x86_64-unknown-linux-musl';
  const installed = spawnSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8' });
  if (installed.status !== 0 || !installed.stdout.split('\n').includes(target) || !succeeds('musl-gcc', ['--version'])) {
    log(`no musl cross-build here (needs \`rustup target add ${target}\` and musl-gcc): the tarball carries the glibc binary only`);
    return false;
  }
  const gccS = spawnSync('gcc', ['-print-file-name=libgcc_s.so.1'], { encoding: 'utf8' }).stdout.trim();
  // A fixed directory: RUSTFLAGS is part of cargo's fingerprint, so a new path each time would
  // rebuild every dependency.
  const linkDir = path.join(root, 'target', 'musl-link');
  fs.mkdirSync(linkDir, { recursive: true });
  fs.rmSync(path.join(linkDir, 'libgcc_s.so'), { force: true });
  fs.symlinkSync(gccS, path.join(linkDir, 'libgcc_s.so'));
  const env = {
    ...process.env,
    CC_x86_64_unknown_linux_musl: 'musl-gcc',
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER: 'musl-gcc',
    RUSTFLAGS: `-C target-feature=-crt-static -C link-arg=-L${linkDir}`,
  };
  const run = spawnSync('cargo', ['build', '--release', '--features', 'node', '--target', target], { cwd: root, stdio: 'inherit', env });
  if (run.status !== 0) {
    console.error('[queue-native] the musl cross-build failed (see above).');
    process.exit(run.status || 1);
  }
  fs.copyFileSync(path.join(root, 'target', target, 'release', 'libqueue_native.so'), binaryPath('linux-x64-musl'));
  log('musl binary built (linux-x64-musl)');
  return true;
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
  const triples = ['linux-x64-gnu'];
  if (muslBuild()) triples.push('linux-x64-musl');
  else fs.rmSync(binaryPath('linux-x64-musl'), { force: true });
  fs.writeFileSync(marker, `built ${new Date().toISOString()}: ${triples.join(', ')}\n`);
  const text = fs.readFileSync(manifest, 'utf8');
  const published = JSON.parse(text);
  delete published.scripts.prepare;
  fs.writeFileSync(manifestKept, text);
  fs.writeFileSync(manifest, `${JSON.stringify(published, null, 2)}\n`);
  log(`release binaries built (${triples.join(', ')}); the tarball carries them and no prepare script`);
  process.exit(0);
}

if (process.env.QUEUE_NATIVE_SKIP_BUILD === '1') {
  log('QUEUE_NATIVE_SKIP_BUILD=1: not building');
  process.exit(0);
}

const triple = platformTriple();
if (fs.existsSync(marker) && fs.existsSync(binaryPath(triple))) {
  log(`using the prebuilt ${triple} binary from the package`);
  process.exit(0);
}

if (!succeeds('cargo', ['--version'])) {
  const why = fs.existsSync(marker) ? `the package ships no binary for ${triple}` : 'this is a source checkout';
  console.error(
    `[queue-native] cannot build: ${why} and no Rust toolchain (cargo) is on PATH.\n` +
      '  Install Rust (https://rustup.rs) and run this script again, or run on a platform the package ships.\n' +
      '  On Alpine: see docs/MIGRATION.md, "Docker and Alpine".',
  );
  process.exit(1);
}

log('building the native addon from source (cargo, release mode)');
napiBuild();
