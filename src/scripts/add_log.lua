--[[
  add_log: append a line to a job's log, keeping only the newest keepLogs lines if asked.

  KEYS
    1 job           hash (P .. jobId)
    2 logs          list (P .. jobId .. ":logs")

  ARGV
    1 jobId
    2 line
    3 keepLogs      number of lines to keep, or "" to keep all

  Returns the number of log lines now stored.

  Error codes
    -1 job missing.
]]
local rcall = redis.call
-- The same opening as progress.lua (a write to a job that must exist).
if rcall("EXISTS", KEYS[1]) == 0 then
  return -1
end
local count = rcall("RPUSH", KEYS[2], ARGV[2])
local keep = tonumber(ARGV[3])
if keep then
  if keep <= 0 then
    rcall("DEL", KEYS[2])
    return 0
  end
  rcall("LTRIM", KEYS[2], -keep, -1)
  return math.min(keep, count)
end
return count
