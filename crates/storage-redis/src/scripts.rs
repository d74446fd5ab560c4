//! The Lua scripts, public so that tools (and the benchmarks' raw-driver baselines) can send
//! exactly the commands the stores send. Their `KEYS` and `ARGV` are documented where the stores
//! call them (`table.rs`, `stores/webhook.rs`).

/// Writes a record and moves it between its index sets (generic engine).
pub const WRITE_RECORD: &str = r"
local x = redis.call('HGET', KEYS[1], 'x')
if (x or '') ~= ARGV[2] then return {'retry', x or ''} end
local cur = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == 'insert' and cur then return {'conflict'} end
if ARGV[1] == 'update' then
  if not cur then return {'missing'} end
  if cur ~= ARGV[3] then return {'mismatch', cur} end
end
local id, nold, nnew = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
for i = 1, nold do redis.call('ZREM', KEYS[2 + i], id) end
for i = 1, nnew do redis.call('ZADD', KEYS[2 + nold + i], ARGV[8 + i], id) end
redis.call('ZADD', KEYS[2], 0, id)
local version, created = 1, ARGV[4]
if cur then
  version = tonumber(cur) + 1
  created = redis.call('HGET', KEYS[1], 'c')
end
redis.call('HSET', KEYS[1], 'v', version, 'c', created, 'u', ARGV[4], 'b', ARGV[5], 'x', ARGV[9 + nnew])
return {'ok', tostring(version), created}
";

/// Deletes a record and its index entries (generic engine).
pub const DELETE_RECORD: &str = r"
local x = redis.call('HGET', KEYS[1], 'x')
if not x then return {'absent'} end
if x ~= ARGV[1] then return {'retry', x} end
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], ARGV[2]) end
redis.call('DEL', KEYS[1])
return {'deleted'}
";

/// Claims a webhook event if absent or expired, else reports its live state.
pub const CLAIM_EVENT: &str = r"
local f = redis.call('HMGET', KEYS[1], 's', 't', 'r', 'd', 'e')
if f[5] and tonumber(f[5]) > tonumber(ARGV[1]) then
  return {'live', f[1] or '', f[2] or '', f[3] or '', f[4] or '', f[5]}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'in_flight', 't', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return {'acquired'}
";

/// Completes the claim held by a lease token.
pub const FINISH_EVENT: &str = r"
if redis.call('HGET', KEYS[1], 's') ~= 'in_flight' or redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', 'done', 'r', ARGV[2], 'd', ARGV[3], 'e', ARGV[4])
redis.call('HDEL', KEYS[1], 't')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1
";

/// Releases the claim held by a lease token.
pub const ABANDON_EVENT: &str = r"
if redis.call('HGET', KEYS[1], 's') ~= 'in_flight' or redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
";

/// Records a delivery whatever the event state.
pub const RECORD_EVENT: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'done', 'r', ARGV[1], 'd', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
";

/// Removes the listed events that are still expired.
pub const SWEEP_EVENT: &str = r"
local removed = 0
for i = 2, #KEYS do
  local e = redis.call('HGET', KEYS[i], 'e')
  if not e or tonumber(e) <= tonumber(ARGV[1]) then
    redis.call('DEL', KEYS[i])
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
";
