//! Data taken from redis-server 7.0.15's COMMAND output (generated once, by hand-run script):
//! each command's explicit ACL categories (those its JSON file lists; the ones its flags imply
//! are added by `category::of`, as Redis's `setImplicitACLCategories`), and the key specs of
//! the commands whose keys the ACL checks read with their access flags.

use super::category::{
    ADMIN, BITMAP, CONNECTION, DANGEROUS, GEO, HASH, HYPERLOGLOG, KEYSPACE, LIST, SCRIPTING, SET,
    SORTEDSET, STREAM, STRING, TRANSACTION,
};
use crate::commands::{Begin, Find, KeySpec};

/// `(full name, explicit categories)`, sorted by name.
pub static EXPLICIT_CATEGORIES: &[(&str, u32)] = &[
    ("append", STRING),
    ("asking", CONNECTION),
    ("auth", CONNECTION),
    ("bitcount", BITMAP),
    ("bitfield", BITMAP),
    ("bitfield_ro", BITMAP),
    ("bitop", BITMAP),
    ("bitpos", BITMAP),
    ("blmove", LIST),
    ("blmpop", LIST),
    ("blpop", LIST),
    ("brpop", LIST),
    ("brpoplpush", LIST),
    ("bzmpop", SORTEDSET),
    ("bzpopmax", SORTEDSET),
    ("bzpopmin", SORTEDSET),
    ("client|caching", CONNECTION),
    ("client|capa", CONNECTION),
    ("client|getname", CONNECTION),
    ("client|getredir", CONNECTION),
    ("client|help", CONNECTION),
    ("client|id", CONNECTION),
    ("client|info", CONNECTION),
    ("client|kill", CONNECTION),
    ("client|list", CONNECTION),
    ("client|no-evict", CONNECTION),
    ("client|no-touch", CONNECTION),
    ("client|pause", CONNECTION),
    ("client|reply", CONNECTION),
    ("client|setname", CONNECTION),
    ("client|tracking", CONNECTION),
    ("client|trackinginfo", CONNECTION),
    ("client|unblock", CONNECTION),
    ("client|unpause", CONNECTION),
    ("command", CONNECTION),
    ("command|count", CONNECTION),
    ("command|docs", CONNECTION),
    ("command|getkeys", CONNECTION),
    ("command|getkeysandflags", CONNECTION),
    ("command|help", CONNECTION),
    ("command|info", CONNECTION),
    ("command|list", CONNECTION),
    ("copy", KEYSPACE),
    ("dbsize", KEYSPACE),
    ("decr", STRING),
    ("decrby", STRING),
    ("del", KEYSPACE),
    ("discard", TRANSACTION),
    ("dump", KEYSPACE),
    ("echo", CONNECTION),
    ("eval", SCRIPTING),
    ("eval_ro", SCRIPTING),
    ("evalsha", SCRIPTING),
    ("evalsha_ro", SCRIPTING),
    ("exec", TRANSACTION),
    ("exists", KEYSPACE),
    ("expire", KEYSPACE),
    ("expireat", KEYSPACE),
    ("expiretime", KEYSPACE),
    ("fcall", SCRIPTING),
    ("fcall_ro", SCRIPTING),
    ("flushall", KEYSPACE | DANGEROUS),
    ("flushdb", KEYSPACE | DANGEROUS),
    ("function|delete", SCRIPTING),
    ("function|dump", SCRIPTING),
    ("function|flush", SCRIPTING),
    ("function|help", SCRIPTING),
    ("function|kill", SCRIPTING),
    ("function|list", SCRIPTING),
    ("function|load", SCRIPTING),
    ("function|restore", SCRIPTING),
    ("function|stats", SCRIPTING),
    ("geoadd", GEO),
    ("geodist", GEO),
    ("geohash", GEO),
    ("geopos", GEO),
    ("georadius", GEO),
    ("georadius_ro", GEO),
    ("georadiusbymember", GEO),
    ("georadiusbymember_ro", GEO),
    ("geosearch", GEO),
    ("geosearchstore", GEO),
    ("get", STRING),
    ("getbit", BITMAP),
    ("getdel", STRING),
    ("getex", STRING),
    ("getrange", STRING),
    ("getset", STRING),
    ("hdel", HASH),
    ("hello", CONNECTION),
    ("hexists", HASH),
    ("hget", HASH),
    ("hgetall", HASH),
    ("hincrby", HASH),
    ("hincrbyfloat", HASH),
    ("hkeys", HASH),
    ("hlen", HASH),
    ("hmget", HASH),
    ("hmset", HASH),
    ("hrandfield", HASH),
    ("hscan", HASH),
    ("hset", HASH),
    ("hsetnx", HASH),
    ("hstrlen", HASH),
    ("hvals", HASH),
    ("incr", STRING),
    ("incrby", STRING),
    ("incrbyfloat", STRING),
    ("info", DANGEROUS),
    ("keys", KEYSPACE | DANGEROUS),
    ("lastsave", ADMIN | DANGEROUS),
    ("lcs", STRING),
    ("lindex", LIST),
    ("linsert", LIST),
    ("llen", LIST),
    ("lmove", LIST),
    ("lmpop", LIST),
    ("lpop", LIST),
    ("lpos", LIST),
    ("lpush", LIST),
    ("lpushx", LIST),
    ("lrange", LIST),
    ("lrem", LIST),
    ("lset", LIST),
    ("ltrim", LIST),
    ("mget", STRING),
    ("migrate", KEYSPACE | DANGEROUS),
    ("move", KEYSPACE),
    ("mset", STRING),
    ("msetnx", STRING),
    ("multi", TRANSACTION),
    ("object|encoding", KEYSPACE),
    ("object|freq", KEYSPACE),
    ("object|help", KEYSPACE),
    ("object|idletime", KEYSPACE),
    ("object|refcount", KEYSPACE),
    ("persist", KEYSPACE),
    ("pexpire", KEYSPACE),
    ("pexpireat", KEYSPACE),
    ("pexpiretime", KEYSPACE),
    ("pfadd", HYPERLOGLOG),
    ("pfcount", HYPERLOGLOG),
    ("pfdebug", HYPERLOGLOG),
    ("pfmerge", HYPERLOGLOG),
    ("pfselftest", HYPERLOGLOG),
    ("ping", CONNECTION),
    ("psetex", STRING),
    ("pttl", KEYSPACE),
    ("quit", CONNECTION),
    ("randomkey", KEYSPACE),
    ("readonly", CONNECTION),
    ("readwrite", CONNECTION),
    ("rename", KEYSPACE),
    ("renamenx", KEYSPACE),
    ("reset", CONNECTION),
    ("restore", KEYSPACE | DANGEROUS),
    ("restore-asking", KEYSPACE | DANGEROUS),
    ("role", ADMIN | DANGEROUS),
    ("rpop", LIST),
    ("rpoplpush", LIST),
    ("rpush", LIST),
    ("rpushx", LIST),
    ("sadd", SET),
    ("scan", KEYSPACE),
    ("scard", SET),
    ("script|debug", SCRIPTING),
    ("script|exists", SCRIPTING),
    ("script|flush", SCRIPTING),
    ("script|help", SCRIPTING),
    ("script|kill", SCRIPTING),
    ("script|load", SCRIPTING),
    ("sdiff", SET),
    ("sdiffstore", SET),
    ("select", CONNECTION),
    ("set", STRING),
    ("setbit", BITMAP),
    ("setex", STRING),
    ("setnx", STRING),
    ("setrange", STRING),
    ("sinter", SET),
    ("sintercard", SET),
    ("sinterstore", SET),
    ("sismember", SET),
    ("smembers", SET),
    ("smismember", SET),
    ("smove", SET),
    ("sort", SET | SORTEDSET | LIST | DANGEROUS),
    ("sort_ro", SET | SORTEDSET | LIST | DANGEROUS),
    ("spop", SET),
    ("srandmember", SET),
    ("srem", SET),
    ("sscan", SET),
    ("strlen", STRING),
    ("substr", STRING),
    ("sunion", SET),
    ("sunionstore", SET),
    ("swapdb", KEYSPACE | DANGEROUS),
    ("touch", KEYSPACE),
    ("ttl", KEYSPACE),
    ("type", KEYSPACE),
    ("unlink", KEYSPACE),
    ("unwatch", TRANSACTION),
    ("wait", CONNECTION),
    ("watch", TRANSACTION),
    ("xack", STREAM),
    ("xadd", STREAM),
    ("xautoclaim", STREAM),
    ("xclaim", STREAM),
    ("xdel", STREAM),
    ("xgroup|create", STREAM),
    ("xgroup|createconsumer", STREAM),
    ("xgroup|delconsumer", STREAM),
    ("xgroup|destroy", STREAM),
    ("xgroup|help", STREAM),
    ("xgroup|setid", STREAM),
    ("xinfo|consumers", STREAM),
    ("xinfo|groups", STREAM),
    ("xinfo|help", STREAM),
    ("xinfo|stream", STREAM),
    ("xlen", STREAM),
    ("xpending", STREAM),
    ("xrange", STREAM),
    ("xread", STREAM),
    ("xreadgroup", STREAM),
    ("xrevrange", STREAM),
    ("xsetid", STREAM),
    ("xtrim", STREAM),
    ("zadd", SORTEDSET),
    ("zcard", SORTEDSET),
    ("zcount", SORTEDSET),
    ("zdiff", SORTEDSET),
    ("zdiffstore", SORTEDSET),
    ("zincrby", SORTEDSET),
    ("zinter", SORTEDSET),
    ("zintercard", SORTEDSET),
    ("zinterstore", SORTEDSET),
    ("zlexcount", SORTEDSET),
    ("zmpop", SORTEDSET),
    ("zmscore", SORTEDSET),
    ("zpopmax", SORTEDSET),
    ("zpopmin", SORTEDSET),
    ("zrandmember", SORTEDSET),
    ("zrange", SORTEDSET),
    ("zrangebylex", SORTEDSET),
    ("zrangebyscore", SORTEDSET),
    ("zrangestore", SORTEDSET),
    ("zrank", SORTEDSET),
    ("zrem", SORTEDSET),
    ("zremrangebylex", SORTEDSET),
    ("zremrangebyrank", SORTEDSET),
    ("zremrangebyscore", SORTEDSET),
    ("zrevrange", SORTEDSET),
    ("zrevrangebylex", SORTEDSET),
    ("zrevrangebyscore", SORTEDSET),
    ("zrevrank", SORTEDSET),
    ("zscan", SORTEDSET),
    ("zscore", SORTEDSET),
    ("zunion", SORTEDSET),
    ("zunionstore", SORTEDSET),
];

/// `(full name, key specs)` of every command with keys, sorted by name.
pub static KEY_SPECS: &[(&str, &[KeySpec])] = &[
    (
        "append",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "bitcount",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "bitfield",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update", "variable_flags"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "bitfield_ro",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "bitop",
        &[
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(3),
                find: Find::Range {
                    lastkey: -1,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "bitpos",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "blmove",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RW", "insert"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "blmpop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "blpop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -2,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "brpop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -2,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "brpoplpush",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RW", "insert"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "bzmpop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "bzpopmax",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -2,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "bzpopmin",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -2,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "copy",
        &[
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "decr",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "decrby",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "del",
        &[KeySpec {
            notes: None,
            flags: &["RM", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "dump",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "eval",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "eval_ro",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "evalsha",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "evalsha_ro",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "exists",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "expire",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "expireat",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "expiretime",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "fcall",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "fcall_ro",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(2),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "geoadd",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "geodist",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "geohash",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "geopos",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "georadius",
        &[
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Keyword {
                    keyword: "store",
                    startfrom: 6,
                },
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Keyword {
                    keyword: "storedist",
                    startfrom: 6,
                },
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "georadius_ro",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "georadiusbymember",
        &[
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Keyword {
                    keyword: "store",
                    startfrom: 5,
                },
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Keyword {
                    keyword: "storedist",
                    startfrom: 5,
                },
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "georadiusbymember_ro",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "geosearch",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "geosearchstore",
        &[
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "get",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "getbit",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "getdel",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "getex",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "getrange",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "getset",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hdel",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hexists",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hget",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hgetall",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hincrby",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hincrbyfloat",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hkeys",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hlen",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hmget",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hmset",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hrandfield",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hscan",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hset",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hsetnx",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hstrlen",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "hvals",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "incr",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "incrby",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "incrbyfloat",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lcs",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lindex",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "linsert",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "llen",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lmove",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RW", "insert"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "lmpop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "lpop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lpos",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lpush",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lpushx",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lrange",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lrem",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "lset",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "ltrim",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "memory|usage",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "mget",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "migrate",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete"],
                begin: Begin::Index(3),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete", "incomplete"],
                begin: Begin::Keyword {
                    keyword: "keys",
                    startfrom: -2,
                },
                find: Find::Range {
                    lastkey: -1,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "move",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "mset",
        &[KeySpec {
            notes: None,
            flags: &["OW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 2,
                limit: 0,
            },
        }],
    ),
    (
        "msetnx",
        &[KeySpec {
            notes: None,
            flags: &["OW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 2,
                limit: 0,
            },
        }],
    ),
    (
        "object|encoding",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "object|freq",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "object|idletime",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "object|refcount",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "persist",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "pexpire",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "pexpireat",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "pexpiretime",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "pfadd",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "pfcount",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "pfdebug",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "pfmerge",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "insert"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: -1,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "psetex",
        &[KeySpec {
            notes: None,
            flags: &["OW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "pttl",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "rename",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "renamenx",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["OW", "insert"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "restore",
        &[KeySpec {
            notes: None,
            flags: &["OW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "restore-asking",
        &[KeySpec {
            notes: None,
            flags: &["OW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "rpop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "rpoplpush",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RW", "insert"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "rpush",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "rpushx",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "sadd",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "scard",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "sdiff",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "sdiffstore",
        &[
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: -1,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "set",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update", "variable_flags"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "setbit",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "setex",
        &[KeySpec {
            notes: None,
            flags: &["OW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "setnx",
        &[KeySpec {
            notes: None,
            flags: &["OW", "insert"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "setrange",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "sinter",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "sintercard",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "sinterstore",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "update"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: -1,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "sismember",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "smembers",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "smismember",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "smove",
        &[
            KeySpec {
                notes: None,
                flags: &["RW", "access", "delete"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RW", "insert"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "sort",
        &[
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Unknown,
                find: Find::Unknown,
            },
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Unknown,
                find: Find::Unknown,
            },
        ],
    ),
    (
        "sort_ro",
        &[
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Unknown,
                find: Find::Unknown,
            },
        ],
    ),
    (
        "spop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "spublish",
        &[KeySpec {
            notes: None,
            flags: &["not_key"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "srandmember",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "srem",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "sscan",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "ssubscribe",
        &[KeySpec {
            notes: None,
            flags: &["not_key"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "strlen",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "substr",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "sunion",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "sunionstore",
        &[
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: -1,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "sunsubscribe",
        &[KeySpec {
            notes: None,
            flags: &["not_key"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "touch",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "ttl",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "type",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "unlink",
        &[KeySpec {
            notes: None,
            flags: &["RM", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "watch",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xack",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xadd",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xautoclaim",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xclaim",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xdel",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xgroup|create",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xgroup|createconsumer",
        &[KeySpec {
            notes: None,
            flags: &["RW", "insert"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xgroup|delconsumer",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xgroup|destroy",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xgroup|setid",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xinfo|consumers",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xinfo|groups",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xinfo|stream",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(2),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xlen",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xpending",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xrange",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xread",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Keyword {
                keyword: "streams",
                startfrom: 1,
            },
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 2,
            },
        }],
    ),
    (
        "xreadgroup",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Keyword {
                keyword: "streams",
                startfrom: 4,
            },
            find: Find::Range {
                lastkey: -1,
                keystep: 1,
                limit: 2,
            },
        }],
    ),
    (
        "xrevrange",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xsetid",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "xtrim",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zadd",
        &[KeySpec {
            notes: None,
            flags: &["RW", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zcard",
        &[KeySpec {
            notes: None,
            flags: &["RO"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zcount",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zdiff",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "zdiffstore",
        &[
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Keynum {
                    keynumidx: 0,
                    firstkey: 1,
                    keystep: 1,
                },
            },
        ],
    ),
    (
        "zincrby",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "update"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zinter",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "zintercard",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "zinterstore",
        &[
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Keynum {
                    keynumidx: 0,
                    firstkey: 1,
                    keystep: 1,
                },
            },
        ],
    ),
    (
        "zlexcount",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zmpop",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "zmscore",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zpopmax",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zpopmin",
        &[KeySpec {
            notes: None,
            flags: &["RW", "access", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrandmember",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrange",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrangebylex",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrangebyscore",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrangestore",
        &[
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
        ],
    ),
    (
        "zrank",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrem",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zremrangebylex",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zremrangebyrank",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zremrangebyscore",
        &[KeySpec {
            notes: None,
            flags: &["RW", "delete"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrevrange",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrevrangebylex",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrevrangebyscore",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zrevrank",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zscan",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zscore",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Range {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        }],
    ),
    (
        "zunion",
        &[KeySpec {
            notes: None,
            flags: &["RO", "access"],
            begin: Begin::Index(1),
            find: Find::Keynum {
                keynumidx: 0,
                firstkey: 1,
                keystep: 1,
            },
        }],
    ),
    (
        "zunionstore",
        &[
            KeySpec {
                notes: None,
                flags: &["OW", "update"],
                begin: Begin::Index(1),
                find: Find::Range {
                    lastkey: 0,
                    keystep: 1,
                    limit: 0,
                },
            },
            KeySpec {
                notes: None,
                flags: &["RO", "access"],
                begin: Begin::Index(2),
                find: Find::Keynum {
                    keynumidx: 0,
                    firstkey: 1,
                    keystep: 1,
                },
            },
        ],
    ),
];
