--[[
  activate: take up to N waiting jobs and make them active (batched fetch).

  Before taking anything, delayed jobs that are due are promoted to waiting. Jobs are
  taken from the right end of `wait` first, then from `prioritized` (lowest score first).
  Every taken job is locked with its own token, gets `processedOn`/`pb`/`ats` and an
  `active` event; the base marker is re-added afterwards so the next blocked worker wakes.
  Its events (`active`, promoted `waiting`) are added uncapped, as BullMQ's moveToActive.

  KEYS
    1 wait          list
    2 active        list
    3 prioritized   zset
    4 events        stream
    5 stalled       set   (unused here; kept so every fetching script has the same keys)
    6 limiter       string (rate-limit window counter)
    7 delayed       zset
    8 paused        list  (v5 layout only)
    9 meta          hash
   10 pc            string (priority counter)
   11 marker        zset

  ARGV
    1 P             "<prefix>:<queue>:"
    2 now           ms
    3 lockDuration  ms
    4 limiter max   "0" = the worker has no limiter
    5 limiter duration ms
    6 worker name   "" = none (else stored as `pb`)
    7..             one lock token per job wanted ("0" = take without a lock)

  Returns
    { rateLimitTtl, nextDelayedDue, id1, {field, value, ...}, id2, {...}, ... }
    rateLimitTtl   > 0 only when nothing was taken because the rate limit is reached
    nextDelayedDue floor(lowest delayed score / 4096) when nothing was taken, else 0

  Error codes: none.
]]
--@include rcall, read_meta, fetch

local q = readMeta({
  prefix = ARGV[1], wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3],
  events = KEYS[4], limiter = KEYS[6], delayed = KEYS[7], pausedList = KEYS[8],
  meta = KEYS[9], pc = KEYS[10], marker = KEYS[11]
}, false)
-- As BullMQ's moveToActive: `active` and promoted `waiting` are added uncapped.
q.plainEvents = true

local tokens = {}
for i = 7, #ARGV do
  tokens[#tokens + 1] = ARGV[i]
end

local reply = fetch(q, ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]),
  ARGV[6], tokens)
return reply
