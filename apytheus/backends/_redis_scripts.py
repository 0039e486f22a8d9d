"""STORE: the Lua scripts that write to Redis, each applied at most once per batch.

Each script touches the keys of one hash tag, so it runs on one Redis Cluster
node. They are sent by SHA (EVALSHA) and loaded again when Redis lost its
script cache (a restart, ``SCRIPT FLUSH``).
"""

from __future__ import annotations

import hashlib

# KEYS: seq, values, created, times, owned (the worker's series of a gauge-like metric),
# exemplars.
# ARGV: worker, seq, expected, #deletes, #incr, #set, #stamped, #created, kind ('1' a
# counter, '2' a gauge, info or enum, '0' else), now, then the fields: series to delete,
# (field, delta), (field, value), (field, time), (field, time). Applied only if this
# worker's last applied batch is older; the number is stored first, so a script that fails
# half-way (a key of another type) is never applied twice.
# Deletes go first. A counter's series is one field (and its creation time): deleted by
# name. A histogram's has a field per bucket, whatever bounds each worker declares (a
# rolling deploy may change them), and a gauge's, info's or enum's one per worker, pruned
# or not: those are found by listing the metric's hashes, once per batch that deletes.
# Exemplars go with their series, through pcall: a key of another type there never stops
# the counts.
# Totals are added in Lua, in doubles as in the workers, and stored with 17 significant
# digits, which read back as the same double (HINCRBYFLOAT prints 17 *decimals*:
# 1.2345678901234567e-10 comes back as 1.2345679e-10, and 1e-20 as 0); a field that holds
# no number refuses them all. A total that did not exist makes its series' creation time
# ``now`` unless the batch gives one (another worker removed the series, say). A gauge-like
# metric's series that the worker sets are listed in its owned set, so that what it leaves
# is found without a scan (RETIRE_SCRIPT). Returns 0
# (applied before), 1 (applied) or 2 (applied, but
# the worker's last batch number here is older than ``expected``, or missing: this
# metric's keys were lost or rolled back).
FLUSH_SCRIPT = """
local known = redis.call('HGET', KEYS[1], ARGV[1])
local last = tonumber(known or '0')
if last >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local i = 11
local deletes = tonumber(ARGV[4])
if deletes > 0 and ARGV[9] == '1' then
  for k = i, i + deletes - 1 do
    redis.call('HDEL', KEYS[2], ARGV[k])
    redis.call('HDEL', KEYS[3], ARGV[k])
    redis.pcall('HDEL', KEYS[6], ARGV[k])
  end
elseif deletes > 0 then
  local gone = {}
  for k = i, i + deletes - 1 do
    gone[ARGV[k]] = true
    redis.call('SREM', KEYS[5], ARGV[k])
  end
  for key = 2, 4 do
    for _, f in ipairs(redis.call('HKEYS', KEYS[key])) do
      if gone[string.match(f, '^[^\\t]*')] then redis.call('HDEL', KEYS[key], f) end
    end
  end
  if ARGV[9] == '0' then
    local shown = redis.pcall('HKEYS', KEYS[6])
    if type(shown) == 'table' and not shown.err then
      for _, f in ipairs(shown) do
        if gone[string.match(f, '^[^\\t]*')] then redis.pcall('HDEL', KEYS[6], f) end
      end
    end
  end
end
i = i + deletes
local fields, totals, born = {}, {}, {}
for _ = 1, tonumber(ARGV[5]) do
  local f = ARGV[i]
  local total = totals[f]
  if total == nil then
    local old = redis.call('HGET', KEYS[2], f)
    if not old then born[#born + 1] = string.match(f, '^[^\\t]*') end
    total = tonumber(old or '0')
    if not total then
      return redis.error_reply('field ' .. f .. ' of ' .. KEYS[2] .. ' holds no number')
    end
    fields[#fields + 1] = f
  end
  totals[f] = total + tonumber(ARGV[i + 1])
  i = i + 2
end
for _, f in ipairs(fields) do redis.call('HSET', KEYS[2], f, string.format('%.17g', totals[f])) end
for _ = 1, tonumber(ARGV[6]) do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  if ARGV[9] == '2' then redis.call('SADD', KEYS[5], string.match(ARGV[i], '^[^\t]*')) end
  i = i + 2
end
for _ = 1, tonumber(ARGV[7]) do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _ = 1, tonumber(ARGV[8]) do redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]); i = i + 2 end
for _, series in ipairs(born) do redis.call('HSETNX', KEYS[3], series, ARGV[10]) end
local expected = tonumber(ARGV[3])
if expected and last < expected then return 2 end
return 1
"""
FLUSH_SHA = hashlib.sha1(FLUSH_SCRIPT.encode()).hexdigest()

# KEYS: workers, marks, the worker's metrics. ARGV: worker, heartbeat expiry, expected mark
# ('' for none), new mark, force ('1' or '0'), then pairs of a metric name the batch wrote
# and '1' if its newest value stays when the worker stops (see RETIRE_SCRIPT). Refreshes
# the heartbeat, lists the metrics (so that pruning finds everything a dead worker wrote),
# then moves the worker's mark (the batch number of its last confirmed write) from the
# expected one to the new one. Returns 0 if the mark is neither (Redis lost it, or went
# back to an older snapshot): then it is left as it is, so a retry after a lost reply still
# finds it wrong.
MARK_SCRIPT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
local mark = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[5] == '1' or mark == ARGV[3] or mark == ARGV[4] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  return 1
end
return 0
"""
MARK_SHA = hashlib.sha1(MARK_SCRIPT.encode()).hexdigest()

# KEYS: seq, values, times, then each worker's owned set. ARGV: '1' where the last write
# wins (mostrecent gauges, info, enum), '1' to remove the batch numbers too, then the
# workers: one that stopped cleanly (its batch numbers stay a while: a copy of a batch
# that a stalled connection delivers late must still find it applied), or ones dead for
# longer than the retention. Removes their values (series field, tab, worker), found
# through their owned sets: no scan, the cost follows what they left. Where the last
# write wins, a value newer than what earlier retired workers left moves to the series'
# retired slot (series field, tab, nothing), so a worker's exit never brings an older
# value back.
RETIRE_SCRIPT = """
local latest = ARGV[1] == '1'
for k = 3, #ARGV do
  local suffix = '\t' .. ARGV[k]
  if ARGV[2] == '1' then redis.call('HDEL', KEYS[1], ARGV[k]) end
  for _, series in ipairs(redis.call('SMEMBERS', KEYS[k + 1])) do
    local mine = series .. suffix
    if latest then
      local at = redis.call('HGET', KEYS[3], mine)
      local slot = series .. '\t'
      local before = redis.call('HGET', KEYS[3], slot)
      if at and (not before or tonumber(at) > tonumber(before)) then
        redis.call('HSET', KEYS[2], slot, redis.call('HGET', KEYS[2], mine) or '0')
        redis.call('HSET', KEYS[3], slot, at)
      end
    end
    redis.call('HDEL', KEYS[2], mine)
    redis.call('HDEL', KEYS[3], mine)
  end
  redis.call('DEL', KEYS[k + 1])
end
return 1
"""
RETIRE_SHA = hashlib.sha1(RETIRE_SCRIPT.encode()).hexdigest()
# KEYS: exemplars, values. ARGV: (field, exemplar) pairs, each "<timestamp> <value>
# <labels>" (see _exemplars.py). Keeps per field the exemplar with the newest timestamp,
# from any worker, and only for a series that exists (a counter's field, or a histogram's
# +Inf bucket, which a new series always writes): a batch sent again after another worker
# removed the series brings no orphan back. Not exactly once (a batch sent again changes
# nothing), and never part of a batch's fate.
EXEMPLAR_SCRIPT = """
for i = 1, #ARGV - 1, 2 do
  local at = tonumber(string.match(ARGV[i + 1], '^%S+'))
  local series = string.match(ARGV[i], '^[^\t]*')
  local there = redis.call('HGET', KEYS[2], series)
  there = there or redis.call('HGET', KEYS[2], series .. '\t+Inf')
  if at and there then
    local old = redis.call('HGET', KEYS[1], ARGV[i])
    local was = old and tonumber(string.match(old, '^%S+'))
    if not was or at >= was then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  end
end
return 1
"""
EXEMPLAR_SHA = hashlib.sha1(EXEMPLAR_SCRIPT.encode()).hexdigest()
SCRIPTS = (FLUSH_SCRIPT, RETIRE_SCRIPT, MARK_SCRIPT, EXEMPLAR_SCRIPT)
