--[[
  pause: pause or resume a queue globally, the BullMQ 6 way.

  Pause sets `meta.paused` and deletes the marker, so blocked workers find nothing to wake
  them and fetching scripts take nothing while the flag is set; jobs stay in `wait`.
  Resume removes the flag, moves the jobs of a legacy v5 `paused` list back into `wait`
  (a RENAME when `wait` is empty, else at most ARGV[3] per call, oldest last so that they
  still run first; the caller repeats until 0 remain), then re-adds the base marker when
  anything is waiting, else the delay marker for the earliest delayed job.

  KEYS
    1 wait          list
    2 paused        list (legacy v5 layout)
    3 meta          hash
    4 prioritized   zset
    5 events        stream
    6 delayed       zset
    7 marker        zset

  ARGV
    1 action        "paused" | "resumed" (also the event written)
    2 emit          "1" writes the `paused` / `resumed` event, "0" does not (resume repeats)
    3 batch         resume: most legacy `paused` jobs moved per call (e.g. 7000)

  Returns
    the number of jobs still in the legacy `paused` list (always 0 for a pause).

  Error codes: none.
]]
local rcall = redis.call
local waitKey, pausedKey, metaKey, markerKey = KEYS[1], KEYS[2], KEYS[3], KEYS[7]
local remaining = 0

if ARGV[1] == "paused" then
  rcall("HSET", metaKey, "paused", 1)
  rcall("DEL", markerKey)
else
  rcall("HDEL", metaKey, "paused")
  if rcall("EXISTS", pausedKey) == 1 then
    if rcall("EXISTS", waitKey) == 0 then
      rcall("RENAME", pausedKey, waitKey)
    else
      -- Left is newest: the batch is the newest legacy jobs, appended on the right end
      -- (the end workers take from) in order; later batches, older, land further right.
      local batch = tonumber(ARGV[3]) or 7000
      local ids = rcall("LRANGE", pausedKey, 0, batch - 1)
      for from = 1, #ids, 1000 do
        rcall("RPUSH", waitKey, unpack(ids, from, math.min(from + 999, #ids)))
      end
      rcall("LTRIM", pausedKey, #ids, -1)
      remaining = rcall("LLEN", pausedKey)
    end
  end
  if rcall("LLEN", waitKey) + rcall("ZCARD", KEYS[4]) > 0 then
    rcall("ZADD", markerKey, 0, "0")
  else
    local first = rcall("ZRANGE", KEYS[6], 0, 0, "WITHSCORES")
    if first[2] then
      rcall("ZADD", markerKey, tonumber(first[2]) / 4096, "1")
    end
  end
end

if ARGV[2] == "1" then
  rcall("XADD", KEYS[5], "*", "event", ARGV[1])
end
return remaining
