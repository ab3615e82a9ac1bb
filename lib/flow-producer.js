'use strict';
// FlowProducer: BullMQ's trees of jobs (a parent waits in waiting-children until its children
// are done), on the process-wide command connection. The tree is flattened here in BullMQ's
// insertion order (breadth first, over every tree of an addBulk), each node gets its id and
// options as BullMQ's FlowProducer gives them, and the engine (src/engine/flow.rs) stores them.

const { EventEmitter } = require('events');
const { randomUUID } = require('crypto');
const binding = require('../binding.js');
const { QueueNativeError, callAsync, invalid } = require('./errors');
const connection = require('./connection');
const { Queue, QueueJob, asConstructed } = require('./queue');

function checkNode(node, at) {
  if (node === null || typeof node !== 'object') throw invalid(at, 'must be a flow node { name, queueName, data?, opts?, children? }');
  if (typeof node.name !== 'string') throw invalid(`${at}.name`, 'must be a string');
  if (typeof node.queueName !== 'string' || node.queueName === '') throw invalid(`${at}.queueName`, 'must be a non-empty string');
  if (node.opts !== undefined && node.opts !== null && (typeof node.opts !== 'object' || Array.isArray(node.opts))) {
    throw invalid(`${at}.opts`, 'must be an object');
  }
  if (node.children !== undefined && !Array.isArray(node.children)) throw invalid(`${at}.children`, 'must be an array');
  const children = node.children || [];
  if (children.length > 0) {
    if (node.opts && node.opts.deduplication) {
      // BullMQ's own message.
      throw new QueueNativeError('ERR_INVALID_OPTION', 'Deduplication options cannot be used on flow nodes with children');
    }
    children.forEach((c, i) => checkNode(c, `${at}.children[${i}]`));
  }
}

class FlowProducer extends EventEmitter {
  constructor(opts = {}) {
    super();
    if (opts === null || typeof opts !== 'object') throw invalid('opts', 'must be an object');
    this.opts = opts;
    this.prefix = opts.prefix ?? 'bull';
    this._connectionJson = connection.serializeConnection(opts.connection);
    this._queues = new Map();
    this.closing = undefined;
  }

  waitUntilReady() {
    return connection.connect(this.opts.connection);
  }

  // A Queue of ours per (prefix, queue) for the job objects of the trees; closed with us.
  _queue(prefix, name) {
    const key = `${prefix}\u0000${name}`;
    let q = this._queues.get(key);
    if (!q) {
      // Internal: BullMQ's FlowProducer writes no queue meta, so neither does this Queue.
      q = new Queue(name, { prefix, connection: this.opts.connection, skipMetasUpdate: true });
      q.on('error', (err) => {
        if (this.listenerCount('error') > 0) this.emit('error', err);
      });
      this._queues.set(key, q);
    }
    return q;
  }

  /** Add one tree; resolves with { job, children? } (children in the given order). */
  async add(flow, opts) {
    if (this.closing) return undefined;
    checkNode(flow, 'flow');
    const [tree] = await this._addTrees([flow], opts && opts.queuesOptions);
    return tree;
  }

  /** Add several trees in one go; resolves with their job trees. */
  async addBulk(flows) {
    if (this.closing) return undefined;
    if (!Array.isArray(flows)) throw invalid('flows', 'must be an array of flow nodes');
    flows.forEach((f, i) => checkNode(f, `flows[${i}]`));
    return this._addTrees(flows, undefined);
  }

  async _addTrees(roots, queuesOptions) {
    // Breadth first over the forest: BullMQ pushes a node's entry when it reaches it, and
    // reaches the children of a level only after every node of that level.
    const entries = [];
    const trees = [];
    let level = roots.map((node) => {
      const parentOpts = node.opts && 'parent' in node.opts ? node.opts.parent : undefined;
      const tree = {};
      trees.push(tree);
      return { node, parentOpts, tree };
    });
    while (level.length) {
      const next = [];
      for (const { node, parentOpts, tree } of level) {
        const prefix = node.prefix || this.prefix;
        const defaults = (queuesOptions && queuesOptions[node.queueName] && queuesOptions[node.queueName].defaultJobOptions) || {};
        const jobId = (node.opts && node.opts.jobId) || randomUUID();
        const merged = Object.assign({}, defaults, node.opts, { parent: parentOpts });
        let dataJson;
        let optsJson;
        try {
          dataJson = JSON.stringify(node.data === undefined ? {} : node.data);
          optsJson = JSON.stringify(merged);
        } catch (err) {
          throw invalid(`${node.queueName}/${node.name}`, `is not serialisable (${err.message})`);
        }
        const children = node.children || [];
        entries.push({
          prefix,
          queue: node.queueName,
          name: node.name,
          data: dataJson,
          opts: optsJson,
          jobId,
          hasChildren: children.length > 0,
          tree,
          node,
          merged,
        });
        if (children.length > 0) {
          tree.children = children.map(() => ({}));
          children.forEach((child, i) => {
            next.push({ node: child, parentOpts: { id: jobId, queue: `${prefix}:${node.queueName}` }, tree: tree.children[i] });
          });
        }
      }
      level = next;
    }
    const results = await callAsync(() =>
      binding.addFlow(
        this._connectionJson,
        entries.map(({ tree, node, ...e }) => e),
      ),
    );
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      const e = entries[i];
      if (r.code !== undefined) {
        const parentKey = e.node.opts && e.node.opts.parent ? `${e.node.opts.parent.queue}:${e.node.opts.parent.id}` : undefined;
        const message =
          r.code === -5
            ? `Missing key for parent job ${parentKey}. addJob`
            : r.code === -7
              ? `The parent job ${parentKey} cannot be replaced. addJob`
              : `Unknown code ${r.code} error for addJob`;
        throw new QueueNativeError(r.code === -5 ? 'ERR_JOB_NOT_FOUND' : 'ERR_JOB_STATE', message, { bullmqCode: r.code });
      }
      const queue = this._queue(e.prefix, e.queue);
      const job = new QueueJob(queue, {
        id: r.id,
        created: true,
        fields: {
          name: e.name,
          opts: r.opts,
          timestamp: String(r.timestamp),
          delay: String(r.delay),
          priority: String(r.priority),
        },
      });
      // Keyed as BullMQ's tree jobs: its node options end with `parent` and `telemetry`.
      const telemetry = e.node.opts ? e.node.opts.telemetry : undefined;
      job.opts = asConstructed(JSON.parse(r.opts), { ...e.merged, telemetry });
      // As BullMQ's tree jobs: the node's data as given, delay only when set.
      job.data = e.node.data;
      job.delay = job.opts.delay;
      const parent = JSON.parse(e.opts).parent;
      if (parent) {
        job.parentKey = `${parent.queue}:${parent.id}`;
        job.parent = { id: parent.id, queueKey: parent.queue };
      }
      e.tree.job = job;
    }
    return trees;
  }

  /**
   * The tree under job `id` of `queueName`: { job, children? }, `depth` levels deep
   * (default 10) with at most `maxChildren` (default 20) children of each kind per node.
   */
  async getFlow(opts) {
    if (this.closing) return undefined;
    const o = { depth: 10, maxChildren: 20, prefix: this.prefix, ...opts };
    return this._getNode(o);
  }

  async _getNode(node) {
    const queue = this._queue(node.prefix, node.queueName);
    const job = await queue.getJob(node.id);
    if (!job) return undefined;
    const page = { count: node.maxChildren };
    const { processed = {}, unprocessed = [], failed = [], ignored = {} } = await job.getDependencies({
      failed: page,
      processed: page,
      unprocessed: page,
      ignored: page,
    });
    const keys = [...Object.keys(processed), ...unprocessed, ...failed, ...Object.keys(ignored)];
    const depth = node.depth - 1;
    if (keys.length > 0 && depth) {
      const children = await Promise.all(
        keys.map((key) => {
          const last = key.lastIndexOf(':');
          const prev = key.lastIndexOf(':', last - 1);
          return this._getNode({
            id: key.slice(last + 1),
            queueName: key.slice(prev + 1, last),
            prefix: key.slice(0, prev),
            depth,
            maxChildren: node.maxChildren,
          });
        }),
      );
      return { job, children };
    }
    return { job };
  }

  /** Idempotent; the shared connections stay up. */
  close() {
    if (!this.closing) {
      this.closing = Promise.all([...this._queues.values()].map((q) => q.close())).then(() => {
        this._queues.clear();
      });
    }
    return this.closing;
  }

  disconnect() {
    return this.close();
  }
}

module.exports = { FlowProducer };
