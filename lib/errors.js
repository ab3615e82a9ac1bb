'use strict';
// Error classes and the one place that turns binding errors ("CODE: message") into
// QueueNativeErrors.

/** Every error the library raises: `code` is stable and documented in the README. */
class QueueNativeError extends Error {
  constructor(code, message, extra) {
    super(message);
    this.name = 'QueueNativeError';
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

/** Thrown by a processor: fail the job now, no retries (BullMQ's class of the same name). */
class UnrecoverableError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UnrecoverableError';
  }
}

/** Thrown by a processor after it moved its job with `job.moveToDelayed()`. */
class DelayedError extends Error {
  constructor(message = 'bullmq:movedToDelayed') {
    super(message);
    this.name = 'DelayedError';
  }
}

/** Thrown by a processor after `job.moveToWaitingChildren()` resolved true. */
class WaitingChildrenError extends Error {
  constructor(message = 'bullmq:movedToWaitingChildren') {
    super(message);
    this.name = 'WaitingChildrenError';
  }
}

/** BullMQ's message for a manual rate limit; an error with it (or this name) means one. */
const RATE_LIMIT_MESSAGE = 'bullmq:rateLimitExceeded';

/**
 * Thrown by a processor after `worker.rateLimit(ms)`: the job goes back to waiting without
 * counting the attempt, and the worker fetches nothing until the limit ends.
 */
class RateLimitError extends Error {
  constructor(message = RATE_LIMIT_MESSAGE) {
    super(message);
    this.name = 'RateLimitError';
  }
}

const CODED = /^(ERR_[A-Z0-9_]+): ([\s\S]*)$/;

// The binding reports engine errors as "CODE: message"; this is the one place that turns
// them into QueueNativeErrors.
function fromBinding(err) {
  if (err instanceof QueueNativeError) return err;
  const match = err && typeof err.message === 'string' ? CODED.exec(err.message) : null;
  return match ? new QueueNativeError(match[1], match[2]) : err;
}

function callSync(fn) {
  try {
    return fn();
  } catch (err) {
    throw fromBinding(err);
  }
}

async function callAsync(fn) {
  try {
    return await fn();
  } catch (err) {
    throw fromBinding(err);
  }
}

function invalid(option, reason) {
  return new QueueNativeError('ERR_INVALID_OPTION', `invalid option \`${option}\`: ${reason}`);
}

module.exports = {
  QueueNativeError,
  UnrecoverableError,
  DelayedError,
  WaitingChildrenError,
  RateLimitError,
  RATE_LIMIT_MESSAGE,
  fromBinding,
  callSync,
  callAsync,
  invalid,
};
