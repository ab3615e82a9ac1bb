'use strict';
// The next run of a cron job scheduler, computed the way BullMQ 6's worker does: its repeat
// strategy (`settings.repeatStrategy`, or by default cron-parser over the iteration's repeat
// options `pattern`, `tz`, `startDate`, `endDate`, ..., searching from the later of `after`
// and `startDate`). The engine has no cron parser and runs no user code; it asks through the
// callback below (a ThreadsafeFunction) right before it adds the next iteration, which it then
// does in Redis on its own.

// Loaded on first use: cron-parser (with luxon) adds several MB to a process that has no
// cron scheduler.
let parser = null;
const cronParser = () => (parser ??= require('cron-parser').CronExpressionParser);

/** Epoch ms of the next match after `after`, or null when there is none (past endDate). */
function nextCronMillis(repeat, after) {
  const from = new Date(after);
  const start = repeat.startDate ? new Date(repeat.startDate) : undefined;
  const currentDate = start && start > from ? start : from;
  const interval = cronParser().parse(repeat.pattern, { ...repeat, currentDate });
  if (repeat.immediately) return Date.now();
  try {
    return interval.next().getTime();
  } catch {
    return null;
  }
}

/** BullMQ's default repeat strategy: `(millis, repeatOpts, jobName) => next ms | undefined`. */
const defaultRepeatStrategy = (millis, repeat) => nextCronMillis(repeat, millis) ?? undefined;

/**
 * The binding's callback for one worker: `{"repeat": {...}, "after": ms, "name": jobName}` in,
 * a Promise of `{"next": ms | null}` or `{"error": message}` out. `strategy` is the worker's
 * `settings.repeatStrategy` (BullMQ calls it as `(millis, repeatOpts, jobName)` and awaits
 * it), or undefined for cron-parser. Never rejects: only a string crosses back.
 */
function cronCallback(strategy) {
  return async (requestJson) => {
    let pattern;
    try {
      const { repeat, after, name } = JSON.parse(requestJson);
      pattern = repeat && repeat.pattern;
      return JSON.stringify({ next: await nextRun(strategy, after, repeat, name) });
    } catch (err) {
      const why = err && err.message !== undefined ? err.message : String(err);
      return JSON.stringify({
        error: strategy ? `settings.repeatStrategy failed: ${why}` : `invalid cron pattern ${JSON.stringify(pattern)}: ${why}`,
      });
    }
  };
}

/**
 * The next run as BullMQ computes it: `strategy` (or cron-parser's) called as
 * `(millis, repeatOpts, jobName)` and awaited, its answer read by checkNext. What the strategy
 * throws comes out as it is; an answer that is not a time is a BadRepeatAnswer.
 */
async function nextRun(strategy, millis, repeat, name) {
  return checkNext(await (strategy || defaultRepeatStrategy)(millis, repeat, name));
}

/** A repeat strategy's answer that is not a time (see checkNext). */
class BadRepeatAnswer extends TypeError {}

/**
 * A repeat strategy's answer as the engine takes it: epoch ms (the engine raises anything
 * before the search start to it, as BullMQ does), or null for "no next iteration". BullMQ
 * compares the answer with `now` before testing it, so `undefined` (and NaN) schedule
 * nothing while `null`, `false` and `0` schedule the next run now. Anything else but a finite
 * number (or a Date) is an error rather than a job id such as `repeat:id:abc`.
 */
function checkNext(next) {
  if (next === undefined || Number.isNaN(next)) return null;
  if (next === null || next === false) return 0;
  const ms = next instanceof Date ? next.getTime() : next;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new BadRepeatAnswer(`must return a number of ms since the epoch (or undefined), got ${typeof next}`);
  }
  return Math.max(0, ms);
}

module.exports = { nextCronMillis, cronCallback, nextRun, BadRepeatAnswer };
