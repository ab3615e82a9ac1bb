-- emit (+ trimEvents): appends an event to the events stream, capped the way BullMQ's script would.
--@include rcall
-- helper: emit
-- BullMQ caps most events inside XADD (`MAXLEN ~ cap`); its worker scripts (moveToActive,
-- moveToFinished, stalled check, waiting-children, a released parent) trim once before
-- adding, or not at all, and add uncapped, so that a cap of 0 still leaves their own events
-- for QueueEvents. Scripts doing the same set q.plainEvents (trimEvents does it too).
local function emit(q, ...)
  if q.plainEvents then
    rcall("XADD", q.events, "*", ...)
  else
    rcall("XADD", q.events, "MAXLEN", "~", q.evCap, "*", ...)
  end
end

-- Trims the stream to the cap before this script adds its events (uncapped from then on).
local function trimEvents(q)
  rcall("XTRIM", q.events, "MAXLEN", "~", q.evCap)
  q.plainEvents = true
end
-- end helper
