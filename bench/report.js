'use strict';
// Markdown rendering of a bench result (bench/results/<timestamp>.json -> latest.md).

function num(x) {
  if (x == null || !Number.isFinite(x)) return 'n/a';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toString();
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

function cell(s) {
  if (!s) return 'n/a';
  if (s.n === 1 || s.min === s.max) return num(s.median);
  return `${num(s.median)} (${num(s.min)}–${num(s.max)})`;
}

function ratioCell(m) {
  if (!m || m.ratio == null) return 'n/a';
  const r = `**${m.ratio.toFixed(2)}x**`;
  if (!m.pairRatio || m.bullmq.n === 1) return r;
  return `${r} (${m.pairRatio.min.toFixed(2)}–${m.pairRatio.max.toFixed(2)})`;
}

function table(rows, scenarios, metric, unit) {
  const out = [`| Scenario | BullMQ 6 ${unit} | ours ${unit} | ours/BullMQ |`, '|---|---:|---:|---:|'];
  for (const sc of scenarios) {
    const m = sc.summary && sc.summary[metric];
    if (sc.skipped) out.push(`| ${sc.title} | ${sc.skipped} | | |`);
    else if (!m) out.push(`| ${sc.title} | n/a | n/a | n/a${sc.errors && sc.errors.length ? ' (errors)' : ''} |`);
    else out.push(`| ${sc.title} | ${cell(m.bullmq)} | ${cell(m.ours)} | ${ratioCell(m)} |`);
  }
  rows.push(...out, '');
}

/** The issue's targets, judged on the ratios of medians of this run. */
function targets(result) {
  const by = Object.fromEntries(result.scenarios.map((s) => [s.id, s]));
  const ratio = (id, metric) => by[id] && by[id].summary && by[id].summary[metric] && by[id].summary[metric].ratio;
  const tp = result.scenarios.filter((s) => s.kind === 'throughput');
  const list = [];
  const add = (name, goal, cmp, entries) => {
    const vals = entries.filter(([, r]) => r != null);
    if (vals.length === 0) {
      const skipped = entries.map(([id]) => by[id] && by[id].skipped).find(Boolean);
      list.push({ name, goal, measured: skipped || 'not measured', met: 'n/a' });
      return;
    }
    const met = vals.every(([, r]) => cmp(r));
    const measured = vals.map(([id, r]) => `${id} ${r.toFixed(2)}x`).join(', ');
    list.push({ name, goal, measured, met: met ? 'met' : vals.some(([, r]) => cmp(r)) ? 'partly' : 'not met' });
  };
  const ids = (pred) => tp.filter((s) => pred(s.id)).map((s) => [s.id, ratio(s.id, 'redisCpuUsPerJob')]);
  // Issue 17's targets (the serial path and concurrency 1-10); RSS and addBulk from issue 6.
  add('throughput, concurrency 1', '>= 1.3x', (r) => r >= 1.3, [['c1-remove', ratio('c1-remove', 'jobsPerSec')], ['c1-keep', ratio('c1-keep', 'jobsPerSec')]]);
  add('process CPU per job, concurrency 1', '<= 0.7x', (r) => r <= 0.7, [['c1-remove', ratio('c1-remove', 'procCpuUsPerJob')], ['c1-keep', ratio('c1-keep', 'procCpuUsPerJob')]]);
  add('throughput, concurrency 10', '>= 1.6x', (r) => r >= 1.6, [['c10-remove', ratio('c10-remove', 'jobsPerSec')], ['c10-keep', ratio('c10-keep', 'jobsPerSec')]]);
  add('throughput, concurrency 50', '>= 2x', (r) => r >= 2, [['c50-remove', ratio('c50-remove', 'jobsPerSec')], ['c50-keep', ratio('c50-keep', 'jobsPerSec')]]);
  add('throughput, 5 queues x c5', '>= 1.6x', (r) => r >= 1.6, [['5q-c5', ratio('5q-c5', 'jobsPerSec')]]);
  add('Redis CPU per job, concurrency >= 10', '<= 0.6x', (r) => r <= 0.6, ids((id) => /^c(10|50)-/.test(id)));
  add('Redis CPU per job, concurrency 1', '<= 1x', (r) => r <= 1, ids((id) => id.startsWith('c1-')));
  add('backend fan-out: process CPU per job', '<= 0.7x', (r) => r <= 0.7, [['backend', ratio('backend', 'procCpuUsPerJob')]]);
  add('backend fan-out: Redis CPU per job', '<= 0.7x', (r) => r <= 0.7, [['backend', ratio('backend', 'redisCpuUsPerJob')]]);
  add('pickup latency p99', '<= 1x (no worse)', (r) => r <= 1, [['latency', ratio('latency', 'latency.p99')]]);
  add('worker process CPU per job (issue 6)', '<= 0.4x', (r) => r <= 0.4, tp.map((s) => [s.id, ratio(s.id, 'procCpuUsPerJob')]));
  add('RSS, five workers in one process (issue 6)', '<= 0.6x', (r) => r <= 0.6, [['5q-c5', ratio('5q-c5', 'peakRssMB')]]);
  add('addBulk (issue 6)', '>= 2x', (r) => r >= 2, [['addBulk', ratio('addBulk', 'jobsPerSec')]]);
  return list;
}

function render(result) {
  const m = result.machine;
  const rows = [];
  rows.push(`# Benchmark: BullMQ ${m.bullmq} Worker vs @anant/queue-native`, '');
  rows.push(`- run: ${result.startedAt} .. ${result.finishedAt}, \`${result.command}\`, ${result.options.reps} repetition(s), interleaved BullMQ/ours`);
  rows.push(`- machine: ${m.nproc} cores (\`nproc\`), ${m.cpuModel}, ${m.memGB} GB; Node ${m.node}; Redis ${m.redis}; Linux ${m.kernel}`);
  rows.push(`- load average (1/5/15 min) at start: ${m.loadavgStart}; at end: ${m.loadavgEnd}`);
  if (result.env && Object.keys(result.env).length) rows.push(`- environment: ${Object.entries(result.env).map(([k, v]) => `\`${k}=${v}\``).join(', ')}`);
  if (result.addon) {
    const a = result.addon;
    const git = a.git ? `; sources: git ${a.git.head}${a.git.dirtySources ? ` + ${a.git.dirtySources} uncommitted file(s) under src/ lib/` : ''}` : '';
    rows.push(`- addon: ${a.file} (${a.debug ? '**DEBUG build**' : 'release build'}, ${(a.bytes / 2 ** 20).toFixed(1)} MB, built ${a.builtAt}, sha256 ${a.sha256}…)${git}`);
  }
  rows.push('- cells: median (min–max) over the repetitions; ratio: ours/BullMQ of the medians (min–max of the per-repetition pairs)', '');

  rows.push('## Targets', '', '| Target | Goal | ours/BullMQ (this run) | Verdict |', '|---|---|---|---|');
  for (const t of targets(result)) rows.push(`| ${t.name} | ${t.goal} | ${t.measured} | ${t.met} |`);
  rows.push('');

  const tp = result.scenarios.filter((s) => s.kind === 'throughput');
  const lat = result.scenarios.filter((s) => s.kind === 'latency');
  const prod = result.scenarios.filter((s) => s.kind === 'producer');
  if (tp.length) {
    for (const [title, metric, unit] of [
      ['Throughput (jobs/s, higher is better)', 'jobsPerSec', 'jobs/s'],
      ['Redis CPU per job (µs, INFO cpu sys+user delta / jobs)', 'redisCpuUsPerJob', 'µs'],
      ['Redis commands per job (INFO commandstats calls delta / jobs; includes the commands run inside scripts)', 'redisCallsPerJob', 'calls'],
      ['Script calls per job (EVALSHA/EVAL; the round trips that carry the work)', 'scriptCallsPerJob', 'calls'],
      ['Worker process CPU per job (µs, process.cpuUsage() of the child, all threads)', 'procCpuUsPerJob', 'µs'],
      ['Worker process: peak Redis sockets (sampled CLIENT LIST every 100 ms)', 'peakSockets', 'sockets'],
      ['Worker process: peak RSS (MB, sampled every 50 ms)', 'peakRssMB', 'MB'],
      ['Worker process: RSS after the workers connected, before the run (MB)', 'rssIdleMB', 'MB'],
    ]) {
      rows.push(`## ${title}`, '');
      table(rows, tp, metric, unit);
    }
  }
  for (const sc of lat) {
    rows.push(`## Pickup latency (ms, processor start - job.timestamp, whole ms): ${sc.title}`, '');
    rows.push('| Metric | BullMQ 6 | ours | ours/BullMQ |', '|---|---:|---:|---:|');
    for (const p of ['p50', 'p95', 'p99']) {
      const s = sc.summary && sc.summary[`latency.${p}`];
      rows.push(s ? `| ${p} ms | ${cell(s.bullmq)} | ${cell(s.ours)} | ${ratioCell(s)} |` : `| ${p} ms | n/a | n/a | n/a |`);
    }
    for (const p of ['p50', 'p95', 'p99']) {
      const s = sc.summary && sc.summary[`latency.hr.${p}`];
      if (s) rows.push(`| ${p} ms, sub-ms resolution (producer's clock in data.t) | ${cell(s.bullmq)} | ${cell(s.ours)} | ${ratioCell(s)} |`);
    }
    for (const [metric, label] of [
      ['peakSockets', 'peak sockets'],
      ['procCpuUsPerJob', 'worker process CPU µs/job (at 200 jobs/s)'],
      ['peakRssMB', 'worker peak RSS MB'],
    ]) {
      const s = sc.summary && sc.summary[metric];
      if (s) rows.push(`| ${label} | ${cell(s.bullmq)} | ${cell(s.ours)} | ${ratioCell(s)} |`);
    }
    rows.push('');
  }
  if (prod.length) {
    rows.push("## Producer: ours `Queue` vs BullMQ 6's `Queue` (each in its own child process)", '');
    rows.push('| Scenario | Metric | BullMQ 6 | ours | ours/BullMQ |', '|---|---|---:|---:|---:|');
    for (const sc of prod) {
      if (sc.errors && sc.errors.length && !sc.summary) {
        rows.push(`| ${sc.title} | | errors: see Problems | | |`);
        continue;
      }
      if (sc.skipped) {
        rows.push(`| ${sc.title} | | ${sc.skipped} | | |`);
        continue;
      }
      for (const [metric, label] of [
        ['jobsPerSec', 'jobs/s'],
        ['redisCpuUsPerJob', 'Redis CPU µs/job'],
        ['redisCallsPerJob', 'Redis calls/job'],
        ['procCpuUsPerJob', 'process CPU µs/job'],
      ]) {
        const s = sc.summary && sc.summary[metric];
        rows.push(s ? `| ${sc.title} | ${label} | ${cell(s.bullmq)} | ${cell(s.ours)} | ${ratioCell(s)} |` : `| ${sc.title} | ${label} | n/a | n/a | n/a |`);
      }
    }
    rows.push('');
  }
  const problems = [];
  for (const sc of result.scenarios) {
    for (const e of sc.errors || []) problems.push(`- ${sc.id} rep ${e.rep + 1} ${e.impl}: ${e.message}`);
    for (const impl of ['bullmq', 'ours']) {
      for (const r of (sc.runs && sc.runs[impl]) || []) {
        if (r.verify !== true) problems.push(`- ${sc.id} rep ${r.rep + 1} ${impl}: verification failed: ${[].concat(r.verify).join('; ')}`);
      }
    }
  }
  if (problems.length) rows.push('## Problems', '', ...problems, '');
  return rows.join('\n');
}

module.exports = { render, targets };
