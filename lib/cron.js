'use strict';
// The next run of a cron job scheduler, computed the way BullMQ 6's worker does (its default
// repeat strategy): cron-parser over the iteration's repeat options (`pattern`, `tz`,
// `startDate`, `endDate`, ...), searching from the later of `after` and `startDate`. The engine
// has no cron parser; it asks through the callback below (a ThreadsafeFunction) right before
// it adds the next iteration, which it then does in Redis on its own.

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

/**
 * The binding's callback: `{"repeat": {...}, "after": ms}` in, `{"next": ms | null}` or
 * `{"error": message}` out. Never throws (nothing but a string crosses back).
 */
function cronCallback(requestJson) {
  let pattern;
  try {
    const { repeat, after } = JSON.parse(requestJson);
    pattern = repeat && repeat.pattern;
    const next = nextCronMillis(repeat, after);
    return JSON.stringify({ next: Number.isFinite(next) ? next : null });
  } catch (err) {
    return JSON.stringify({ error: `invalid cron pattern ${JSON.stringify(pattern)}: ${err && err.message}` });
  }
}

module.exports = { nextCronMillis, cronCallback };
