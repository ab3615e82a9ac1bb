-- emit: appends an event to the events stream, trimmed to the events cap.
--@include rcall
-- helper: emit
local function emit(q, ...)
  rcall("XADD", q.events, "MAXLEN", "~", q.evCap, "*", ...)
end
-- end helper
