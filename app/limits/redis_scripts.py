"""The two Lua scripts of the Redis backend: admit and settle, each one atomic EVALSHA.

Kept as strings beside the code that builds their arguments (no package data to ship). Times are
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

# Each check travels as one argument, its keys named inside the script: 4 to 7 arguments per call instead
# of 5 keys and 4 limits per check, because redis-py's packing of each argument was a third of the
# client's CPU per call (bench/limits_redis.py). So the keys are not declared in KEYS, which a Redis
# Cluster would refuse; this backend is for a standalone Redis (or a primary with replicas).

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function tokens_of(member)
  return tonumber(string.match(member, ':(%d+)$')) or 0
end
local prefix = ARGV[1]
local function keys_of(period, counter)
  return {spend = prefix .. 'spend:' .. counter .. ':' .. period, rpm = prefix .. 'rpm:' .. counter,
          tpm = prefix .. 'tpm:' .. counter, tpmsum = prefix .. 'tpmsum:' .. counter, par = prefix .. 'par:' .. counter}
end
local SPEC = '^(%S+) (%S+) (%S+) (%S+) (%S+) (.*)$'
"""

# ARGV: prefix, request id, lease ms, then per check "<period> <budget nanos> <rpm> <tpm> <parallel> <counter>"
# ("-": no such limit). Replies: {'ok', now} | {'seed', i...} (the spend counters of checks i are missing) |
# {'refuse', i, reason, current, retry ms (-1: none)}
ADMIT = _PRELUDE + """
local WINDOW = 60000
local cutoff = now - WINDOW
local rid, lease = ARGV[2], tonumber(ARGV[3])
local checks = {}
for a = 4, #ARGV do
  local period, budget, rpm, tpm, par, counter = string.match(ARGV[a], SPEC)
  local c = keys_of(period, counter)
  c.budget, c.rpm_limit, c.tpm_limit, c.par_limit = tonumber(budget), tonumber(rpm), tonumber(tpm), tonumber(par)
  checks[#checks + 1] = c
end

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

-- A request id already counted (an EVALSHA retried after its reply was lost) is not counted twice.
for _, c in ipairs(checks) do
  if c.rpm_limit and redis.call('ZSCORE', c.rpm, rid) then return {'ok', now} end
  if c.par_limit and redis.call('ZSCORE', c.par, rid) then return {'ok', now} end
end

local missing = {}
for i, c in ipairs(checks) do
  if c.budget and redis.call('EXISTS', c.spend) == 0 then missing[#missing + 1] = i end
end
if #missing > 0 then return {'seed', unpack(missing)} end

for i, c in ipairs(checks) do
  if c.budget then
    local spent = redis.call('GET', c.spend)
    if tonumber(spent) >= c.budget then return {'refuse', i, 'budget', spent, -1} end
  end
  if c.rpm_limit then
    redis.call('ZREMRANGEBYSCORE', c.rpm, '-inf', cutoff)
    local count = redis.call('ZCARD', c.rpm)
    if count >= c.rpm_limit then
      local oldest = redis.call('ZRANGE', c.rpm, 0, 0, 'WITHSCORES')
      local retry = WINDOW
      if oldest[2] then retry = tonumber(oldest[2]) + WINDOW - now end
      return {'refuse', i, 'rpm', tostring(count), retry}
    end
  end
  if c.tpm_limit then
    local used = window_tokens(c.tpm, c.tpmsum)
    if used >= c.tpm_limit then
      return {'refuse', i, 'tpm', tostring(used), tpm_retry(c.tpm, used, c.tpm_limit)}
    end
  end
  if c.par_limit then
    redis.call('ZREMRANGEBYSCORE', c.par, '-inf', now)
    local busy = redis.call('ZCARD', c.par)
    if busy >= c.par_limit then return {'refuse', i, 'parallel', tostring(busy), -1} end
  end
end

for _, c in ipairs(checks) do
  if c.rpm_limit then
    redis.call('ZADD', c.rpm, now, rid)
    redis.call('PEXPIRE', c.rpm, 2 * WINDOW)
  end
  if c.par_limit then
    redis.call('ZADD', c.par, now + lease, rid)
    redis.call('PEXPIRE', c.par, lease)
  end
end
return {'ok', now}
"""

# ARGV: prefix, request id, spend nanos, tokens, done ttl seconds, then per check
# "<period> <add spend 1/0> <spend idle ttl s, 0: keep> <add tokens 1/0> <free slot 1/0> <counter>".
# Reply: 1 when this settlement counted, 0 when the id was settled before.
SETTLE = _PRELUDE + """
local WINDOW = 60000
local rid, nanos, tokens = ARGV[2], ARGV[3], tonumber(ARGV[4])
local first = redis.call('SET', prefix .. 'done:' .. rid, '1', 'NX', 'EX', ARGV[5])
for a = 6, #ARGV do
  local period, add_spend, idle, add_tokens, free, counter = string.match(ARGV[a], SPEC)
  local c = keys_of(period, counter)
  if first and add_spend == '1' and redis.call('EXISTS', c.spend) == 1 then
    -- A missing counter is left missing: the next admission seeds it from the store, which holds
    -- this call once the ledger has flushed it. Created here from 0 it would forget the period's spend.
    redis.call('INCRBY', c.spend, nanos)
    if idle ~= '0' then redis.call('EXPIRE', c.spend, idle) end
  end
  if first and add_tokens == '1' and tokens > 0 then
    local had_log = redis.call('EXISTS', c.tpm) == 1
    redis.call('ZADD', c.tpm, now, rid .. ':' .. ARGV[4])
    redis.call('PEXPIRE', c.tpm, 2 * WINDOW)
    -- Only a sum that lives beside its log is kept up; any other is dropped and rebuilt at the next admission.
    if had_log and redis.call('EXISTS', c.tpmsum) == 1 then
      redis.call('INCRBY', c.tpmsum, tokens)
      redis.call('PEXPIRE', c.tpmsum, 2 * WINDOW)
    else
      redis.call('DEL', c.tpmsum)
    end
  end
  if free == '1' then redis.call('ZREM', c.par, rid) end
end
if first then return 1 end
return 0
"""


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
