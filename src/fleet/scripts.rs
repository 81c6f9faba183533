//! The Lua scripts the fleet limits run in Redis. Each reads the server's `TIME`, so
//! the Redis server's clock is the fleet's one time base, and touches one key, O(1)
//! (the concurrency scripts are O(log n) in the slots held, as sorted sets are).

/// GCRA that grants a batch (redis-cell's algorithm, taking up to `wanted` tokens at
/// once). The key holds the theoretical arrival time (TAT) in microseconds of `TIME`.
///
/// `KEYS[1]` the limit; `ARGV` = `period_us`, `rate`, `burst`, `wanted`. Returns
/// `{granted, wait_us}`: `granted ≤ wanted` tokens are debited now; with 0 granted,
/// `wait_us` is when one token will be there. With `tolerance = ⌊burst·period/rate⌋`,
/// `k` tokens are granted while `TAT + ⌈k·period/rate⌉ ≤ now + tolerance`, so over any
/// interval `T` the grants stay within `rate·T/period + burst` (the cost of a grant is
/// rounded up, never down). Integers stay below 2^53 (`burst·period_us` is checked when
/// the limit is built), so Lua's doubles compute them exactly.
pub(crate) const GCRA_BATCH: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
local tolerance = math.floor(burst * period / rate)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local room = math.floor((now + tolerance - tat) * rate / period)
local granted = math.min(wanted, room)
if granted < 1 then
  return {0, math.ceil(tat - tolerance + period / rate - now)}
end
tat = tat + math.ceil(granted * period / rate)
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return {granted, 0}
"#;

/// Takes one fleet concurrency slot: the sorted set's scores are the slots' expiry
/// times (milliseconds of `TIME`); expired slots are dropped first, so a crashed
/// process's slots come back after the lease TTL.
///
/// `KEYS[1]` the set; `ARGV` = `limit`, `ttl_ms`, `member`. Returns 1 if taken, else 0.
pub(crate) const SLOT_ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"#;

/// Extends the leases of the slots this process holds.
///
/// `KEYS[1]` the set; `ARGV` = `ttl_ms`, then members. Returns the positions (1 = the
/// first member) of those whose lease had already expired or is gone (lost: their calls
/// run on without a fleet slot), so the caller stops refreshing them.
pub(crate) const SLOT_REFRESH: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
    lost[#lost + 1] = i - 1
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return lost
"#;
