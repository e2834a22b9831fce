"""The two Lua scripts of the Redis backend: admit and settle, each one atomic EVALSHA.

Kept as strings beside the code that builds their KEYS and ARGV (no package data to ship). Times are
Redis's own (``TIME``), in milliseconds: one clock for every gateway instance, whatever their clocks say.

Keys of one check (one key's or one team's limits), ``<prefix>`` before each:
  ``spend:<counter>:<period>``  integer nano-dollars spent in the budget period (a string)
  ``rpm:<counter>``             ZSET, member request id, score admission time: the sliding 60 s log
  ``tpm:<counter>``             ZSET, member ``<request id>:<tokens>``, score settlement time
  ``tpmsum:<counter>``          the tokens of the ``tpm`` log, kept beside it (absent: rebuilt from the log)
  ``par:<counter>``             ZSET, member request id, score lease expiry: the calls in flight
"""

from __future__ import annotations

import hashlib

KEYS_PER_ADMIT_CHECK = 5  # spend, rpm, tpm, tpmsum, par
ARGS_PER_ADMIT_CHECK = 4  # max budget nanos, rpm limit, tpm limit, parallel limit ("-": none)
KEYS_PER_SETTLE_CHECK = 4  # spend, tpm, tpmsum, par
ARGS_PER_SETTLE_CHECK = 4  # add spend (1/0), spend idle ttl seconds (0: keep), add tokens (1/0), free slot (1/0)

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function tokens_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 0
end
"""

# KEYS: 5 per check (see above). ARGV: request id, lease ms, then 4 limits per check.
# Replies: {'ok', now} | {'seed', i...} (the spend counters of checks i are missing) |
#          {'refuse', i, reason, current, retry ms (-1: none)}
ADMIT = _PRELUDE + """
local WINDOW = 60000
local cutoff = now - WINDOW
local rid, lease = ARGV[1], tonumber(ARGV[2])
local n = #KEYS / 5

-- The tokens settled in the window. The running sum is trusted only beside its log; whenever one of
-- the two is missing (expired or evicted apart) the sum is rebuilt from the log.
local function window_tokens(log, sum)
  local old = redis.call('ZRANGEBYSCORE', log, '-inf', cutoff)
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff) end
  local total = tonumber(redis.call('GET', sum))
  local has_log = redis.call('EXISTS', log) == 1
  if total ~= nil and has_log then
    if #old == 0 then return total end
    for _, m in ipairs(old) do total = total - tokens_of(m) end
    redis.call('SET', sum, total, 'KEEPTTL')
    return total
  end
  if not has_log then
    if total ~= nil then redis.call('DEL', sum) end
    return 0
  end
  total = 0
  for _, m in ipairs(redis.call('ZRANGE', log, 0, -1)) do total = total + tokens_of(m) end
  local ttl = redis.call('PTTL', log)
  redis.call('SET', sum, total, 'PX', ttl > 0 and ttl or 2 * WINDOW)
  return total
end

-- How long until enough of the log has left the window for the tokens to fall below the limit.
local function tpm_retry(log, used, limit)
  local entries = redis.call('ZRANGE', log, 0, -1, 'WITHSCORES')
  for j = 1, #entries, 2 do
    used = used - tokens_of(entries[j])
    if used < limit then return tonumber(entries[j + 1]) + WINDOW - now end
  end
  return WINDOW
end

local function limit_of(i, j) return tonumber(ARGV[2 + 4 * (i - 1) + j]) end

-- A request id already counted (an EVALSHA retried after its reply was lost) is not counted twice.
for i = 1, n do
  local k = 5 * (i - 1)
  if limit_of(i, 2) and redis.call('ZSCORE', KEYS[k + 2], rid) then return {'ok', now} end
  if limit_of(i, 4) and redis.call('ZSCORE', KEYS[k + 5], rid) then return {'ok', now} end
end

local missing = {}
for i = 1, n do
  if limit_of(i, 1) and redis.call('EXISTS', KEYS[5 * (i - 1) + 1]) == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {'seed', unpack(missing)} end

for i = 1, n do
  local k = 5 * (i - 1)
  local budget, rpm, tpm, par = limit_of(i, 1), limit_of(i, 2), limit_of(i, 3), limit_of(i, 4)
  if budget then
    local spent = redis.call('GET', KEYS[k + 1])
    if tonumber(spent) >= budget then return {'refuse', i, 'budget', spent, -1} end
  end
  if rpm then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 2], '-inf', cutoff)
    local count = redis.call('ZCARD', KEYS[k + 2])
    if count >= rpm then
      local oldest = redis.call('ZRANGE', KEYS[k + 2], 0, 0, 'WITHSCORES')
      local retry = WINDOW
      if oldest[2] then retry = tonumber(oldest[2]) + WINDOW - now end
      return {'refuse', i, 'rpm', tostring(count), retry}
    end
  end
  if tpm then
    local used = window_tokens(KEYS[k + 3], KEYS[k + 4])
    if used >= tpm then return {'refuse', i, 'tpm', tostring(used), tpm_retry(KEYS[k + 3], used, tpm)} end
  end
  if par then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 5], '-inf', now)
    local busy = redis.call('ZCARD', KEYS[k + 5])
    if busy >= par then return {'refuse', i, 'parallel', tostring(busy), -1} end
  end
end

for i = 1, n do
  local k = 5 * (i - 1)
  if limit_of(i, 2) then
    redis.call('ZADD', KEYS[k + 2], now, rid)
    redis.call('PEXPIRE', KEYS[k + 2], 2 * WINDOW)
  end
  if limit_of(i, 4) then
    redis.call('ZADD', KEYS[k + 5], now + lease, rid)
    redis.call('PEXPIRE', KEYS[k + 5], lease)
  end
end
return {'ok', now}
"""

# KEYS: the request's done marker, then 4 per check. ARGV: request id, spend nanos, tokens, done ttl
# seconds, then 4 flags per check. Reply: 1 when this settlement counted, 0 when the id was settled before.
SETTLE = _PRELUDE + """
local WINDOW = 60000
local rid, nanos, tokens = ARGV[1], ARGV[2], tonumber(ARGV[3])
local first = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4])
local n = (#KEYS - 1) / 4
for i = 1, n do
  local k, a = 1 + 4 * (i - 1), 4 + 4 * (i - 1)
  if first and ARGV[a + 1] == '1' and redis.call('EXISTS', KEYS[k + 1]) == 1 then
    -- A missing counter is left missing: the next admission seeds it from the store, which holds
    -- this call once the ledger has flushed it. Created here from 0 it would forget the period's spend.
    redis.call('INCRBY', KEYS[k + 1], nanos)
    local idle = tonumber(ARGV[a + 2])
    if idle > 0 then redis.call('EXPIRE', KEYS[k + 1], idle) end
  end
  if first and ARGV[a + 3] == '1' and tokens > 0 then
    local had_log = redis.call('EXISTS', KEYS[k + 2]) == 1
    redis.call('ZADD', KEYS[k + 2], now, rid .. ':' .. ARGV[3])
    redis.call('PEXPIRE', KEYS[k + 2], 2 * WINDOW)
    -- Only a sum that lives beside its log is kept up; any other is dropped and rebuilt at the next admission.
    if had_log and redis.call('EXISTS', KEYS[k + 3]) == 1 then
      redis.call('INCRBY', KEYS[k + 3], tokens)
      redis.call('PEXPIRE', KEYS[k + 3], 2 * WINDOW)
    else
      redis.call('DEL', KEYS[k + 3])
    end
  end
  if ARGV[a + 4] == '1' then redis.call('ZREM', KEYS[k + 4], rid) end
end
if first then return 1 end
return 0
"""


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
