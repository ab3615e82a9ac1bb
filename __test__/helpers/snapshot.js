'use strict';
// Everything a run left under one key prefix, normalised so that two runs of the same
// protocol compare equal: wall-clock times, lock tokens, stack-trace text and the random
// prefix are replaced; names, fields, order, JSON text, counters and event sequences stay.
// The wake-up marker is left out: BullMQ's worker consumes it with BZPOPMIN, a polling
// driver does not, so whether it is still there at the end is timing, not protocol.

const TIME_FIELDS = new Set(['timestamp', 'processedOn', 'finishedOn']);

async function scanAll(client, pattern) {
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.sort();
}

function normaliseHash(h) {
  const out = {};
  for (const field of Object.keys(h).sort()) {
    const v = h[field];
    if (TIME_FIELDS.has(field)) out[field] = /^\d{13}$/.test(v) ? '<ts>' : `<bad time ${v}>`;
    else if (field === 'stacktrace') out[field] = `<${JSON.parse(v).length} stack entries>`;
    else out[field] = v;
  }
  return out;
}

// Finished sets are ordered by finishedOn; jobs that finished in the same millisecond are
// put in the order of their last event, so sub-millisecond timing never reorders them.
function normaliseZset(rel, flat, lastEvent) {
  const out = [];
  for (let i = 0; i < flat.length; i += 2) {
    const [member, score] = [flat[i], Number(flat[i + 1])];
    if (rel.endsWith(':prioritized')) out.push({ member, label: `${member} @priority ${Math.floor(score / 2 ** 32)}` });
    else out.push({ member, label: member, score });
  }
  if (/:(completed|failed)$/.test(rel)) {
    out.sort((a, b) => a.score - b.score || (lastEvent.get(a.member) ?? -1) - (lastEvent.get(b.member) ?? -1));
  }
  return out.map((m) => m.label);
}

async function lastEvents(client, eventsKey) {
  const last = new Map();
  (await client.xrange(eventsKey, '-', '+')).forEach(([, flat], i) => {
    const at = flat.indexOf('jobId');
    if (at >= 0) last.set(flat[at + 1], i);
  });
  return last;
}

function normaliseStream(entries) {
  return entries.map(([id, flat]) => {
    const e = {};
    for (let i = 0; i < flat.length; i += 2) e[flat[i]] = flat[i + 1];
    if (e.event === 'delayed' && e.delay) {
      // The due time, as its lead over the entry's own time (the applied delay), in 50 ms steps.
      e.delay = `<+${Math.round((Number(e.delay) - Number(id.split('-')[0])) / 50) * 50}ms>`;
    }
    return Object.fromEntries(Object.keys(e).sort().map((k) => [k, e[k]]));
  });
}

async function snapshot(client, prefix) {
  const out = {};
  for (const key of await scanAll(client, `${prefix}:*`)) {
    const rel = key.slice(prefix.length + 1);
    if (rel.endsWith(':marker')) continue;
    const type = await client.type(key);
    let value;
    if (type === 'string') {
      if (rel.endsWith(':lock')) value = '<token>';
      else if (rel.endsWith(':stalled-check')) value = '<ts>';
      else value = await client.get(key);
    } else if (type === 'hash') value = normaliseHash(await client.hgetall(key));
    else if (type === 'list') value = await client.lrange(key, 0, -1);
    else if (type === 'set') value = (await client.smembers(key)).sort();
    else if (type === 'zset') {
      const events = `${key.slice(0, key.lastIndexOf(':'))}:events`;
      value = normaliseZset(rel, await client.zrange(key, 0, -1, 'WITHSCORES'), await lastEvents(client, events));
    }
    else if (type === 'stream') value = normaliseStream(await client.xrange(key, '-', '+'));
    out[rel] = JSON.parse(JSON.stringify({ type, value }).split(`${prefix}:`).join('<prefix>:'));
  }
  return out;
}

module.exports = { snapshot, scanAll };
