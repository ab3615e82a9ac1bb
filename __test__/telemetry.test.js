'use strict';
// BullMQ's `telemetry` option with the real bullmq-otel and the OpenTelemetry SDK (in-memory
// exporter): a job added by BullMQ's Queue and processed by our Worker is one trace, and the
// other way round; our producer spans and stored `tm` are BullMQ's.
const api = require('@opentelemetry/api');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
const { BullMQOtel } = require('bullmq-otel');
const qn = require('..');
const { startRedis, waitFor } = require('./helpers/redis-server');
const { bullmq, uniqueQueue, connectionFor } = require('./helpers/bull');

let redis;
let inspect;
let exporter;
let telemetry;
let reader;
const closers = [];

// Pull-style reader: the test collects when it wants.
class PullReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

beforeAll(async () => {
  redis = await startRedis();
  inspect = redis.client();
  qn.configure({ port: redis.port });
  exporter = new InMemorySpanExporter();
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  reader = new PullReader();
  api.metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  telemetry = new BullMQOtel({ tracerName: 'queue-native-test', meterName: 'queue-native-test', enableMetrics: true });
});

beforeEach(() => exporter.reset());

afterEach(async () => {
  while (closers.length) await closers.pop()();
});

afterAll(async () => {
  await qn.shutdown();
  await redis.stop();
  api.trace.disable();
  api.context.disable();
  api.propagation.disable();
  api.metrics.disable();
});

function track(x) {
  x.on('error', () => {});
  closers.push(() => x.close());
  return x;
}

const bullQueue = (name, opts = {}) => track(new bullmq[6].Queue(name, { connection: connectionFor(redis), telemetry, ...opts }));
const ourQueue = (name, opts = {}) => track(new qn.Queue(name, { telemetry, ...opts }));
const bullWorker = (name, fn, opts = {}) => track(new bullmq[6].Worker(name, fn, { connection: connectionFor(redis), telemetry, ...opts }));
const ourWorker = (name, fn, opts = {}) => track(new qn.Worker(name, fn, { telemetry, ...opts }));

const spans = () => exporter.getFinishedSpans();
const named = (name) => spans().filter((s) => s.name === name);
const parentOf = (s) => (s.parentSpanContext ? s.parentSpanContext.spanId : s.parentSpanId);

async function storedOpts(name, id) {
  return JSON.parse(await inspect.hget(`bull:${name}:${id}`, 'opts'));
}

test("a job added by BullMQ's Queue and processed by our Worker is one trace", async () => {
  const name = uniqueQueue('tb');
  const queue = bullQueue(name);
  const inner = [];
  ourWorker(name, async (job) => {
    // A span the processor opens is a child of the consumer span.
    await api.trace.getTracer('app').startActiveSpan('inside', async (span) => {
      inner.push(job.id);
      span.end();
    });
    return { ok: job.data.n };
  }, { name: 'w1' });
  const job = await queue.add('email', { n: 1 });
  await waitFor(() => named(`process ${name}`).length === 1, { what: 'consumer span' });
  const [producer] = named(`add ${name}.email`);
  const [consumer] = named(`process ${name}`);
  const [child] = named('inside');
  expect(producer.kind).toBe(api.SpanKind.PRODUCER);
  expect(consumer.kind).toBe(api.SpanKind.CONSUMER);
  const trace = producer.spanContext().traceId;
  expect(consumer.spanContext().traceId).toBe(trace);
  expect(parentOf(consumer)).toBe(producer.spanContext().spanId);
  expect(child.spanContext().traceId).toBe(trace);
  expect(parentOf(child)).toBe(consumer.spanContext().spanId);
  expect(consumer.attributes).toMatchObject({
    'bullmq.queue.name': name,
    'bullmq.queue.operation': 'process',
    'bullmq.worker.name': 'w1',
    'bullmq.job.id': job.id,
    'bullmq.job.name': 'email',
    'bullmq.job.attempts.made': 1,
  });
  expect(typeof consumer.attributes['bullmq.worker.id']).toBe('string');
  expect(consumer.attributes['bullmq.job.processed.timestamp']).toBeGreaterThan(0);
  expect(consumer.events.map((e) => [e.name, e.attributes])).toEqual([['job completed', { 'bullmq.job.result': '{"ok":1}' }]]);
});

test('a failing job: the consumer span carries the failure event, one span per attempt, all in one trace', async () => {
  const name = uniqueQueue('tf');
  const queue = bullQueue(name);
  ourWorker(name, async () => {
    throw new Error('no luck');
  });
  await queue.add('x', {}, { attempts: 2 });
  await waitFor(() => named(`process ${name}`).length === 2, { what: 'two attempts' });
  const [producer] = named(`add ${name}.x`);
  const attempts = named(`process ${name}`);
  for (const [i, s] of attempts.entries()) {
    expect(s.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(s.events.map((e) => [e.name, e.attributes])).toEqual([['job failed', { 'bullmq.job.failed.reason': 'no luck' }]]);
    expect(s.attributes['bullmq.job.attempts.made']).toBe(i + 1);
  }
});

test("our Queue's producer spans are BullMQ's, the stored tm continues into BullMQ's Worker", async () => {
  const theirsName = uniqueQueue('tpb');
  const oursName = uniqueQueue('tpo');
  const defaults = { defaultJobOptions: { attempts: 2, removeOnComplete: 5 } };
  await bullQueue(theirsName, defaults).add('report', { n: 1 }, { jobId: 'r1', priority: 3 });
  const ours = await ourQueue(oursName, defaults).add('report', { n: 1 }, { jobId: 'r1', priority: 3 });
  const [theirSpan] = named(`add ${theirsName}.report`);
  const [ourSpan] = named(`add ${oursName}.report`);
  expect(ourSpan.kind).toBe(theirSpan.kind);
  const sameQueue = (attrs, q) => ({ ...attrs, 'bullmq.queue.name': attrs['bullmq.queue.name'] === q ? '<q>' : attrs['bullmq.queue.name'] });
  expect(sameQueue(ourSpan.attributes, oursName)).toEqual(sameQueue(theirSpan.attributes, theirsName));
  // Stored opts: the same keys in the same order; tm holds each producer span's context.
  const theirOpts = await storedOpts(theirsName, 'r1');
  const ourOpts = await storedOpts(oursName, 'r1');
  expect(Object.keys(ourOpts)).toEqual(Object.keys(theirOpts));
  expect({ ...ourOpts, tm: '<tm>' }).toEqual({ ...theirOpts, tm: '<tm>' });
  expect(JSON.parse(ourOpts.tm).traceparent).toContain(ourSpan.spanContext().traceId);
  expect(ours.opts.telemetry).toEqual({ metadata: ourOpts.tm });

  bullWorker(oursName, async () => 'done');
  await waitFor(() => named(`process ${oursName}`).length === 1, { what: "BullMQ's consumer span" });
  const [consumer] = named(`process ${oursName}`);
  expect(consumer.spanContext().traceId).toBe(ourSpan.spanContext().traceId);
  expect(parentOf(consumer)).toBe(ourSpan.spanContext().spanId);
});

test("addBulk: BullMQ's span and stored opts, one trace to our worker's spans", async () => {
  const theirsName = uniqueQueue('tbb');
  const oursName = uniqueQueue('tbo');
  const jobs = [
    { name: 'a', data: { n: 1 }, opts: { jobId: 'a1' } },
    { name: 'b', data: { n: 2 }, opts: { delay: 10, telemetry: { omitContext: true } } },
    { name: 'c', data: { n: 3 } },
  ];
  const theirJobs = await bullQueue(theirsName, { defaultJobOptions: { attempts: 1 } }).addBulk(jobs);
  const ourJobs = await ourQueue(oursName, { defaultJobOptions: { attempts: 1 } }).addBulk(jobs);
  const [theirSpan] = named(`addBulk ${theirsName}`);
  const [ourSpan] = named(`addBulk ${oursName}`);
  expect(ourSpan.attributes['bullmq.job.bulk.names']).toEqual(['a', 'b', 'c']);
  expect(ourSpan.attributes['bullmq.job.bulk.count']).toBe(3);
  expect(ourSpan.attributes['bullmq.queue.operation']).toBe(theirSpan.attributes['bullmq.queue.operation']);
  for (let i = 0; i < jobs.length; i++) {
    const theirOpts = await storedOpts(theirsName, theirJobs[i].id);
    const ourOpts = await storedOpts(oursName, ourJobs[i].id);
    expect(Object.keys(ourOpts)).toEqual(Object.keys(theirOpts));
    expect({ ...ourOpts, tm: ourOpts.tm && '<tm>' }).toEqual({ ...theirOpts, tm: theirOpts.tm && '<tm>' });
  }
  ourWorker(oursName, async () => 1);
  await waitFor(() => named(`process ${oursName}`).length === 3, { what: 'three consumer spans' });
  const inTrace = named(`process ${oursName}`).filter((s) => s.spanContext().traceId === ourSpan.spanContext().traceId);
  // Job b omitted the context: its consumer span starts a trace of its own.
  expect(inTrace.map((s) => s.attributes['bullmq.job.name']).sort()).toEqual(['a', 'c']);
});

test("our consumer span is BullMQ's: name, kind, attribute names, events", async () => {
  const theirsName = uniqueQueue('tcb');
  const oursName = uniqueQueue('tco');
  for (const [name, make] of [[theirsName, bullWorker], [oursName, ourWorker]]) {
    await bullQueue(name).addBulk([
      { name: 'ok', data: {}, opts: { jobId: 'ok1' } },
      { name: 'bad', data: {}, opts: { jobId: 'bad1' } },
    ]);
    make(
      name,
      async (job) => {
        if (job.name === 'bad') throw new Error('broken');
        return [1, 2];
      },
      { name: 'same-worker' },
    );
  }
  await waitFor(() => named(`process ${theirsName}`).length === 2 && named(`process ${oursName}`).length === 2, {
    what: 'consumer spans of both workers',
  });
  const shape = (name) =>
    named(`process ${name}`)
      .map((s) => ({
        kind: s.kind,
        job: s.attributes['bullmq.job.name'],
        attributes: Object.keys(s.attributes).sort(),
        attempts: s.attributes['bullmq.job.attempts.made'],
        events: s.events.map((e) => [e.name, e.attributes]),
        status: s.status.code,
      }))
      .sort((a, b) => a.job.localeCompare(b.job));
  expect(shape(oursName)).toEqual(shape(theirsName));
});

test("with a meter: BullMQ's job counters and duration histogram, as BullMQ's worker records them", async () => {
  const theirsName = uniqueQueue('tmb');
  const oursName = uniqueQueue('tmo');
  const jobs = [
    { name: 'ok', data: {}, opts: {} },
    { name: 'bad', data: {}, opts: { attempts: 1 } },
    { name: 'flaky', data: {}, opts: { attempts: 2 } },
    { name: 'slow', data: {}, opts: { attempts: 2, backoff: { type: 'fixed', delay: 30 } } },
  ];
  const processor = async (job) => {
    if (job.name === 'ok') return 1;
    if (job.attemptsMade === 0 || job.name === 'bad') throw new Error('once');
    return 2;
  };
  for (const [name, make] of [[theirsName, bullWorker], [oursName, ourWorker]]) {
    await bullQueue(name, { telemetry: undefined }).addBulk(jobs);
    make(name, processor);
  }
  const collect = async () => {
    const { resourceMetrics } = await reader.collect();
    const points = {};
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        for (const p of metric.dataPoints) {
          const queue = p.attributes['bullmq.queue.name'];
          const key = `${metric.descriptor.name}|${p.attributes['bullmq.job.name']}|${p.attributes['bullmq.job.state']}`;
          points[queue] = points[queue] || {};
          points[queue][key] = typeof p.value === 'number' ? p.value : p.value.count;
        }
      }
    }
    return points;
  };
  await waitFor(
    async () => {
      const p = await collect();
      const done = (q) => p[q] && Object.keys(p[q]).filter((k) => k.startsWith('bullmq.jobs.completed')).length === 3;
      return done(theirsName) && done(oursName);
    },
    { timeout: 10000, what: 'three completed jobs on both queues' },
  );
  const p = await collect();
  expect(p[oursName]).toEqual(p[theirsName]);
  expect(p[oursName]['bullmq.jobs.failed|bad|failed']).toBe(1);
  expect(p[oursName]['bullmq.jobs.retried|flaky|retried']).toBe(1);
  expect(p[oursName]['bullmq.jobs.delayed|slow|delayed']).toBe(1);
});

test('a telemetry option without tracer / contextManager is refused', () => {
  expect(() => new qn.Worker(uniqueQueue('tx'), async () => {}, { telemetry: { tracer: {} }, autorun: false })).toThrow(
    expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
  );
});
