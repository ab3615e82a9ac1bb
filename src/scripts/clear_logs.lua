--[[
  clear_logs: job.clearLogs(keepLogs): delete a job's log lines, or keep only the newest
  `keep` of them.

  KEYS: none (the logs key is P .. jobId .. ":logs").

  ARGV
    1 P       "<prefix>:<queue>:"
    2 jobId
    3 keep    number of newest lines to keep; "" or "0" deletes them all

  Returns 0.

  Error codes: none.
]]
local rcall = redis.call
local logsKey = ARGV[1] .. ARGV[2] .. ":logs"
local keep = tonumber(ARGV[3]) or 0
if keep > 0 then
  rcall("LTRIM", logsKey, -keep, -1)
else
  rcall("DEL", logsKey)
end
return 0
