#!/usr/bin/env python3
"""Writes ../data/*.json: ElastiCache parameter metadata per parameter-group family.

The JSON files are what the crate embeds and what reviewers check against
AWS; this script is how they were produced, kept so a correction made here
reaches every family that shares the parameter. Run from anywhere:

    python3 crates/parameter-catalog/tools/generate.py

Sources (see ../README.md for what is verified and what is approximate):
  * botocore elasticache/2015-02-02/examples-1.json: DescribeEngineDefaultParameters
    and DescribeCacheParameters for redis2.8 (real API output).
  * aws-cli awscli/examples/elasticache/describe-engine-default-parameters.rst:
    DescribeEngineDefaultParameters for redis5.0 (real API output).
  * AWS docs "Engine specific parameters" (ParameterGroups.Engine): per-version
    changes for Redis OSS 2.6.13 .. 7, Valkey 7.2 .. 8.1, Memcached 1.4.5 .. 1.6,
    and the node-type tables (maxmemory, max_cache_memory, num_threads).
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")

IMM = "immediate"
RB = "requires-reboot"


def p(name, default, desc, dtype, allowed, modifiable, change, minver=None, cond=False):
    d = {"ParameterName": name}
    if default is not None:
        d["ParameterValue"] = default
    d["Description"] = desc
    d["Source"] = "system"
    d["DataType"] = dtype
    if allowed is not None:
        d["AllowedValues"] = allowed
    d["IsModifiable"] = modifiable
    d["MinimumEngineVersion"] = minver  # filled in per family when None
    d["ChangeType"] = change
    if cond:
        d["ConditionallyModifiable"] = True
    return d


YN = "yes,no"

# ---------------------------------------------------------------- Redis OSS

POLICY_26 = "volatile-lru,allkeys-lru,volatile-random,allkeys-random,volatile-ttl,noeviction"
POLICY_40 = ("volatile-lru,allkeys-lru,volatile-lfu,allkeys-lfu,volatile-random,"
             "allkeys-random,volatile-ttl,noeviction")

RENAMABLE_50 = (
    "APPEND,BITCOUNT,BITFIELD,BITOP,BITPOS,BLPOP,BRPOP,BRPOPLPUSH,BZPOPMIN,BZPOPMAX,CLIENT,"
    "COMMAND,DBSIZE,DECR,DECRBY,DEL,DISCARD,DUMP,ECHO,EVAL,EVALSHA,EXEC,EXISTS,EXPIRE,EXPIREAT,"
    "FLUSHALL,FLUSHDB,GEOADD,GEOHASH,GEOPOS,GEODIST,GEORADIUS,GEORADIUSBYMEMBER,GET,GETBIT,"
    "GETRANGE,GETSET,HDEL,HEXISTS,HGET,HGETALL,HINCRBY,HINCRBYFLOAT,HKEYS,HLEN,HMGET,HMSET,HSET,"
    "HSETNX,HSTRLEN,HVALS,INCR,INCRBY,INCRBYFLOAT,INFO,KEYS,LASTSAVE,LINDEX,LINSERT,LLEN,LPOP,"
    "LPUSH,LPUSHX,LRANGE,LREM,LSET,LTRIM,MEMORY,MGET,MONITOR,MOVE,MSET,MSETNX,MULTI,OBJECT,"
    "PERSIST,PEXPIRE,PEXPIREAT,PFADD,PFCOUNT,PFMERGE,PING,PSETEX,PSUBSCRIBE,PUBSUB,PTTL,PUBLISH,"
    "PUNSUBSCRIBE,RANDOMKEY,READONLY,READWRITE,RENAME,RENAMENX,RESTORE,ROLE,RPOP,RPOPLPUSH,RPUSH,"
    "RPUSHX,SADD,SCARD,SCRIPT,SDIFF,SDIFFSTORE,SELECT,SET,SETBIT,SETEX,SETNX,SETRANGE,SINTER,"
    "SINTERSTORE,SISMEMBER,SLOWLOG,SMEMBERS,SMOVE,SORT,SPOP,SRANDMEMBER,SREM,STRLEN,SUBSCRIBE,"
    "SUNION,SUNIONSTORE,SWAPDB,TIME,TOUCH,TTL,TYPE,UNSUBSCRIBE,UNLINK,UNWATCH,WAIT,WATCH,ZADD,"
    "ZCARD,ZCOUNT,ZINCRBY,ZINTERSTORE,ZLEXCOUNT,ZPOPMAX,ZPOPMIN,ZRANGE,ZRANGEBYLEX,ZREVRANGEBYLEX,"
    "ZRANGEBYSCORE,ZRANK,ZREM,ZREMRANGEBYLEX,ZREMRANGEBYRANK,ZREMRANGEBYSCORE,ZREVRANGE,"
    "ZREVRANGEBYSCORE,ZREVRANK,ZSCORE,ZUNIONSTORE,SCAN,SSCAN,HSCAN,ZSCAN,XINFO,XADD,XTRIM,XDEL,"
    "XRANGE,XREVRANGE,XLEN,XREAD,XGROUP,XREADGROUP,XACK,XCLAIM,XPENDING,GEORADIUS_RO,"
    "GEORADIUSBYMEMBER_RO,LOLWUT,XSETID,SUBSTR"
)


def redis26():
    return [
        p("activerehashing", "yes", "Apply rehashing or not.", "string", YN, True, RB),
        p("appendfsync", "everysec", "fsync policy for AOF persistence", "string",
          "always,everysec,no", True, IMM),
        p("appendonly", "no", "Enable Redis persistence.", "string", YN, True, IMM),
        p("client-output-buffer-limit-normal-hard-limit", "0",
          "Normal client output buffer hard limit in bytes.", "integer", "0-", True, IMM),
        p("client-output-buffer-limit-normal-soft-limit", "0",
          "Normal client output buffer soft limit in bytes.", "integer", "0-", True, IMM),
        p("client-output-buffer-limit-normal-soft-seconds", "0",
          "Normal client output buffer soft limit in seconds.", "integer", "0-", True, IMM),
        p("client-output-buffer-limit-pubsub-hard-limit", "33554432",
          "Pubsub client output buffer hard limit in bytes.", "integer", "0-", True, IMM),
        p("client-output-buffer-limit-pubsub-soft-limit", "8388608",
          "Pubsub client output buffer soft limit in bytes.", "integer", "0-", True, IMM),
        p("client-output-buffer-limit-pubsub-soft-seconds", "60",
          "Pubsub client output buffer soft limit in seconds.", "integer", "0-", True, IMM),
        p("client-output-buffer-limit-slave-soft-seconds", "60",
          "Slave client output buffer soft limit in seconds.", "integer", "0-", False, IMM),
        p("databases", "16", "Set the number of databases.", "integer", "1-1200000", True, RB),
        p("hash-max-ziplist-entries", "512",
          "The maximum number of hash entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("hash-max-ziplist-value", "64",
          "The threshold of biggest hash entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("list-max-ziplist-entries", "512",
          "The maximum number of list entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("list-max-ziplist-value", "64",
          "The threshold of biggest list entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("lua-time-limit", "5000",
          "Max execution time of a Lua script in milliseconds. 0 for unlimited execution without warnings.",
          "integer", "5000", False, IMM),
        p("maxclients", "65000", "The maximum number of Redis clients.", "integer", "1-65000",
          False, RB),
        p("maxmemory-policy", "volatile-lru", "Max memory policy.", "string", POLICY_26, True, IMM),
        p("maxmemory-samples", "3", "Max memory samples.", "integer", "1-", True, IMM),
        p("reserved-memory", "0",
          "The amount of memory reserved for non-cache memory usage, in bytes. You may want to "
          "increase this parameter for nodes with read replicas, AOF enabled, etc, to reduce swap usage.",
          "integer", "0-", True, IMM),
        p("reserved-memory-percent", "25",
          "The percent of memory reserved for non-cache memory usage. You may want to increase this "
          "parameter for nodes with read replicas, AOF enabled, etc, to reduce swap usage.",
          "integer", "0-100", True, IMM),
        p("set-max-intset-entries", "512",
          "The limit in the size of the set in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("slave-allow-chaining", "no", "Configures if chaining of slaves is allowed", "string", YN,
          False, IMM),
        p("slowlog-log-slower-than", "10000",
          "The execution time, in microseconds, to exceed in order for the command to get logged. "
          "Note that a negative number disables the slow log, while a value of zero forces the "
          "logging of every command.", "integer", "-", True, IMM),
        p("slowlog-max-len", "128",
          "The length of the slow log. There is no limit to this length. Just be aware that it will "
          "consume memory. You can reclaim memory used by the slow log with SLOWLOG RESET.",
          "integer", "0-", True, IMM),
        p("tcp-keepalive", "0", "If non-zero, send ACKs every given number of seconds.", "integer",
          "0-", True, IMM),
        p("timeout", "0",
          "Close connection if client is idle for a given number of seconds, or never if 0.",
          "integer", "0,20-", True, IMM),
        p("zset-max-ziplist-entries", "128",
          "The maximum number of sorted set entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("zset-max-ziplist-value", "64",
          "The threshold of biggest sorted set entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
    ]


def redis28():
    ps = redis26()
    ps += [
        p("close-on-slave-write", "yes",
          "If enabled, clients who attempt to write to a read-only slave will be disconnected. "
          "Applicable to 2.8.23 and higher.", "string", YN, True, IMM, minver="2.8.23"),
        p("min-slaves-max-lag", "10",
          "Maximum number of seconds within which the master must receive a ping from a slave to "
          "take writes. Use this parameter together with min-slaves-to-write to regulate when the "
          "master stops accepting writes. Setting this value to 0 means the master always takes writes.",
          "integer", "0-", True, IMM),
        p("min-slaves-to-write", "0",
          "Number of slaves that must be connected in order for master to take writes. Use this "
          "parameter together with min-slaves-max-lag to regulate when the master stops accepting "
          "writes. Setting this to 0 means the master always takes writes.",
          "integer", "0-", True, IMM),
        p("notify-keyspace-events", None,
          "The keyspace events for Redis to notify Pub/Sub clients about. By default all "
          "notifications are disabled", "string", None, True, IMM),
        p("repl-backlog-size", "1048576",
          "The replication backlog size in bytes for PSYNC. This is the size of the buffer which "
          "accumulates slave data when slave is disconnected for some time, so that when slave "
          "reconnects again, only transfer the portion of data which the slave missed. Minimum "
          "value is 16K.", "integer", "16384-", True, IMM),
        p("repl-backlog-ttl", "3600",
          "The amount of time in seconds after the master no longer have any slaves connected for "
          "the master to free the replication backlog. A value of 0 means to never release the backlog.",
          "integer", "0-", True, IMM),
        p("repl-timeout", "60",
          "The timeout in seconds for bulk transfer I/O during sync and master timeout from the "
          "perspective of the slave, and slave timeout from the perspective of the master.",
          "integer", "11-", True, IMM),
    ]
    return ps


def drop(ps, *names):
    names = set(names)
    left = [x for x in ps if x["ParameterName"] not in names]
    assert len(left) == len(ps) - len(names), names
    return left


def change(ps, name, **kw):
    for x in ps:
        if x["ParameterName"] == name:
            for k, v in kw.items():
                if v is None:
                    x.pop(k, None)
                else:
                    x[k] = v
            return ps
    raise KeyError(name)


def rename(ps, old, new, desc=None):
    for x in ps:
        if x["ParameterName"] == old:
            x["ParameterName"] = new
            if desc:
                x["Description"] = desc
            return ps
    raise KeyError(old)


def redis32():
    ps = drop(redis28(), "list-max-ziplist-entries", "list-max-ziplist-value")
    # 3.2.4: activerehashing and databases may be changed only while the group is
    # attached to no cluster; appendonly/appendfsync/repl-timeout fixed.
    change(ps, "activerehashing", IsModifiable=False, ConditionallyModifiable=True)
    change(ps, "databases", IsModifiable=False, ConditionallyModifiable=True)
    change(ps, "appendonly", IsModifiable=False)
    change(ps, "appendfsync", IsModifiable=False)
    change(ps, "repl-timeout", IsModifiable=False)
    change(ps, "tcp-keepalive", ParameterValue="300")
    ps += [
        p("cluster-enabled", "no", "Enable cluster mode", "string", YN, False, RB),
        p("cluster-require-full-coverage", "no",
          "Whether cluster becomes unavailable if one or more slots are not covered", "string", YN,
          True, IMM),
        p("hll-sparse-max-bytes", "3000", "HyperLogLog sparse representation bytes limit",
          "integer", "1-16000", True, IMM),
        p("list-compress-depth", "0",
          "Number of quicklist ziplist nodes from each side of the list to exclude from "
          "compression. The head and tail of the list are always uncompressed for fast push/pop "
          "operations", "integer", "0-", True, IMM),
        p("list-max-ziplist-size", "-2",
          "The number of entries allowed per internal list node can be specified as a fixed "
          "maximum size or a maximum number of elements", "integer", "-5,-4,-3,-2,-1,1-", False, IMM),
    ]
    return ps


def redis40():
    ps = redis32()
    change(ps, "maxmemory-policy", AllowedValues=POLICY_40)
    ps += [
        p("active-defrag-cycle-max", "75", "Maximal effort for defrag in CPU percentage",
          "integer", "1-75", True, IMM),
        p("active-defrag-cycle-min", "25", "Minimal effort for defrag in CPU percentage",
          "integer", "1-75", True, IMM),
        p("active-defrag-ignore-bytes", "104857600",
          "Minimum amount of fragmentation waste to start active defrag", "integer", "1048576-",
          True, IMM),
        p("active-defrag-threshold-lower", "10",
          "Minimum percentage of fragmentation to start active defrag", "integer", "1-100", True, IMM),
        p("active-defrag-threshold-upper", "100",
          "Maximum percentage of fragmentation at which we use maximum effort", "integer", "1-100",
          True, IMM),
        p("activedefrag", "no", "Enabled active memory defragmentation", "string", YN, True, IMM),
        p("client-query-buffer-limit", "1073741824", "Max size of a single client query buffer",
          "integer", "1048576-1073741824", True, IMM),
        p("lazyfree-lazy-eviction", "no", "Perform an asynchronous delete on evictions", "string",
          YN, True, IMM),
        p("lazyfree-lazy-expire", "no", "Perform an asynchronous delete on expired keys", "string",
          YN, True, IMM),
        p("lazyfree-lazy-server-del", "no", "Perform an asynchronous delete on key updates",
          "string", YN, True, IMM),
        p("lfu-decay-time", "1",
          "The amount of time in minutes to decrement the key counter for LFU eviction policy",
          "integer", "0-", True, IMM),
        p("lfu-log-factor", "10",
          "The log factor for incrementing key counter for LFU eviction policy", "integer", "1-",
          True, IMM),
        p("proto-max-bulk-len", "536870912", "Max size of a single element request", "integer",
          "1048576-536870912", True, IMM),
        p("slave-lazy-flush", "no", "Perform an asynchronous flushDB during slave sync", "string",
          YN, False, IMM),
    ]
    return ps


def redis50():
    ps = drop(redis40(), "repl-timeout", "reserved-memory")
    rename(ps, "client-output-buffer-limit-slave-soft-seconds",
           "client-output-buffer-limit-replica-soft-seconds",
           "Replica client output buffer soft limit in seconds.")
    rename(ps, "close-on-slave-write", "close-on-replica-write",
           "If enabled, clients who attempt to write to a read-only replica will be disconnected. "
           "Applicable to 2.8.23 and higher.")
    change(ps, "close-on-replica-write", MinimumEngineVersion=None)
    rename(ps, "min-slaves-max-lag", "min-replicas-max-lag",
           "The maximum amount of replica lag in seconds beyond which the master would stop taking "
           "writes. A value of 0 means the master always takes writes.")
    rename(ps, "min-slaves-to-write", "min-replicas-to-write",
           "The minimum number of replicas that must be present with lag no greater than "
           "min-replicas-max-lag for master to take writes. Setting this to 0 means the master "
           "always takes writes.")
    rename(ps, "slave-allow-chaining", "replica-allow-chaining",
           "Configures if chaining of replicas is allowed")
    rename(ps, "slave-lazy-flush", "replica-lazy-flush",
           "Perform an asynchronous flushDB during replica sync")
    change(ps, "active-defrag-cycle-min", ParameterValue="5")
    ps += [
        p("active-defrag-max-scan-fields", "1000",
          "Maximum number of set/hash/zset/list fields that will be processed from the main "
          "dictionary scan", "integer", "1-1000000", True, IMM),
        p("lua-replicate-commands", "yes", "Always enable Lua effect replication or not", "string",
          YN, True, IMM),
        p("rename-commands", "", "Redis commands that can be dynamically renamed by the customer",
          "string", RENAMABLE_50, True, IMM, minver="5.0.3"),
        p("replica-ignore-maxmemory", "yes",
          "Determines if replica ignores maxmemory setting by not evicting items independent from "
          "the master", "string", YN, False, IMM),
        p("stream-node-max-bytes", "4096", "The maximum size of a single node in a stream in bytes",
          "integer", "0-", True, IMM),
        p("stream-node-max-entries", "100",
          "The maximum number of items a single node in a stream can contain", "integer", "0-",
          True, IMM),
    ]
    return ps


def redis6x():
    ps = drop(redis50(), "lua-replicate-commands")
    change(ps, "rename-commands", MinimumEngineVersion=None)
    ps += [
        p("acl-pubsub-default", "allchannels",
          "Default pubsub channel permissions for ACL users deployed to this cluster.", "string",
          "resetchannels,allchannels", True, IMM, minver="6.2.0"),
        p("acllog-max-len", "128", "The max number of entries in the ACL log.", "integer",
          "1-10000", True, IMM),
        p("active-expire-effort", "1",
          "The amount of effort that redis uses to expire items in the active expiration job.",
          "integer", "1-10", True, IMM),
        p("cluster-allow-reads-when-down", "no",
          "Allow nodes to serve reads while the cluster is marked as down.", "string", YN, True, IMM),
        p("lazyfree-lazy-user-del", "no",
          "Specify whether the default behavior of DEL command acts the same as UNLINK.", "string",
          YN, True, IMM),
        p("tracking-table-max-keys", "1000000",
          "The maximum number of keys allowed for the tracking table for client side caching.",
          "integer", "1-100000000", True, IMM),
    ]
    return ps


def redis7():
    ps = drop(redis6x(), "hash-max-ziplist-entries", "hash-max-ziplist-value",
              "zset-max-ziplist-entries", "zset-max-ziplist-value", "list-max-ziplist-size")
    change(ps, "acl-pubsub-default", MinimumEngineVersion=None)
    ps += [
        p("cluster-allow-pubsubshard-when-down", "yes",
          "Allow nodes to serve pubsub shard traffic while the cluster is marked as down, as long "
          "as the node believes it owns the slots.", "string", YN, True, IMM),
        p("cluster-preferred-endpoint-type", "tls-dynamic",
          "The endpoint type a node advertises for MOVED/ASKING redirects and in CLUSTER SLOTS "
          "and CLUSTER SHARDS.", "string", "ip,tls-dynamic", True, IMM),
        p("hash-max-listpack-entries", "512",
          "The maximum number of hash entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("hash-max-listpack-value", "64",
          "The threshold of biggest hash entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("latency-tracking", "no",
          "Track per-command latencies and export percentile distributions via INFO latencystats.",
          "string", YN, True, IMM),
        p("list-max-listpack-size", "-2",
          "The number of entries allowed per internal list node can be specified as a fixed "
          "maximum size or a maximum number of elements", "integer", "-5,-4,-3,-2,-1,1-", False, IMM),
        p("zset-max-listpack-entries", "128",
          "The maximum number of sorted set entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
        p("zset-max-listpack-value", "64",
          "The threshold of biggest sorted set entries in order for the dataset to be compressed.",
          "integer", "0-", True, IMM),
    ]
    return ps


def valkey7():
    return redis7()


def valkey8():
    ps = drop(valkey7(), "lazyfree-lazy-eviction", "lazyfree-lazy-expire",
              "lazyfree-lazy-server-del", "lazyfree-lazy-user-del", "replica-lazy-flush")
    change(ps, "repl-backlog-size", ParameterValue="10485760")
    change(ps, "maxmemory-samples", AllowedValues="1-64")
    ps += [
        p("extended-redis-compatibility", "yes",
          "Make Valkey pretend to be Redis OSS 7.2 (HELLO, INFO and error texts) for tools and "
          "clients that check the server name.", "string", YN, True, IMM),
        p("commandlog-request-larger-than", "1048576",
          "The minimum size, in bytes, of a request for it to be logged by the command log.",
          "integer", "-1-", True, IMM, minver="8.1.0"),
        p("commandlog-large-request-max-len", "128",
          "The maximum length of the command log for large requests.", "integer", "0-1024", True,
          IMM, minver="8.1.0"),
        p("commandlog-reply-larger-than", "1048576",
          "The minimum size, in bytes, of a reply for its command to be logged by the command log.",
          "integer", "-1-", True, IMM, minver="8.1.0"),
        p("commandlog-large-reply-max-len", "128",
          "The maximum length of the command log for large replies.", "integer", "0-1024", True,
          IMM, minver="8.1.0"),
    ]
    return ps


# --------------------------------------------------------------- Memcached

def memcached14():
    return [
        p("backlog_queue_limit", "1024", "The backlog queue limit.", "integer", "1-10000", False, RB),
        p("binding_protocol", "auto", "Binding protocol.", "string", "auto,binary,ascii", True, RB),
        p("cas_disabled", "0", "Disable the use of CAS.", "boolean", "0,1", True, RB),
        p("chunk_size", "48",
          "Minimum allocated space for a item's key, value, and flags.", "integer", "1-", True, RB),
        p("chunk_size_growth_factor", "1.25",
          "The growth factor that controls the size of each successive memcached chunk.",
          "numeric", "1-", True, RB),
        p("config_max", "16", "The maximum number of ElastiCache configuration entries.",
          "integer", "1-16", False, RB, minver="1.4.14"),
        p("config_size_max", "65536", "The maximum size of the configuration entries, in bytes.",
          "integer", "1-65536", False, RB, minver="1.4.14"),
        p("disable_flush_all", "0", "Disable flush_all command.", "boolean", "0,1", True, RB,
          minver="1.4.24"),
        p("error_on_memory_exhausted", "0",
          "Return an error when memory is exhausted, rather than evicting items.", "boolean",
          "0,1", True, RB),
        p("expirezero_does_not_evict", "0",
          "Items with an expiration time of 0 are not evicted when lru_maintainer is enabled.",
          "boolean", "0,1", True, RB, minver="1.4.24"),
        p("hash_algorithm", "jenkins", "The hash algorithm to use.", "string", "jenkins,murmur3",
          True, RB, minver="1.4.24"),
        p("hashpower_init", "16",
          "The initial size of the hash table, expressed as a power of two.", "integer", "16",
          False, RB, minver="1.4.14"),
        p("idle_timeout", "0",
          "Seconds a client may stay idle before the connection is closed; 0 disables.", "integer",
          "0-86400", True, RB, minver="1.4.33"),
        p("large_memory_pages", "0", "Try to use large memory pages.", "boolean", "0,1", False, RB),
        p("lock_down_paged_memory", "0", "Lock down all paged memory.", "boolean", "0,1", False, RB),
        p("lru_crawler", "0", "Enable the LRU crawler that reclaims expired items.", "boolean",
          "0,1", True, RB, minver="1.4.24"),
        p("lru_maintainer", "0",
          "Enable the background thread that moves items between LRUs as capacities are reached.",
          "boolean", "0,1", True, RB, minver="1.4.24"),
        p("max_item_size", "1048576",
          "The size of the largest item storable in the cache, in bytes.", "integer",
          "1048576-134217728", True, RB),
        p("max_simultaneous_connections", "65000", "The maximum number of simultaneous connections.",
          "integer", "3-65000", False, RB),
        p("maxconns_fast", "0",
          "Immediately close new connections if over maximum simultaneous connections limit.",
          "boolean", "0,1", True, RB, minver="1.4.14"),
        p("maximize_core_file_limit", "0", "Maximize core file limit.", "boolean", "0,1", False, RB),
        p("memcached_connections_overhead", "100",
          "The amount of memory to reserve for memcached connections and other miscellaneous "
          "overhead.", "integer", "0-100000", True, RB),
        p("modern", "1",
          "Alias for enabling slab_reassign, slab_automove, lru_crawler, lru_maintainer, "
          "maxconns_fast and hash_algorithm=murmur3.", "boolean", "0,1", True, RB, minver="1.4.33"),
        p("requests_per_event", "20", "The maximum number of requests per event per connection.",
          "integer", "20", False, RB),
        p("slab_automove", "0",
          "Slab automove algorithm: 0 disables, 1 moves slabs conservatively, 2 moves slabs "
          "aggressively on every eviction.", "integer", "0-2", True, RB, minver="1.4.14"),
        p("slab_chunk_max", "524288",
          "The maximum size of a slab chunk, in bytes; larger items are split over several chunks.",
          "integer", "1-", True, RB, minver="1.4.33"),
        p("slab_reassign", "0", "Enable slab reassignment.", "boolean", "0,1", True, RB,
          minver="1.4.14"),
        p("track_sizes", "0", "Track the sizes each slab group consumes (stats sizes).", "boolean",
          "0,1", True, RB, minver="1.4.33"),
        p("watch", "1", "Allow the watch command to stream fetch, eviction and mutation logs.",
          "boolean", "0,1", True, IMM, minver="1.4.33"),
        p("watcher_logbuf_size", "256", "Per-watcher log buffer size, in kilobytes.", "integer",
          "1-", True, RB, minver="1.4.33"),
        p("worker_logbuf_size", "64", "Per-worker-thread log buffer size, in kilobytes.", "integer",
          "1-", True, RB, minver="1.4.33"),
    ]


def memcached15():
    ps = drop(memcached14(), "expirezero_does_not_evict", "modern")
    ps += [
        p("inline_ascii_resp", "0",
          "Store numbers from VALUE response inside an item, using up to 24 bytes.", "boolean",
          "0,1", True, RB),
        p("no_modern", "1",
          "Alias for disabling slab_reassign, lru_maintainer_thread, lru_segmented and "
          "maxconns_fast; also sets hash_algorithm to jenkins.", "boolean", "0,1", True, RB),
    ]
    return ps


def memcached16():
    return memcached15()


# ---------------------------------------------------------- node types

# (node type, Redis/Valkey maxmemory bytes, memcached max_cache_memory MiB, num_threads)
# AWS docs "Redis OSS node-type specific parameters", "Valkey node-type specific
# parameters" and "Memcached node-type specific parameters".
NODE_TYPES = [
    ("cache.t2.micro", 581959680, 555, 1),
    ("cache.t2.small", 1665138688, 1588, 1),
    ("cache.t2.medium", 3461349376, 3301, 2),
    ("cache.t3.micro", 536870912, 512, 2),
    ("cache.t3.small", 1471026299, 1402, 2),
    ("cache.t3.medium", 3317862236, 3364, 2),
    ("cache.t4g.micro", 536870912, 512, 2),
    ("cache.t4g.small", 1471026299, 1402, 2),
    ("cache.t4g.medium", 3317862236, 3164, 2),
    ("cache.m4.large", 6892593152, 6573, 2),
    ("cache.m4.xlarge", 15328501760, 11496, 4),
    ("cache.m4.2xlarge", 31889126359, 30412, 8),
    ("cache.m4.4xlarge", 65257290629, 62234, 16),
    ("cache.m4.10xlarge", 166047614239, 158355, 40),
    ("cache.m5.large", 6854542746, 6537, 2),
    ("cache.m5.xlarge", 13891921715, 13248, 4),
    ("cache.m5.2xlarge", 27966669210, 26671, 8),
    ("cache.m5.4xlarge", 56116178125, 53516, 16),
    ("cache.m5.12xlarge", 168715971994, 160900, 48),
    ("cache.m5.24xlarge", 337500562842, 321865, 96),
    ("cache.m6g.large", 6854542746, 6537, 2),
    ("cache.m6g.xlarge", 13891921715, 13248, 4),
    ("cache.m6g.2xlarge", 27966669210, 26671, 8),
    ("cache.m6g.4xlarge", 56116178125, 53516, 16),
    ("cache.m6g.8xlarge", 111325552312, 107000, 32),
    ("cache.m6g.12xlarge", 168715971994, 160900, 48),
    ("cache.m6g.16xlarge", 225000375228, 214577, 64),
    ("cache.m7g.large", 6854542746, 6537, 2),
    ("cache.m7g.xlarge", 13891921715, 13248, 4),
    ("cache.m7g.2xlarge", 27966669210, 26671, 8),
    ("cache.m7g.4xlarge", 56116178125, 53516, 16),
    ("cache.m7g.8xlarge", 111325552312, 107000, 32),
    ("cache.m7g.12xlarge", 168715971994, 160900, 48),
    ("cache.m7g.16xlarge", 225000375228, 214577, 64),
    ("cache.r4.large", 13201781556, 12590, 2),
    ("cache.r4.xlarge", 26898228839, 25652, 4),
    ("cache.r4.2xlarge", 54197537997, 51686, 8),
    ("cache.r4.4xlarge", 108858546586, 103815, 16),
    ("cache.r4.8xlarge", 218255432090, 208144, 32),
    ("cache.r4.16xlarge", 437021573120, 416776, 64),
    ("cache.r5.large", 14037181030, 13387, 2),
    ("cache.r5.xlarge", 28261849702, 26953, 4),
    ("cache.r5.2xlarge", 56711183565, 54084, 8),
    ("cache.r5.4xlarge", 113609865216, 108347, 16),
    ("cache.r5.12xlarge", 341206346547, 325400, 48),
    ("cache.r5.24xlarge", 682485973811, 650869, 96),
    ("cache.r6g.large", 14037181030, 13387, 2),
    ("cache.r6g.xlarge", 28261849702, 26953, 4),
    ("cache.r6g.2xlarge", 56711183565, 54084, 8),
    ("cache.r6g.4xlarge", 113609865216, 108347, 16),
    ("cache.r6g.8xlarge", 225000375228, 214577, 32),
    ("cache.r6g.12xlarge", 341206346547, 325400, 48),
    ("cache.r6g.16xlarge", 450000750456, 429154, 64),
    ("cache.r7g.large", 14037181030, 13387, 2),
    ("cache.r7g.xlarge", 28261849702, 26953, 4),
    ("cache.r7g.2xlarge", 56711183565, 54084, 8),
    ("cache.r7g.4xlarge", 113609865216, 108347, 16),
    ("cache.r7g.8xlarge", 225000375228, 214577, 32),
    ("cache.r7g.12xlarge", 341206346547, 325400, 48),
    ("cache.r7g.16xlarge", 450000750456, 429154, 64),
]

# Replica output buffer limits AWS publishes (Redis node-type table of the
# pre-2023 docs); for the other node types maxmemory / 10, rounded, as these are.
REPLICA_BUFFER = {
    "cache.t2.micro": 58195968, "cache.t2.small": 166513868, "cache.t2.medium": 346134937,
    "cache.m4.large": 689259315, "cache.m4.xlarge": 1532850176, "cache.m4.2xlarge": 3188912636,
    "cache.m4.4xlarge": 6525729063, "cache.m4.10xlarge": 16604761424,
    "cache.m5.large": 685454275, "cache.m5.xlarge": 1389192172, "cache.m5.2xlarge": 2796666921,
    "cache.m5.4xlarge": 5611617812, "cache.m5.12xlarge": 16871597199,
    "cache.m5.24xlarge": 33750056284,
    "cache.r4.large": 1320178155, "cache.r4.xlarge": 2689822883, "cache.r4.2xlarge": 5419753799,
    "cache.r4.4xlarge": 10885854658, "cache.r4.8xlarge": 21825543209,
    "cache.r4.16xlarge": 43702157312,
    "cache.r5.large": 1403718103, "cache.r5.xlarge": 2826184970, "cache.r5.2xlarge": 5671118356,
    "cache.r5.4xlarge": 11360986522, "cache.r5.12xlarge": 34120634655,
    "cache.r5.24xlarge": 68248597381,
}


def node_types_json():
    out = []
    for name, maxmem, mc_mem, threads in NODE_TYPES:
        buf = REPLICA_BUFFER.get(name, (maxmem + 5) // 10)
        out.append({
            "CacheNodeType": name,
            "maxmemory": str(maxmem),
            "replica-output-buffer-limit": str(buf),
            "max_cache_memory": str(mc_mem),
            "num_threads": str(threads),
        })
    return out


def nts(name, desc, dtype, allowed, modifiable, change, column, minver=None):
    d = p(name, None, desc, dtype, allowed, modifiable, change, minver)
    d["ValuesFrom"] = column
    return d


def redis_node_specific(replica_names):
    word = "Replica" if replica_names else "Slave"
    prefix = "replica" if replica_names else "slave"
    return [
        nts(f"client-output-buffer-limit-{prefix}-hard-limit",
            f"{word} client output buffer hard limit in bytes.", "integer", "0-", False, IMM,
            "replica-output-buffer-limit"),
        nts(f"client-output-buffer-limit-{prefix}-soft-limit",
            f"{word} client output buffer soft limit in bytes.", "integer", "0-", False, IMM,
            "replica-output-buffer-limit"),
        nts("maxmemory",
            "The maximum configurable amount of memory to use to store items, in bytes.",
            "integer", "0-", False, IMM, "maxmemory"),
    ]


def memcached_node_specific():
    return [
        nts("max_cache_memory", "The maximum configurable amount of memory to use to store items, in megabytes.",
            "integer", "0-", False, RB, "max_cache_memory"),
        nts("num_threads", "The number of memcached threads to use.", "integer", "1-", False, RB,
            "num_threads"),
    ]


FAMILIES = [
    # name, engine, base MinimumEngineVersion, params, node-type specific, has .cluster.on
    ("memcached1.4", "memcached", "1.4.5", memcached14, memcached_node_specific, False),
    ("memcached1.5", "memcached", "1.5.10", memcached15, memcached_node_specific, False),
    ("memcached1.6", "memcached", "1.6.6", memcached16, memcached_node_specific, False),
    ("redis2.6", "redis", "2.6.13", redis26, lambda: redis_node_specific(False), False),
    ("redis2.8", "redis", "2.8.6", redis28, lambda: redis_node_specific(False), False),
    ("redis3.2", "redis", "3.2.4", redis32, lambda: redis_node_specific(False), True),
    ("redis4.0", "redis", "4.0.10", redis40, lambda: redis_node_specific(False), True),
    ("redis5.0", "redis", "5.0.0", redis50, lambda: redis_node_specific(True), True),
    ("redis6.x", "redis", "6.0.0", redis6x, lambda: redis_node_specific(True), True),
    ("redis7", "redis", "7.0.0", redis7, lambda: redis_node_specific(True), True),
    ("valkey7", "valkey", "7.2.4", valkey7, lambda: redis_node_specific(True), True),
    ("valkey8", "valkey", "8.0.0", valkey8, lambda: redis_node_specific(True), True),
]


KEY_ORDER = ["ParameterName", "ParameterValue", "Description", "Source", "DataType",
             "AllowedValues", "IsModifiable", "ConditionallyModifiable", "MinimumEngineVersion",
             "ChangeType", "ValuesFrom"]


def canonical(x):
    assert set(x) <= set(KEY_ORDER), x
    return {k: x[k] for k in KEY_ORDER if k in x}


def main():
    os.makedirs(DATA, exist_ok=True)
    for name, engine, base, params, node_specific, cluster_on in FAMILIES:
        ps = params()
        ns = node_specific()
        for x in ps + ns:
            if x.get("MinimumEngineVersion") is None:
                x["MinimumEngineVersion"] = base
        ps = [canonical(x) for x in ps]
        ns = [canonical(x) for x in ns]
        ps.sort(key=lambda x: x["ParameterName"])
        names = [x["ParameterName"] for x in ps]
        assert len(names) == len(set(names)), name
        doc = {
            "CacheParameterGroupFamily": name,
            "Engine": engine,
            "ClusterOnVariant": cluster_on,
            "Parameters": ps,
            "CacheNodeTypeSpecificParameters": ns,
        }
        with open(os.path.join(DATA, f"{name}.json"), "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    with open(os.path.join(DATA, "node-types.json"), "w") as f:
        json.dump(node_types_json(), f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
