-- everyNext: the next run of an `every` scheduler after its previous one.
-- helper: everyNext
-- The next run of an `every` scheduler after prev: prev + every, or, when that is already
-- past, the next slot aligned to the offset.
local function everyNext(prev, every, now, offset)
  offset = tonumber(offset) or 0
  local nextMillis = prev + every
  if nextMillis < now then
    local aligned = math.floor(now / every) * every + offset
    if aligned <= now then
      nextMillis = aligned + every
    else
      nextMillis = aligned
    end
  end
  return math.floor(nextMillis)
end
-- end helper
