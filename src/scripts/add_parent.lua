--[[
  add_parent: store a flow node that has children (FlowProducer.add / addBulk), as BullMQ's
  addParentJob does: the job hash (same fields, same order, as add_job.lua writes them), event
  `added`, then the job waits in `waiting-children` (score = its timestamp, event
  `waiting-children`) until its children are added; it is itself a pending dependency of its
  own parent, if it has one.

  A custom id that already exists is left as it is (event `duplicated`) and, with a parent,
  linked to it as a pending dependency.

  KEYS
    1 meta               hash
    2 id                 string (job id counter)
    3 waiting-children   zset
    4 events             stream

  ARGV
    1 P             "<prefix>:<queue>:"
    2 custom id     "" = take the counter value
    3 name
    4 timestamp     ms
    5 data          JSON text, stored as is
    6 opts          msgpack map of the stored option names, re-encoded with cjson for `opts`
    7 parent key    "" = no parent
    8 parent        msgpack map {id, queueKey[, fpof, rdof, idof, cpof]} or ""

  Returns the job id.

  Error codes
    -5 the parent job does not exist.
]]
--@include rcall, read_meta, emit, job_fields

local P, customId, name, timestamp = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local parentKey, parentJson = ARGV[7], nil
if parentKey ~= "" then
  if rcall("EXISTS", parentKey) ~= 1 then
    return -5
  end
  parentJson = cjson.encode(cmsgpack.unpack(ARGV[8]))
else
  parentKey = nil
end

local counter = rcall("INCR", KEYS[2])
local q = readMeta({meta = KEYS[1], events = KEYS[4]}, true)
local jobId = customId
if jobId == "" then
  jobId = counter .. ""
end
local jobKey = P .. jobId
if customId ~= "" and rcall("EXISTS", jobKey) == 1 then
  if parentKey then
    rcall("SADD", parentKey .. ":dependencies", jobKey)
    rcall("HMSET", jobKey, "parentKey", parentKey, "parent", parentJson)
  end
  emit(q, "event", "duplicated", "jobId", jobId)
  return jobId
end

local opts = cmsgpack.unpack(ARGV[6])
local fields = jobFields(name, ARGV[5], opts, timestamp, parentKey, parentJson)
rcall("HMSET", jobKey, unpack(fields))
rcall("XADD", q.events, "*", "event", "added", "jobId", jobId, "name", name)
rcall("ZADD", KEYS[3], timestamp, jobId)
emit(q, "event", "waiting-children", "jobId", jobId)
if parentKey then
  rcall("SADD", parentKey .. ":dependencies", jobKey)
end
return jobId
