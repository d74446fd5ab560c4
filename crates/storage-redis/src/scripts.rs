//! The Lua scripts, public so that tools (and the benchmarks' raw-driver baselines) can send
//! exactly the commands the stores send. The engine's scripts (`APPLY`, `QUERY`, `PURGE`,
//! `INCREMENT`) run after [`PRELUDE`]; their arguments are documented in `table.rs`, the webhook
//! scripts' in `stores/webhook.rs`.

/// Helpers every engine script starts with. Encoded values compare in byte order (`before`,
/// never Lua's locale-dependent `<` on strings); integers are encoded as a sign digit and 19
/// digits, complemented when negative, so byte order is numeric order.
pub const PRELUDE: &str = r"
local function before(a, b)
  if a == b then return false end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function live(e, now)
  return (not e) or (not now) or before(now, e)
end
local function complement(digits)
  return (string.gsub(digits, '%d', function(c) return string.format('%d', 9 - tonumber(c)) end))
end
local function enc_int(n)
  if n >= 0 then return '1' .. string.format('%019d', n) end
  return '0' .. complement(string.format('%019d', -n))
end
local function dec_int(s)
  local digits = string.sub(s, 2)
  if string.sub(s, 1, 1) == '1' then return tonumber(digits) end
  return -tonumber(complement(digits))
end
local function int_text(n)
  return string.format('%d', n)
end
-- A table's keys, from the short form the caller sends: {name, base, ns, idx = {{column,
-- uniqueness}, ...}, expires}.
local function expand(t)
  if t.all then return t end
  t.all = t.base .. '#'
  for k, x in ipairs(t.idx) do
    t.idx[k] = {col = x[1], u = x[2], f = 'i' .. k, z = t.base .. '#' .. x[1], g = t.ns .. ':' .. t.name .. '#' .. x[1] .. '@global'}
  end
  if t.expires then
    t.x = t.base .. '#@saved'
    t.exp = t.base .. '#@expires'
  end
  return t
end
local function nullable(v)
  if v == cjson.null then return false end
  return v
end
-- The index values and expiry of a record, from its hash or, once the hash was collected, from
-- the table's saved entry (expiring tables).
local function current(t, key, id)
  local fields = {'v', 'c', 'e'}
  for _, x in ipairs(t.idx) do table.insert(fields, x.f) end
  local got = redis.call('HMGET', key, unpack(fields))
  local vals = {}
  if got[1] then
    for k = 1, #t.idx do vals[k] = got[3 + k] end
    return got, vals, got[3]
  end
  if t.x then
    local saved = redis.call('HGET', t.x, id)
    if saved then
      local s = cjson.decode(saved)
      for k = 1, #t.idx do vals[k] = nullable(s.v[k]) end
      return false, vals, nullable(s.e)
    end
  end
  return false, vals, false
end
local function unindex(t, id, owner, vals, e)
  for k, x in ipairs(t.idx) do
    local v = vals[k]
    if v then
      redis.call('ZREM', x.z, v .. '\0' .. id)
      if x.u == 2 and redis.call('HGET', x.g, v) == owner then redis.call('HDEL', x.g, v) end
    end
  end
  if e and t.exp then redis.call('ZREM', t.exp, e .. '\0' .. id) end
end
-- The full-text index of a searchable table: one sorted set of ids per word (`<base>#~<word>`);
-- a record's words, in order, are its hash field `s` (space-separated).
local function word_set(s)
  local set = {}
  if s then for w in string.gmatch(s, '[^ ]+') do set[w] = true end end
  return set
end
local function reindex_words(t, id, old, new)
  local a, b = word_set(old), word_set(new)
  for w in pairs(a) do if not b[w] then redis.call('ZREM', t.base .. '#~' .. w, id) end end
  for w in pairs(b) do if not a[w] then redis.call('ZADD', t.base .. '#~' .. w, 0, id) end end
end
local function remove(t, prefix, owner, id)
  local key = prefix .. id
  local got, vals, e = current(t, key, id)
  unindex(t, id, owner, vals, e)
  if t.s then reindex_words(t, id, redis.call('HGET', key, 's'), false) end
  redis.call('ZREM', t.all, id)
  if t.x then redis.call('HDEL', t.x, id) end
  redis.call('DEL', key)
  return got, e
end
";

/// Applies a unit of changes to one tenant, all or none: every condition (existence, version,
/// unique values) is checked before anything is written, since a script cannot roll back.
/// `ARGV[1]`: JSON `{now, nowu, changes: [...]}` (each change names its keys, which the caller
/// also passes as `KEYS`); `ARGV[1 + i]`: the body of change `i` (empty for a delete). Replies `{'ok', {results}}` or `{'conflict'|'missing'|'unique', i[, detail]}`.
pub const APPLY: &str = r"
local spec = cjson.decode(ARGV[1])
local now, nowu = spec.now, spec.nowu
local gone, claimed = {}, {}
local function live_record(key)
  if gone[key] then return false end
  local f = redis.call('HMGET', key, 'v', 'e')
  if f[1] and live(f[2], now) then return f end
  return false
end
for i, c in ipairs(spec.changes) do
  local t = expand(c.t)
  local cur = live_record(c.key)
  if c.op == 'd' then
    gone[c.key] = true
  else
    if c.mode == 'insert' and cur then return {'conflict', i} end
    if c.mode == 'update' then
      if not cur then return {'missing', i} end
      if cur[1] ~= c.expect then return {'mismatch', i, cur[1]} end
    end
    for k, x in ipairs(t.idx) do
      local v = nullable(c.vals[k])
      if x.u > 0 and v then
        local claim = x.u == 2 and (x.f .. '\0' .. v) or (c.owner .. '\0' .. x.f .. '\0' .. v)
        if claimed[claim] and claimed[claim] ~= c.key then return {'unique', i, x.col} end
        claimed[claim] = c.key
        if x.u == 1 then
          local hits = redis.call('ZRANGEBYLEX', x.z, '[' .. v .. '\0', '(' .. v .. '\1')
          for _, m in ipairs(hits) do
            local other = string.sub(m, #v + 2)
            if other ~= c.id and live_record(c.prefix .. other) then return {'unique', i, x.col} end
          end
        else
          local owner = redis.call('HGET', x.g, v)
          if owner and owner ~= c.owner then
            local sep = string.find(owner, '\0', 1, true)
            local key = c.ns .. ':{' .. string.sub(owner, 1, sep - 1) .. '}:' .. t.name .. ':' .. string.sub(owner, sep + 1)
            if live_record(key) then return {'unique', i, x.col} end
          end
        end
      end
    end
  end
end
local results = {}
for i, c in ipairs(spec.changes) do
  local t = c.t
  if c.op == 'd' then
    local got, e = remove(t, c.prefix, c.owner, c.id)
    table.insert(results, (got and live(e, now)) and '1' or '0')
  else
    local got, vals, e = current(t, c.key, c.id)
    local version, created = 1, nowu
    if got and live(e, now) then
      version = tonumber(got[1]) + 1
      created = got[2]
    end
    local expires = nullable(c.e)
    local fields = {'v', int_text(version), 'c', created, 'u', nowu, 'b', ARGV[1 + i]}
    local gone = {}
    if expires then
      table.insert(fields, 'e')
      table.insert(fields, expires)
    elseif e then
      table.insert(gone, 'e')
    end
    -- Index entries move only where a value changed: a rewrite that keeps its values costs no
    -- sorted-set work.
    for k, x in ipairs(t.idx) do
      local v, old = nullable(c.vals[k]), vals[k]
      if v then
        table.insert(fields, x.f)
        table.insert(fields, v)
      elseif old then
        table.insert(gone, x.f)
      end
      if v ~= old then
        if old then
          redis.call('ZREM', x.z, old .. '\0' .. c.id)
          if x.u == 2 and redis.call('HGET', x.g, old) == c.owner then redis.call('HDEL', x.g, old) end
        end
        if v then redis.call('ZADD', x.z, 0, v .. '\0' .. c.id) end
      end
      if v and x.u == 2 then redis.call('HSET', x.g, v, c.owner) end
    end
    if e and t.exp and e ~= expires then redis.call('ZREM', t.exp, e .. '\0' .. c.id) end
    if t.s then
      reindex_words(t, c.id, redis.call('HGET', c.key, 's'), c.w)
      if c.w ~= '' then
        table.insert(fields, 's')
        table.insert(fields, c.w)
      else
        table.insert(gone, 's')
      end
    end
    redis.call('HSET', c.key, unpack(fields))
    if #gone > 0 then redis.call('HDEL', c.key, unpack(gone)) end
    if not got then redis.call('ZADD', t.all, 0, c.id) end
    if t.x then
      redis.call('HSET', t.x, c.id, cjson.encode({e = c.e, v = c.vals}))
      if expires then
        redis.call('ZADD', t.exp, 0, expires .. '\0' .. c.id)
        redis.call('PEXPIREAT', c.key, c.gcat)
      else
        redis.call('PERSIST', c.key)
      end
    end
    table.insert(results, int_text(version) .. ' ' .. created)
  end
end
return {'ok', results}
";

/// Scans one tenant's records in the order of a driving index (`ZRANGEBYLEX`), filters them by
/// the residual predicates and liveness, and lists, counts or deletes the ones that pass, within
/// a budget of examined entries. `ARGV[1]`: JSON (see `table.rs`). Replies
/// `{rows, count, more, last}`: `last` is the member a next call continues after.
pub const QUERY: &str = r"
local q = cjson.decode(ARGV[1])
local t, now = expand(q.t), nullable(q.now)
local preds = q.preds
for _, p in ipairs(preds) do
  if p.op == 'in' then
    local set = {}
    for _, v in ipairs(p.set) do set[v] = true end
    p.lookup = set
  end
end
local function pass(p, v)
  local op = p.op
  if op == 'null' then return not v end
  if op == 'notnull' then return v and true or false end
  if not v then return false end
  if op == 'eq' then return v == p.a end
  if op == 'in' then return p.lookup[v] == true end
  if op == 'lt' then return before(v, p.a) end
  if op == 'le' then return not before(p.a, v) end
  if op == 'gt' then return before(p.a, v) end
  if op == 'ge' then return not before(v, p.a) end
  if op == 'between' then return (not before(v, p.a)) and (not before(p.b, v)) end
  return false
end
local fields = {'v', 'e', 'c', 'u', 'b'}
for _, f in ipairs(q.fetch) do table.insert(fields, f) end
local rows, count, examined = {}, 0, 0
local min, max = q.min, q.max
local chunk = 128
while true do
  local batch
  if q.rev then
    batch = redis.call('ZREVRANGEBYLEX', q.z, max, min, 'LIMIT', 0, chunk)
  else
    batch = redis.call('ZRANGEBYLEX', q.z, min, max, 'LIMIT', 0, chunk)
  end
  for _, m in ipairs(batch) do
    examined = examined + 1
    local id = m
    if q.keyed then id = string.sub(m, string.find(m, '\0', 1, true) + 1) end
    local got = redis.call('HMGET', q.prefix .. id, unpack(fields))
    if got[1] and live(got[2], now) then
      local ok = true
      for _, p in ipairs(preds) do
        if not pass(p, got[5 + p.at]) then
          ok = false
          break
        end
      end
      if ok then
        if q.mode == 'list' then
          if #rows >= q.limit then return {rows, count, 1, rows[#rows][1]} end
          local row = {m, id, got[1], got[3], got[4], got[5]}
          for k = 1, #q.fetch do row[6 + k] = got[5 + k] or '' end
          table.insert(rows, row)
        elseif q.mode == 'delete' then
          remove(t, q.prefix, q.tenant .. '\0' .. id, id)
          count = count + 1
        else
          count = count + 1
        end
      end
    end
    if examined >= q.budget then return {rows, count, 1, m} end
  end
  if #batch < chunk then return {rows, count, 0, ''} end
  local last = batch[#batch]
  if q.rev then max = '(' .. last else min = '(' .. last end
end
";

/// Deletes one tenant's expired records, within a budget: the entries of the expiry index at or
/// before now whose record still expires then (or was already collected by its `PEXPIREAT`).
/// `ARGV[1]`: JSON. Replies `{removed, more}`.
pub const PURGE: &str = r"
local q = cjson.decode(ARGV[1])
local t = expand(q.t)
local expired = redis.call('ZRANGEBYLEX', t.exp, '-', '(' .. q.now .. '\1', 'LIMIT', 0, q.budget)
local removed = 0
for _, m in ipairs(expired) do
  local sep = string.find(m, '\0', 1, true)
  local e, id = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
  local got, vals, current_e = current(t, q.prefix .. id, id)
  if current_e == e then
    remove(t, q.prefix, q.tenant .. '\0' .. id, id)
    removed = removed + 1
  else
    redis.call('ZREM', t.exp, m)
  end
end
return {removed, (#expired >= q.budget) and 1 or 0}
";

/// Adds to a counter of a live record, within its limit, in place. `ARGV[1]`: JSON. Replies
/// `{'ok', value, version, created}`, `{'missing'}` or `{'capped', value}`.
pub const INCREMENT: &str = r"
local q = cjson.decode(ARGV[1])
local t = expand(q.t)
local x = t.idx[q.column]
local got = redis.call('HMGET', q.key, 'v', 'c', 'e', x.f)
if not got[1] or not live(got[3], q.now) then return {'missing'} end
local cur = 0
if got[4] then cur = dec_int(got[4]) end
local by, limit = tonumber(q.by), tonumber(q.limit)
if (by >= 0 and cur > limit) or (by < 0 and cur < limit) then return {'capped', int_text(cur)} end
local value = cur + by
local encoded = enc_int(value)
if got[4] then redis.call('ZREM', x.z, got[4] .. '\0' .. q.id) end
redis.call('ZADD', x.z, 0, encoded .. '\0' .. q.id)
local version = tonumber(got[1]) + 1
redis.call('HSET', q.key, x.f, encoded, 'v', int_text(version), 'u', q.nowu)
if t.x then
  local saved = redis.call('HGET', t.x, q.id)
  if saved then
    local s = cjson.decode(saved)
    s.v[q.column] = encoded
    redis.call('HSET', t.x, q.id, cjson.encode(s))
  end
end
return {'ok', int_text(value), int_text(version), got[2]}
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

/// Helpers of the job-queue scripts (after [`PRELUDE`]). `KEYS[1]` is the queue store's prefix,
/// `<ns>:{jobs}`: every job key carries that hash tag, so they share one Cluster slot, and the
/// scripts build the others from it. A job is a hash (`t` tenant, `q` queue, `k` kind, `p`
/// payload, `pr` priority, `s` state, `a` attempts, `m` max attempts, `r` run at, `f` fair
/// place, `d` dedupe key, `lt` lease token, `le` lease expiry, `w` worker, `er` last error, `rs`
/// result, `c` created, `u` updated, `st` started, `fi` finished; instants in microseconds;
/// absent fields are none). Per queue: `ready` (due available jobs, by priority then fair place,
/// lexicographic), `sched` (available jobs not yet due, by run at), `fair` and `t:<tenant>`
/// (available jobs by fair place: the queue's head, the tenant's tail), `leases` (running jobs by
/// lease expiry), `done:<state>` (finished jobs by finish), `all`, `ta:<tenant>`, `s:<state>` and
/// `s:<state>:t:<tenant>` (ids, lexicographic, for lists and counts), and `dedupe`
/// (`<tenant>\0<key>` → id of the unfinished job holding it).
pub const JOBS_PRELUDE: &str = r"
local P = KEYS[1]
local function jkey(id) return P .. ':j:' .. id end
local function qkey(q, suffix) return P .. ':q:' .. q .. ':' .. suffix end
local function load(id)
  local flat = redis.call('HGETALL', jkey(id))
  if #flat == 0 then return false, flat end
  local j = {}
  for i = 1, #flat, 2 do j[flat[i]] = flat[i + 1] end
  return j, flat
end
-- The fields of each job among `ids` that still exists, its id last (`HGETALL` omits the key).
local function jobs_of(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local j, flat = load(id)
    if j then
      table.insert(flat, id)
      table.insert(out, flat)
    end
  end
  return out
end
local function ready_member(j, id)
  return string.format('%05d', 32767 - tonumber(j.pr)) .. enc_int(tonumber(j.f)) .. '\0' .. id
end
local function finished(s)
  return s == 'completed' or s == 'cancelled' or s == 'dead'
end
-- Adds a job to the sets of its state (`now` decides ready or scheduled).
local function place(id, j, now)
  local q, t, s = j.q, j.t, j.s
  redis.call('ZADD', qkey(q, 'all'), 0, id)
  redis.call('ZADD', qkey(q, 'ta:' .. t), 0, id)
  redis.call('ZADD', qkey(q, 's:' .. s), 0, id)
  redis.call('ZADD', qkey(q, 's:' .. s .. ':t:' .. t), 0, id)
  if s == 'available' then
    redis.call('ZADD', qkey(q, 'fair'), j.f, id)
    redis.call('ZADD', qkey(q, 't:' .. t), j.f, id)
    if tonumber(j.r) <= now then
      redis.call('ZADD', qkey(q, 'ready'), 0, ready_member(j, id))
    else
      redis.call('ZADD', qkey(q, 'sched'), j.r, id)
    end
  elseif s == 'running' then
    redis.call('ZADD', qkey(q, 'leases'), j.le, id)
  else
    redis.call('ZADD', qkey(q, 'done:' .. s), j.fi, id)
  end
end
-- Removes a job from the sets of its state.
local function unplace(id, j)
  local q, t, s = j.q, j.t, j.s
  redis.call('ZREM', qkey(q, 's:' .. s), id)
  redis.call('ZREM', qkey(q, 's:' .. s .. ':t:' .. t), id)
  if s == 'available' then
    redis.call('ZREM', qkey(q, 'fair'), id)
    redis.call('ZREM', qkey(q, 't:' .. t), id)
    redis.call('ZREM', qkey(q, 'ready'), ready_member(j, id))
    redis.call('ZREM', qkey(q, 'sched'), id)
  elseif s == 'running' then
    redis.call('ZREM', qkey(q, 'leases'), id)
  else
    redis.call('ZREM', qkey(q, 'done:' .. s), id)
  end
end
-- Moves every scheduled job of a queue that is due at `now` to its ready set (so a claim
-- chooses by priority among all due jobs), a thousand at a time.
local function promote(q, now)
  repeat
    local due = redis.call('ZRANGEBYSCORE', qkey(q, 'sched'), '-inf', now, 'LIMIT', 0, 1000)
    for _, id in ipairs(due) do
      redis.call('ZREM', qkey(q, 'sched'), id)
      local j = load(id)
      if j then redis.call('ZADD', qkey(q, 'ready'), 0, ready_member(j, id)) end
    end
  until #due < 1000
end
";

/// Enqueues jobs, in order. ARGV: 10 values per job: id, tenant, queue, kind, payload, priority,
/// max attempts, run at, now (the fair place on an empty queue, and created), dedupe key (empty:
/// none). Replies one array per job: `{'new', fair place}` or `{'existing', fields..., id}` (the
/// holder of the dedupe key).
pub const ENQUEUE_JOB: &str = r"
local function enqueue(a)
  local id, t, q, now, d = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 8]), ARGV[a + 9]
  if d ~= '' then
    local holder = redis.call('HGET', qkey(q, 'dedupe'), t .. '\0' .. d)
    if holder then
      local j, flat = load(holder)
      if j and not finished(j.s) then
        table.insert(flat, holder)
        table.insert(flat, 1, 'existing')
        return flat
      end
    end
  end
  local head = redis.call('ZRANGE', qkey(q, 'fair'), 0, 0, 'WITHSCORES')[2]
  local tail = redis.call('ZREVRANGE', qkey(q, 't:' .. t), 0, 0, 'WITHSCORES')[2]
  local f = now
  if head then
    f = tonumber(head)
    if tail and tonumber(tail) + 1 > f then f = tonumber(tail) + 1 end
  end
  local j = {t = t, q = q, k = ARGV[a + 3], p = ARGV[a + 4], pr = ARGV[a + 5], s = 'available', a = '0', m = ARGV[a + 6],
    r = ARGV[a + 7], f = int_text(f), c = ARGV[a + 8], u = ARGV[a + 8]}
  if d ~= '' then
    j.d = d
    redis.call('HSET', qkey(q, 'dedupe'), t .. '\0' .. d, id)
  end
  local flat = {}
  for k, v in pairs(j) do
    table.insert(flat, k)
    table.insert(flat, v)
  end
  redis.call('HSET', jkey(id), unpack(flat))
  place(id, j, now)
  return {'new', j.f}
end
local out = {}
for a = 1, #ARGV, 10 do table.insert(out, enqueue(a)) end
return out
";

/// Claims up to `limit` due jobs. ARGV: queue, now, limit, token, lease expiry, worker. Replies
/// the claimed jobs' fields, one array each (its id last), in claim order.
pub const CLAIM_JOBS: &str = r"
local q, now, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
promote(q, now)
local picked = redis.call('ZRANGE', qkey(q, 'ready'), 0, limit - 1)
local out = {}
for _, member in ipairs(picked) do
  local id = string.match(member, '%z(.*)$')
  local j = load(id)
  if j and j.s == 'available' then
    unplace(id, j)
    j.s, j.a, j.lt, j.le, j.w, j.st, j.u = 'running', int_text(tonumber(j.a) + 1), ARGV[4], ARGV[5], ARGV[6], ARGV[2], ARGV[2]
    redis.call('HSET', jkey(id), 's', j.s, 'a', j.a, 'lt', j.lt, 'le', j.le, 'w', j.w, 'st', j.st, 'u', j.u)
    place(id, j, now)
    local _, flat = load(id)
    table.insert(flat, id)
    table.insert(out, flat)
  else
    redis.call('ZREM', qkey(q, 'ready'), member)
  end
end
return out
";

/// Compare-and-sets jobs, each on its own. ARGV: now, then per job 13 values: id, state,
/// attempts, run at, lease token, lease expiry, last error, result, updated, finished, expected
/// state, expected token, lapsed by (the lease must have lapsed by then); optional values are empty for none, else prefixed with `=`. Replies
/// one integer per job: 1 applied, 0 not (state or token moved on), -1 refused (its dedupe key
/// is held by another unfinished job).
pub const SETTLE_JOBS: &str = r"
local now = tonumber(ARGV[1])
local function opt(v)
  if v == '' then return false end
  return string.sub(v, 2)
end
local out = {}
for i = 2, #ARGV, 13 do
  local id = ARGV[i]
  local j = load(id)
  local applied = 0
  local by = opt(ARGV[i + 12])
  local lapsed = (not by) or (j and j.le and tonumber(j.le) <= tonumber(by))
  if j and lapsed and j.s == ARGV[i + 10] and (j.lt or false) == opt(ARGV[i + 11]) then
    local s = ARGV[i + 1]
    local key = j.d and (j.t .. '\0' .. j.d)
    local holder = key and redis.call('HGET', qkey(j.q, 'dedupe'), key)
    if key and finished(j.s) and not finished(s) and holder and holder ~= id then
      local other = load(holder)
      if other and not finished(other.s) then applied = -1 end
    end
    if applied == 0 then
      unplace(id, j)
      j.s, j.a, j.r, j.lt, j.le, j.er, j.rs, j.u, j.fi =
        s, ARGV[i + 2], ARGV[i + 3], opt(ARGV[i + 4]), opt(ARGV[i + 5]), opt(ARGV[i + 6]), opt(ARGV[i + 7]), ARGV[i + 8], opt(ARGV[i + 9])
      redis.call('HSET', jkey(id), 's', j.s, 'a', j.a, 'r', j.r, 'u', j.u)
      for _, f in ipairs({'lt', 'le', 'er', 'rs', 'fi'}) do
        if j[f] then redis.call('HSET', jkey(id), f, j[f]) else redis.call('HDEL', jkey(id), f) end
      end
      if key then
        if finished(s) then
          if holder == id then redis.call('HDEL', qkey(j.q, 'dedupe'), key) end
        else
          redis.call('HSET', qkey(j.q, 'dedupe'), key, id)
        end
      end
      place(id, j, now)
      applied = 1
    end
  end
  table.insert(out, applied)
end
return out
";

/// Reads jobs by id from one of a queue's id sets. ARGV: set suffix, after (exclusive; empty:
/// from the start), limit. Replies the jobs' fields, one array each (its id last).
pub const LIST_JOBS: &str = r"
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
return jobs_of(redis.call('ZRANGEBYLEX', P .. ':q:' .. ARGV[1], from, '+', 'LIMIT', 0, tonumber(ARGV[3])))
";

/// Reads the running jobs of a queue whose lease lapsed. ARGV: queue, now, limit.
pub const LAPSED_JOBS: &str = r"
return jobs_of(redis.call('ZRANGEBYSCORE', qkey(ARGV[1], 'leases'), '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3])))
";

/// Deletes finished jobs of a queue. ARGV: queue, before (exclusive), limit, states... Replies
/// how many.
pub const PRUNE_JOBS: &str = r"
local q, limit = ARGV[1], tonumber(ARGV[3])
local n = 0
for k = 4, #ARGV do
  local done = qkey(q, 'done:' .. ARGV[k])
  if n < limit then
    local ids = redis.call('ZRANGEBYSCORE', done, '-inf', '(' .. ARGV[2], 'LIMIT', 0, limit - n)
    for _, id in ipairs(ids) do
      local j = load(id)
      if j then
        unplace(id, j)
        redis.call('ZREM', qkey(q, 'all'), id)
        redis.call('ZREM', qkey(q, 'ta:' .. j.t), id)
        if j.d and redis.call('HGET', qkey(q, 'dedupe'), j.t .. '\0' .. j.d) == id then
          redis.call('HDEL', qkey(q, 'dedupe'), j.t .. '\0' .. j.d)
        end
        redis.call('DEL', jkey(id))
        n = n + 1
      else
        redis.call('ZREM', done, id)
      end
    end
  end
end
return n
";
