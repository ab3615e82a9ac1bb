-- rcall: the local alias of redis.call that every include and every script using includes calls.
local rcall = redis.call
