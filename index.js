'use strict';
// @anant/queue-native: the public entry point. A small hand-written facade over the
// generated binding (binding.js): see lib/ for each part.

const connection = require('./lib/connection');
const { QueueNativeError, UnrecoverableError, DelayedError, WaitingChildrenError, RateLimitError } = require('./lib/errors');
const { Worker } = require('./lib/worker');
const { Queue, QueueJob } = require('./lib/queue');
const { Job } = require('./lib/job');
const { QueueEvents, QueueEventsProducer } = require('./lib/queue-events');
const { FlowProducer } = require('./lib/flow-producer');
const surface = require('./lib/surface');

surface.install({ Job, Queue });
require('./lib/manual').install({ Worker, Queue, QueueJob, Job });
const { metrics, metricsText } = require('./lib/metrics');
const { installRawClient } = require('./lib/raw-client');

for (const Class of [Queue, Worker, QueueEvents, QueueEventsProducer, FlowProducer]) installRawClient(Class);

module.exports = {
  configure: connection.configure,
  connect: connection.connect,
  health: connection.health,
  shutdown: connection.shutdown,
  onConnection: connection.onConnection,
  offConnection: connection.offConnection,
  command: connection.command,
  metrics,
  metricsText,
  Worker,
  Queue,
  Job,
  QueueEvents,
  QueueEventsProducer,
  FlowProducer,
  QueueNativeError,
  UnrecoverableError,
  DelayedError,
  WaitingChildrenError,
  RateLimitError,
};
