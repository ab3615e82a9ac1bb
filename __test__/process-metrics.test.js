'use strict';
// The process view: metrics() and metricsText() report what this process's engine did, from
// counters kept where the work happens. Checked against what the test made happen.
const qn = require('..');
const { waitFor, sleep } = require('./helpers/redis-server');
const { useRedis } = require('./helpers/suite');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');

const { redis, closers } = useRedis();

function ourWorker(name, processor, opts = {}) {
  const w = new qn.Worker(name, processor, opts);
  w.on('error', () => {});
  closers.push(() => w.close());
  return w;
}

function bullQueue(name) {
  const q = new bullmq[6].Queue(name, { connection: connectionFor(redis) });
  closers.push(() => q.close());
  return q;
}

const queueOf = (name) => qn.metrics().queues.find((q) => q.queue === name);

describe('metrics()', () => {
  test('per queue: processed / failed counts, processing-time histogram, jobs in flight', async () => {
    const name = uniqueQueue('pm');
    const producer = bullQueue(name);
    let release;
    const gate = new Promise((r) => {
      release = r;
    });
    ourWorker(
      name,
      async (job) => {
        if (job.name === 'hold') await gate;
        if (job.name === 'bad') throw new Error('bad');
        await sleep(20);
        return 1;
      },
      { concurrency: 2 },
    );
    await producer.add('hold', {});
    await waitFor(() => queueOf(name) && queueOf(name).inFlight === 1, { what: 'one job in flight' });
    await producer.addBulk([
      { name: 'ok', data: {} },
      { name: 'bad', data: {} },
      { name: 'ok', data: {} },
    ]);
    await waitFor(() => queueOf(name).processed === 3, { what: '3 processed' });
    expect(queueOf(name).inFlight).toBe(1);
    release();
    await waitFor(() => queueOf(name).processed === 4 && queueOf(name).inFlight === 0, { what: 'all done' });
    const q = queueOf(name);
    expect(q.prefix).toBe('bull');
    expect(q.failed).toBe(1);
    const h = q.processingSeconds;
    expect(h.count).toBe(4);
    // Three of the four ran for at least 20 ms.
    expect(h.sum).toBeGreaterThanOrEqual(0.06);
    const at10ms = h.buckets.find((b) => b.le === 0.01).count;
    expect(at10ms).toBeLessThanOrEqual(1);
    for (let i = 1; i < h.buckets.length; i++) expect(h.buckets[i].count).toBeGreaterThanOrEqual(h.buckets[i - 1].count);
    expect(h.buckets[h.buckets.length - 1].count).toBeLessThanOrEqual(h.count);
    expect(qn.metrics().bridgeBacklog).toBe(0);
  });

  test('sockets per endpoint and role agree with health(); dispatcher wake-ups and wake -> fetch latency', async () => {
    const name = uniqueQueue('pw');
    const before = qn.metrics().dispatcher;
    const done = [];
    ourWorker(name, async (job) => {
      done.push(job.id);
    });
    // The worker finds the queue empty and waits on the dispatcher; each add wakes it.
    await waitFor(() => qn.health().connections.blocking === 1, { what: 'blocking socket' });
    const producer = bullQueue(name);
    for (let i = 0; i < 3; i++) {
      await sleep(100);
      await producer.add('x', {});
      await waitFor(() => done.length === i + 1, { what: `job ${i + 1}` });
    }
    const m = qn.metrics();
    const ep = m.endpoints.find((e) => e.endpoint.includes(String(redis.port)));
    const health = qn.health().endpoints.find((e) => e.endpoint === ep.endpoint);
    expect(ep.sockets).toEqual({ command: 1, blocking: 1 });
    expect(ep.sockets).toEqual(health.connections);
    expect(ep.reconnects).toBe(health.reconnects);
    expect(m.dispatcher.wakeups.marker - before.wakeups.marker).toBeGreaterThanOrEqual(3);
    const fetches = m.dispatcher.wakeToFetchSeconds.count - before.wakeToFetchSeconds.count;
    expect(fetches).toBeGreaterThanOrEqual(3);
    expect(m.dispatcher.wakeToFetchSeconds.sum).toBeGreaterThan(0);
  });

  test('lock renewals are counted with their lag', async () => {
    const name = uniqueQueue('pl');
    const before = qn.metrics().lockRenewalLagSeconds.count;
    ourWorker(name, () => sleep(900), { lockDuration: 400 });
    await bullQueue(name).add('slow', {});
    // Due every 100 ms: a 900 ms job is renewed several times.
    await waitFor(() => qn.metrics().lockRenewalLagSeconds.count - before >= 3, { timeout: 5000, what: 'renewals' });
    const lag = qn.metrics().lockRenewalLagSeconds;
    // Renewals run on a tick of lockDuration / 8: never seconds late on an idle machine.
    expect(lag.sum / lag.count).toBeLessThan(1);
  });

  test('event-loop delay: a blocked loop shows up', async () => {
    qn.metrics(); // starts the monitor
    await sleep(50);
    const until = Date.now() + 150;
    while (Date.now() < until) {
      // block the event loop
    }
    await sleep(30);
    const d = qn.metrics().eventLoopDelaySeconds;
    expect(d.samples).toBeGreaterThan(0);
    expect(d.max).toBeGreaterThanOrEqual(0.1);
    expect(d.p50).toBeLessThanOrEqual(d.max);
  });
});

describe('metricsText()', () => {
  test('valid Prometheus text with the same numbers as metrics()', async () => {
    const name = uniqueQueue('pt');
    const producer = bullQueue(name);
    ourWorker(name, async (job) => {
      if (job.name === 'bad') throw new Error('bad');
    });
    await producer.addBulk([
      { name: 'ok', data: {} },
      { name: 'bad', data: {} },
    ]);
    await waitFor(() => queueOf(name) && queueOf(name).processed === 2, { what: 'both processed' });
    const text = qn.metricsText();
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.trimEnd().split('\n');
    const families = new Map();
    const samples = [];
    for (const line of lines) {
      let m;
      if ((m = /^# HELP (queue_native_[a-z_]+) .+$/.exec(line))) families.set(m[1], { help: true });
      else if ((m = /^# TYPE (queue_native_[a-z_]+) (counter|gauge|histogram)$/.exec(line))) families.get(m[1]).type = m[2];
      else {
        m = /^(queue_native_[a-z_]+)(\{[^}]*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(line);
        expect(m).not.toBeNull();
        samples.push({ name: m[1], labels: m[2] || '', value: Number(m[3]) });
      }
    }
    for (const s of samples) {
      const base = s.name.replace(/_(bucket|sum|count)$/, '');
      const fam = families.get(s.name) || families.get(base);
      expect(fam && fam.type).toBeDefined();
      if (fam.type === 'counter') expect(s.name.endsWith('_total')).toBe(true);
    }
    const labels = `{prefix="bull",queue="${name}"}`;
    const value = (n, l) => samples.find((s) => s.name === n && s.labels === l).value;
    expect(value('queue_native_jobs_processed_total', labels)).toBe(2);
    expect(value('queue_native_jobs_failed_total', labels)).toBe(1);
    expect(value('queue_native_job_processing_seconds_count', labels)).toBe(2);
    expect(value('queue_native_job_processing_seconds_bucket', `{prefix="bull",queue="${name}",le="+Inf"}`)).toBe(2);
    expect(samples.filter((s) => s.name === 'queue_native_connections' && s.labels.includes('role="command"')).length).toBeGreaterThanOrEqual(1);
    for (const fam of ['queue_native_dispatcher_wakeups_total', 'queue_native_lock_renewal_lag_seconds', 'queue_native_bridge_backlog_jobs', 'queue_native_event_loop_delay_seconds', 'queue_native_jobs_in_flight', 'queue_native_reconnects_total']) {
      expect(families.has(fam)).toBe(true);
    }
  });
});
