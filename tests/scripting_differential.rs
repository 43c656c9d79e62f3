//! Lua scripting against a real `redis-server`: the same EVAL/EVALSHA/FCALL/SCRIPT/
//! FUNCTION commands on both, replies compared byte for byte, in RESP2 and RESP3, with one
//! and two shards. Covers Redis's type conversions both ways, error texts (with the
//! `script: <sha>, on @user_script:<line>.` suffix), `pcall`, the sandbox, the bundled
//! `cjson`, `cmsgpack`, `bit` and `struct` libraries, script flags and EVAL_RO.
//!
//! Keys used inside scripts carry the `{t}` hashtag, so with two shards every key of a
//! script lives on one shard (a script's keys must; see `scripting_shards.rs`).
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Conn, Server, show};

/// Scripts run with `EVAL <script> 1 {t}` (or with the keys given after `|`).
const SCRIPTS: &[&str] = &[
    // Lua -> reply
    "return 1",
    "return -3.99",
    "return 3.99",
    "return 'str'",
    "return true",
    "return false",
    "return nil",
    "return {1,2,3,'ciao',{1,2}}",
    "return {1,2,nil,3}",
    "return {}",
    "return {err='x'}",
    "return {err='My Error'}",
    "return {ok='fine'}",
    "return {1, {err='inner'}, {ok='o'}, false, true}",
    "return redis.error_reply('My Error')",
    "return redis.error_reply('x')",
    "return redis.error_reply('-ERR x y')",
    "return redis.status_reply('FINE')",
    "return {double=3.5}",
    "return {double=1e300}",
    "return {big_number='123456789012345678901234567890'}",
    "return {map={a=1}}",
    "return {set={a=true}}",
    "return {verbatim_string={format='txt', string='hi'}}",
    "return 1e20",
    "return -0.5",
    "return 2^53",
    "redis.setresp(3); return true",
    "redis.setresp(3); return false",
    "redis.setresp(3); return nil",
    // reply -> Lua
    "redis.call('set','{t}a','1'); return redis.call('get','{t}a')",
    "return redis.call('incr','{t}n')",
    "return redis.call('get','{t}missing')",
    "return type(redis.call('get','{t}missing'))",
    "return redis.call('set','{t}s','v')",
    "return type(redis.call('set','{t}s','v'))",
    "return redis.call('set','{t}s','v')['ok']",
    "redis.call('rpush','{t}l','a','b','c'); return redis.call('lrange','{t}l',0,-1)",
    "redis.call('hset','{t}h','f','v'); return redis.call('hgetall','{t}h')",
    "redis.setresp(3); redis.call('hset','{t}h','f','v'); return redis.call('hgetall','{t}h')",
    "redis.setresp(3); redis.call('hset','{t}h','f','v'); return redis.call('hgetall','{t}h')['map']['f']",
    "redis.setresp(3); return type(redis.call('get','{t}missing'))",
    "redis.setresp(3); redis.call('zadd','{t}z','1.5','m'); return redis.call('zscore','{t}z','m')",
    "redis.setresp(3); redis.call('zadd','{t}z','1.5','m'); return redis.call('zscore','{t}z','m')['double']",
    "redis.setresp(3); redis.call('sadd','{t}set','x'); return redis.call('smembers','{t}set')",
    "redis.setresp(3); return redis.call('exists','{t}missing')",
    "return redis.call('mget','{t}a','{t}missing','{t}b')",
    "redis.call('mset','{t}a','1','{t}b','2'); return redis.call('mget','{t}a','{t}b')",
    "return redis.call('ping')",
    "return redis.call('echo','x')",
    "redis.call('select', 3); redis.call('set','{t}in3','y'); return redis.call('exists','{t}in3')",
    "return redis.call('exists','{t}in3')",
    "return redis.call('get', 12)",
    // replies pushed straight from their RESP bytes: nesting, nulls, numbers, statuses
    "redis.call('xadd','{t}x','1-1','a','1','b','2'); redis.call('xadd','{t}x','2-1','c','3'); return redis.call('xrange','{t}x','-','+')",
    "redis.setresp(3); redis.call('xadd','{t}x2','1-1','a','1'); return redis.call('xrange','{t}x2','-','+')",
    "return {redis.call('type','{t}x'), redis.call('type','{t}missing')}",
    "return type(redis.call('type','{t}missing'))",
    "redis.call('del','{t}l'); redis.call('rpush','{t}l','a','','c'); return redis.call('lrange','{t}l',0,-1)",
    "return redis.call('lpop','{t}missing', 2)",
    "redis.setresp(3); return type(redis.call('lpop','{t}missing', 2))",
    "redis.setresp(3); redis.call('hset','{t}h2','a','1','b','2'); local m = redis.call('hgetall','{t}h2')['map']; return {m['a'], m['b']}",
    "redis.setresp(3); return redis.call('hgetall','{t}missing')",
    "redis.setresp(3); redis.call('sadd','{t}s2','a','b'); local s = redis.call('smembers','{t}s2')['set']; return {s['a'], s['b'], s['c']}",
    "redis.setresp(3); return redis.call('zadd','{t}z2','incr','2.5','m')",
    "redis.setresp(3); return redis.call('zadd','{t}z2','incr','2.5','m')['double']",
    "return redis.call('incrbyfloat','{t}f', 1.5)",
    "return redis.call('set','{t}n', 12345678901234567)",
    "return redis.call('get','{t}n')",
    "return redis.call('set','{t}n', -0.1)",
    "return redis.call('get','{t}n')",
    "local t = redis.call('mget', '{t}missing', '{t}n'); return {type(t[1]), t[2]}",
    "return redis.pcall('hset','{t}n','f','v')",
    "return redis.pcall('wrongcmd', 1, 2)",
    "return redis.pcall('get', '{t}a', 'extra')",
    "local e = redis.pcall('hset','{t}n','f','v'); return e['err']",
    "return redis.call('set', '{t}num', 3.5)",
    "return redis.call('set', '{t}num', 1e20)",
    // errors
    "return redis.call('incr','{t}s')",
    "return redis.pcall('incr','{t}s')",
    "local ok, e = pcall(redis.call,'incr','{t}s'); return {tostring(ok), type(e), e}",
    "local e = redis.pcall('incr','{t}s'); return {type(e), e['err']}",
    "local ok, e = pcall(function() return redis.call('incr','{t}s') end); error(e)",
    "return redis.call('nosuch')",
    "return redis.pcall('nosuch')",
    // XREAD/XREADGROUP BLOCK is refused from scripts (not answered as a timeout)
    "return redis.pcall('xread','BLOCK',0,'STREAMS','{t}s','$')",
    "return redis.pcall('XREADGROUP','GROUP','g','c','BLOCK','0','STREAMS','{t}s','>')",
    "return redis.pcall('xread','COUNT','1','STREAMS','{t}s','0')",
    "return redis.call('get')",
    "return redis.call()",
    "return redis.call({})",
    "return redis.call('get', {})",
    "return redis.call('get', nil)",
    "return redis.call('eval','return 1','0')",
    "return redis.call('script','load','return 1')",
    "return redis.call('client','list')",
    "return redis.call('object','nosuch')",
    "error('foo')",
    "error({err='MY bad'})",
    "error()",
    "local x = nil; return x.y",
    "return 1 +",
    "\n\nerror('line three')",
    "local function f() error('deep') end\nf()",
    "local ok, e = pcall(error, 'x'); return e",
    "local ok, e = pcall(error, {err='t'}); return e",
    "return select('#', pcall(error))",
    // sandbox
    "return x",
    "x = 1",
    "_G.x = 1",
    "rawset(_G, 'x', 1)",
    "setmetatable(_G, {})",
    "local g = getmetatable(_G); g.__index = {}",
    // Iterating the read-only tables lists their contents, as Redis's. (Not `_G`: the
    // peer, Debian's build on the system Lua, lacks upstream 7.0's `getfenv`, `setfenv`
    // and `newproxy`, which percore has as upstream and Valkey do.)
    "local t = {} for k in pairs(redis) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k in pairs(string) do t[#t + 1] = k end table.sort(t) return t",
    "local t = {} for k, v in next, cjson do t[#t + 1] = k end table.sort(t) return t",
    "return {type(rawget(_G, 'redis')), type(rawget(redis, 'call')), type(next(_G))}",
    // lua-cjson's `new`.
    "local c = cjson.new() return {c.encode({1, 2}), type(c.decode), c == cjson}",
    "local c = cjson.new() c.encode_max_depth(1) return {pcall(c.encode, {{1}})}",
    "redis = function() return 1 end",
    "redis.call = function() return 1 end",
    "cjson.encode = function() return 1 end",
    "bit.band = nil",
    "string.rep = nil",
    "print('x')",
    "return os",
    "return io",
    "return loadfile",
    "return dofile",
    "return debug",
    "return package",
    "return require",
    "return type(loadstring)",
    "local f = loadstring('return 5'); return f()",
    "return _VERSION",
    "return type(coroutine.create)",
    "local t = {}; for k in pairs({a=1}) do t[#t+1] = k end; return t",
    "return redis.sha1hex('')",
    "return redis.sha1hex('Pizza & Mandolino')",
    "return redis.sha1hex()",
    "return redis.REDIS_VERSION_NUM > 0",
    "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}",
    "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL}",
    "return redis.log(redis.LOG_DEBUG, 'from a script')",
    "return redis.log(99, 'x')",
    "return redis.log(1)",
    "return redis.log('a', 'b')",
    "return redis.setresp(4)",
    "return redis.setresp()",
    "return redis.set_repl(redis.REPL_ALL)",
    "return redis.set_repl(99)",
    "return redis.replicate_commands()",
    "return redis.breakpoint()",
    "return redis.debug('x')",
    "return {KEYS[1], ARGV[1], #KEYS, #ARGV}|2 {t}k1 {t}k2 a1",
    // shebang flags
    "#!lua\nreturn 1",
    "#!lua\nerror('x')",
    "#!lua flags=no-writes\nreturn redis.call('set','{t}a','b')",
    "#!lua flags=no-writes\nreturn redis.call('get','{t}a')",
    "#!lua flags=no-writes,allow-oom,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 1",
    "#!lua flags=bad\nreturn 1",
    "#!lua name=x\nreturn 1",
    "#!python\nreturn 1",
    // Many arguments and return values (past Lua's default stack of 20 slots, and
    // LUAI_MAXCSTACK's 8000): `redis.call` with 300 arguments, unpack of a 300-element
    // reply, too many return values for Lua's C stack.
    "local t = {} for i = 1, 300 do t[i] = tostring(i) end \
     redis.call('del', '{t}big') redis.call('rpush', '{t}big', unpack(t)) \
     return {unpack(redis.call('lrange', '{t}big', 0, -1))}",
    "local t = {} for i = 1, 9000 do t[i] = i end return {pcall(unpack, t)}",
    "local t = {} for i = 1, 7999 do t[i] = 1 end \
     redis.call('del', '{t}big') return redis.call('lpush', '{t}big', unpack(t))",
    "local t = {} for i = 1, 100 do t[i] = 0.5 end \
     redis.call('del', '{t}big') return redis.call('rpush', '{t}big', unpack(t))",
    "local t = {} for i = 1, 100 do t[i] = {} end \
     return redis.pcall('rpush', '{t}big', unpack(t))",
    // Lua numbers become arguments with %.17g, as Redis (issue #1118).
    "redis.call('set', '{t}n', 9007199254740991) return redis.call('get', '{t}n')",
    "redis.call('set', '{t}n', 0.1) return redis.call('get', '{t}n')",
    "redis.call('set', '{t}n', 1e300) return redis.call('get', '{t}n')",
    "redis.call('set', '{t}n', -2.5) return redis.call('get', '{t}n')",
    "redis.call('set', '{t}n', 1/0) return redis.call('get', '{t}n')",
    // PUBLISH is refused in a read-only script before anything else.
    "#!lua flags=no-writes\nreturn redis.call('publish', 'ch', 'm')",
    // cjson
    "return cjson.encode({1,2,3})",
    "return cjson.encode({a=1})",
    "return cjson.encode({})",
    "return cjson.encode('a\"b\\\\c/d\\n\\1')",
    "return cjson.encode(3.5)",
    "return cjson.encode(1e20)",
    "return cjson.encode(-0.25)",
    "return cjson.encode({true, false, cjson.null})",
    "return cjson.encode({[1]=1,[3]=3})",
    "return cjson.encode({[1]=1,[30]=3})",
    "return cjson.encode({{{}}})",
    "return cjson.encode(function() end)",
    "return cjson.encode(0/0)",
    "return cjson.decode('[1,2,{\"a\":3}]')[3].a",
    "return cjson.encode(cjson.decode('[1,2,{\"a\":[true,false,null]}]'))",
    "return cjson.decode('\"\\\\u00e9\\\\n\"')",
    "return cjson.decode('{\"a\":null}').a == cjson.null",
    "return cjson.decode('12.5')",
    "return cjson.decode('[1,2')",
    "return cjson.decode('{1:2}')",
    "return cjson.decode('')",
    "return cjson.decode('nope')",
    "return cjson.decode('[1] x')",
    "return {pcall(cjson.decode, '[')}",
    // cjson settings (each script restores the default it changed: they last for the
    // Lua state, as in Redis)
    "return {cjson.encode_max_depth(), cjson.decode_max_depth(), cjson.encode_number_precision(), tostring(cjson.encode_keep_buffer()), tostring(cjson.encode_invalid_numbers()), tostring(cjson.decode_invalid_numbers())}",
    "cjson.encode_max_depth(1) local ok, e = pcall(cjson.encode, {a={1}}) cjson.encode_max_depth(1000) return {tostring(ok), e}",
    "cjson.decode_max_depth(1) local ok, e = pcall(cjson.decode, '{\"obj\": {\"array\": [1,2,3,4]}}') cjson.decode_max_depth(1000) return {tostring(ok), e}",
    "local r = {} cjson.encode_invalid_numbers(true) r[1] = cjson.encode({0/0, 1/0, -1/0}) cjson.encode_invalid_numbers('null') r[2] = cjson.encode({1/0}) r[3] = tostring(cjson.encode_invalid_numbers()) cjson.encode_invalid_numbers(false) return r",
    "cjson.encode_number_precision(3) local s = cjson.encode({1/3, 123456, [5]=2}) cjson.encode_number_precision(14) return s",
    "local a, b, c = cjson.encode_sparse_array(true, 3, 4) local s = cjson.encode({[1]=1,[30]=3}) cjson.encode_sparse_array(false, 2, 10) return {s, tostring(a), b, c}",
    "return tostring(cjson.decode('[0x10]')[1]) .. ' ' .. tostring(cjson.decode('+1')) .. ' ' .. tostring(cjson.decode('inf')) .. ' ' .. tostring(cjson.decode('-Infinity')) .. ' ' .. tostring(cjson.decode('007'))",
    "cjson.decode_invalid_numbers(false) local ok, e = pcall(cjson.decode, '[+1]') cjson.decode_invalid_numbers(true) return {tostring(ok), e}",
    "return {pcall(cjson.encode_max_depth, 0)}",
    "return {pcall(cjson.encode_invalid_numbers, 'maybe')}",
    "return cjson.encode({[2.5]=1})",
    // cmsgpack
    "return cmsgpack.pack({1,2,3})",
    "return cmsgpack.pack('abc')",
    "return cmsgpack.pack(string.rep('x', 40))",
    "return cmsgpack.pack(1.5)",
    "return cmsgpack.pack(0.1)",
    "return cmsgpack.pack(-1, -33, -200, -40000, -3000000000)",
    "return cmsgpack.pack(127, 128, 300, 70000, 5000000000)",
    "return cmsgpack.pack({a=1})",
    "return cmsgpack.pack({})",
    "return cmsgpack.pack(true, false, nil)",
    "return cmsgpack.pack({{{{{{{{{{{{{{{{{{1}}}}}}}}}}}}}}}}}})",
    "return {cmsgpack.unpack(cmsgpack.pack({1,2,{3,'x'}}))}",
    "return cmsgpack.unpack(cmsgpack.pack({a=5})).a",
    "return {cmsgpack.unpack(cmsgpack.pack(1, 'two', 3.25))}",
    "return {pcall(cmsgpack.unpack, '\\146\\1')}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}",
    // bit
    "return bit.tobit(0xffffffff)",
    "return bit.tobit(2^32 + 5)",
    "return bit.band(0xff, 0x0f, 0x3)",
    "return bit.bor(1, 2, 4)",
    "return bit.bxor(5, 3)",
    "return bit.bnot(0)",
    "return bit.lshift(1, 31)",
    "return bit.rshift(-1, 28)",
    "return bit.arshift(-256, 4)",
    "return bit.rol(0x12345678, 8)",
    "return bit.ror(0x12345678, 8)",
    "return bit.bswap(0x12345678)",
    "return bit.tohex(255)",
    "return bit.tohex(-1, -4)",
    "return bit.tohex(0x1234, 2)",
    "return bit.tobit(1.5)",
    "return bit.tobit(2.5)",
    // struct
    "return struct.pack('>I2', 258)",
    "return struct.pack('<i4', -2)",
    "return struct.pack('bBhH', -1, 255, -2, 65535)",
    "return struct.pack('>d', 1.5)",
    "return struct.pack('c3', 'abcdef')",
    "return struct.pack('s', 'zero')",
    "return {struct.unpack('>I2', '\\1\\2')}",
    "return {struct.unpack('<i4', struct.pack('<i4', -2))}",
    "return {struct.unpack('s', 'ab\\0cd')}",
    "return {struct.unpack('>I2I2', '\\0\\1\\0\\2', 3)}",
    "return struct.size('>iI2d')",
    "return loadstring(string.dump(function() return 1 end))()",
    "return {loadstring(string.dump(function() return 1 end))}",
    "return loadstring('return 2')()",
    "return {pcall(struct.unpack, '>I4', 'ab')}",
    "return {pcall(struct.pack, 'q', 1)}",
    // The library API is not in a script's `redis` table (Redis 7.0: a nil field).
    "return type(redis.register_function)",
    "return redis.register_function('f', function() return 1 end)",
];

/// Commands run in order around the scripts: the script cache, functions, EVAL_RO.
fn admin_commands() -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let lib = "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return redis.call('ping') end)";
    let lib2 = "#!lua name=lib2\nredis.register_function{function_name='f2', callback=function(keys, args) return {keys[1], args[1]} end, flags={'no-writes'}, description='d'}";
    let lib3 = "#!lua name=lib3\nredis.register_function('f3', function(keys, args) return redis.call('set', keys[1], args[1]) end)";
    vec![
        s(&["SCRIPT", "LOAD", "return 'loaded'"]),
        s(&["EVALSHA", "2bd5e7bc8eb7bd5b4a4b1cb7fbea5d11dd85e8a6", "0"]),
        s(&[
            "SCRIPT",
            "EXISTS",
            "2bd5e7bc8eb7bd5b4a4b1cb7fbea5d11dd85e8a6",
            "ffffffffffffffffffffffffffffffffffffffff",
            "x",
        ]),
        s(&["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]),
        s(&["EVALSHA", "abc", "0"]),
        s(&[
            "EVALSHA_RO",
            "ffffffffffffffffffffffffffffffffffffffff",
            "0",
        ]),
        s(&["EVAL", "return 1", "-1"]),
        s(&["EVAL", "return 1", "2", "a"]),
        s(&["EVAL", "return 1", "abc"]),
        s(&["EVAL", "return 1"]),
        s(&["EVAL", "return ARGV[1]", "0", "x"]),
        s(&["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"]),
        s(&[
            "SCRIPT",
            "EXISTS",
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
        ]),
        s(&["SCRIPT", "LOAD", "return 1 +"]),
        s(&["SCRIPT", "LOAD", "#!lua flags=bad\nreturn 1"]),
        s(&["EVAL_RO", "return redis.call('set','{t}a','b')", "1", "{t}"]),
        s(&["EVAL_RO", "return redis.call('get','{t}a')", "1", "{t}"]),
        s(&["EVAL_RO", "#!lua\nreturn 1", "0"]),
        s(&["EVAL_RO", "return redis.call('publish', 'ch', 'm')", "0"]),
        s(&["EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"]),
        s(&["SCRIPT", "FLUSH", "foo"]),
        s(&["SCRIPT", "FLUSH", "ASYNC"]),
        s(&[
            "SCRIPT",
            "EXISTS",
            "2bd5e7bc8eb7bd5b4a4b1cb7fbea5d11dd85e8a6",
        ]),
        s(&["SCRIPT", "FLUSH"]),
        s(&["SCRIPT", "KILL"]),
        s(&["SCRIPT", "DEBUG", "maybe"]),
        s(&["SCRIPT", "DEBUG", "no"]),
        s(&["SCRIPT", "foo"]),
        s(&["SCRIPT", "HELP"]),
        s(&["SCRIPT", "EXISTS"]),
        s(&["SCRIPT"]),
        s(&["FUNCTION", "HELP"]),
        s(&["FUNCTION", "LOAD", lib]),
        s(&["FUNCTION", "LOAD", lib]),
        s(&["FUNCTION", "LOAD", "REPLACE", lib]),
        s(&["FUNCTION", "LOAD", lib2]),
        s(&["FCALL", "f1", "0"]),
        s(&["FCALL", "f2", "1", "{t}k", "a"]),
        s(&["FCALL_RO", "f2", "1", "{t}k", "a"]),
        s(&["FCALL_RO", "f1", "0"]),
        s(&["FCALL", "nosuch", "0"]),
        // function names are case-insensitive
        s(&["FCALL", "F1", "0"]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=nested\nredis.register_function('reg', function() \
             redis.register_function('inner', function() return 2 end) return 1 end)",
        ]),
        s(&["FCALL", "reg", "0"]),
        s(&["FUNCTION", "FLUSH", "bad_arg"]),
        // Library metadata, split as Redis's sdssplitargs.
        s(&[
            "FUNCTION",
            "LOAD",
            "#! name=t\nredis.register_function('a', function() return 1 end)",
        ]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=a name=b\nredis.register_function('a', function() return 1 end)",
        ]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=\"quoted\"\nredis.register_function('q', function() return 1 end)",
        ]),
        s(&["FUNCTION", "LOAD", "#!lua NAME=upper\tfoo=bar\nreturn 1"]),
        s(&["FUNCTION", "LOAD", "#!nosuch foo=bar\nreturn 1"]),
        s(&["FUNCTION", "LOAD", "#!nosuch name=x\nreturn 1"]),
        s(&["FUNCTION", "LOAD", "#!lua name=\"unbalanced\nreturn 1"]),
        s(&["FUNCTION", "LOAD", "#!lua name=nonewline"]),
        s(&["FCALL", "q", "0"]),
        s(&["FUNCTION", "Flush", "sync", "extra_arg"]),
        // A library's code runs at most 500 ms (LOAD_TIMEOUT_MS).
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=spin\nlocal a = 1\nwhile 1 do a = a + 1 end",
        ]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=clash\nredis.register_function('F1', function() return 1 end)",
        ]),
        s(&["FCALL", "f1", "abc"]),
        s(&["FCALL", "f1", "-1"]),
        s(&["FCALL", "f1", "2", "a"]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=other\nredis.register_function('f1', function() return 1 end)",
        ]),
        s(&["FUNCTION", "LOAD", "#!lua name=l2\nredis.call('ping')"]),
        s(&["FUNCTION", "LOAD", "#!lua name=l3\nx = 1"]),
        s(&["FUNCTION", "LOAD", "#!lua name=l3\nreturn 1"]),
        s(&["FUNCTION", "LOAD", "#!lua\nreturn 1"]),
        s(&["FUNCTION", "LOAD", "#!lua name=l4 foo=bar\nreturn 1"]),
        s(&["FUNCTION", "LOAD", "return 1"]),
        s(&["FUNCTION", "LOAD", "#!lua name=bad-name\nreturn 1"]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=l7\nredis.register_function('bad name', function() end)",
        ]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=l7\nredis.register_function{function_name='f7', callback=function() end, flags={'bad'}}",
        ]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=l7\nredis.register_function{function_name='f7', callback=function() end, foo=1}",
        ]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=l7\nredis.register_function('f7')",
        ]),
        s(&["FUNCTION", "LOAD", "#!lua name=l7\nerror('x')"]),
        s(&["FUNCTION", "LOAD", "#!lua name=l7\nfoo("]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=l7\nlocal v = redis.REDIS_VERSION\nredis.log(redis.LOG_DEBUG, 'loading')\nredis.register_function('f7', function() return redis.setresp(3) end)",
        ]),
        s(&["FCALL", "f7", "0"]),
        s(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=l8\nredis.register_function('f8', function() error('boom') end)",
        ]),
        s(&["FCALL", "f8", "0"]),
        s(&["FUNCTION", "LOAD", lib3]),
        s(&["FCALL", "f3", "1", "{t}fk", "fv"]),
        s(&["FCALL_RO", "f3", "1", "{t}fk", "fv"]),
        s(&["GET", "{t}fk"]),
        s(&["FUNCTION", "LIST", "LIBRARYNAME", "lib2"]),
        s(&["FUNCTION", "LIST", "LIBRARYNAME", "mylib", "WITHCODE"]),
        s(&["FUNCTION", "LIST", "LIBRARYNAME", "nomatch*"]),
        s(&["FUNCTION", "LIST", "foo"]),
        s(&["FUNCTION", "LIST", "LIBRARYNAME"]),
        s(&["FUNCTION", "LIST", "WITHCODE", "WITHCODE"]),
        s(&["FUNCTION", "STATS"]),
        s(&["FUNCTION", "KILL"]),
        s(&["FUNCTION", "DELETE", "nosuch"]),
        s(&["FUNCTION", "DELETE", "l8"]),
        s(&["FCALL", "f8", "0"]),
        s(&["FUNCTION", "RESTORE", "abc"]),
        s(&["FUNCTION", "RESTORE", "abc", "foo"]),
        s(&["FUNCTION", "RESTORE", "abc", "APPEND", "extra"]),
        s(&["FUNCTION", "RESTORE", "abc", "foo", "extra"]),
        s(&["FUNCTION", "FLUSH", "foo"]),
        s(&["FUNCTION", "FLUSH"]),
        s(&["FUNCTION", "LIST"]),
        s(&["FUNCTION", "STATS"]),
        s(&["FUNCTION", "foo"]),
        s(&["FUNCTION", "LOAD"]),
        s(&["FUNCTION", "LOAD", "REPLACE", "#!lua name=a", "x"]),
    ]
}

fn script_command(script: &str) -> Vec<String> {
    match script.rsplit_once('|') {
        Some((body, keys)) if !body.contains("--") => {
            let mut v = vec!["EVAL".to_owned(), body.to_owned()];
            v.extend(keys.split(' ').map(str::to_owned));
            v
        }
        // One declared key, so that the script runs on the `{t}` keys' shard.
        _ => vec![
            "EVAL".to_owned(),
            script.to_owned(),
            "1".to_owned(),
            "{t}".to_owned(),
        ],
    }
}

fn fresh(c: &mut Conn, resp3: bool) {
    c.cmd_raw(&["FLUSHALL"]);
    c.cmd_raw(&["SCRIPT", "FLUSH"]);
    c.cmd_raw(&["FUNCTION", "FLUSH"]);
    if resp3 {
        c.cmd_raw(&["HELLO", "3"]);
    }
}

fn run(threads: usize, resp3: bool) {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(threads);
    let mut rc = redis.conn();
    let mut pc = percore.conn();
    fresh(&mut rc, resp3);
    fresh(&mut pc, resp3);
    let mut cmds: Vec<Vec<String>> = SCRIPTS.iter().map(|s| script_command(s)).collect();
    cmds.extend(admin_commands());
    let mut mismatches = Vec::new();
    for cmd in &cmds {
        let want = show(&rc.cmd_raw(cmd));
        let got = show(&pc.cmd_raw(cmd));
        if got != want {
            mismatches.push(format!("{cmd:?}\n  percore: {got}\n  redis:   {want}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "threads {threads} resp3 {resp3}: {} of {} replies differ:\n{}",
        mismatches.len(),
        cmds.len(),
        mismatches.join("\n")
    );
}

#[test]
fn scripts_match_redis_one_shard_resp2() {
    run(1, false);
}

#[test]
fn scripts_match_redis_one_shard_resp3() {
    run(1, true);
}

#[test]
fn scripts_match_redis_two_shards_resp2() {
    run(2, false);
}

#[test]
fn scripts_match_redis_two_shards_resp3() {
    run(2, true);
}

/// FUNCTION DUMP of one server restores in the other, both ways, with every policy.
#[test]
fn function_dump_restores_across_servers() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let mut rc = redis.conn();
    let mut pc = percore.conn();
    let libs = [
        "#!lua name=alpha\nredis.register_function('fa', function(keys, args) return 'a' end)",
        "#!lua name=beta\nredis.register_function{function_name='fb', callback=function(keys, args) return #keys end, flags={'no-writes'}, description='beta function'}",
    ];
    for c in [&mut rc, &mut pc] {
        fresh(c, false);
        for lib in libs {
            c.cmd_raw(&["FUNCTION", "LOAD", lib]);
        }
    }
    for redis_first in [true, false] {
        let (src, dst) = if redis_first {
            (&mut rc, &mut pc)
        } else {
            (&mut pc, &mut rc)
        };
        let percore_net::resp::Frame::Bulk(payload) = src.cmd(&["FUNCTION", "DUMP"]) else {
            panic!("FUNCTION DUMP is not a bulk string");
        };
        // Redis lists libraries in its dict's order: compare them one by one.
        let listing = |c: &mut Conn| {
            ["alpha", "beta"]
                .map(|l| show(&c.cmd_raw(&["FUNCTION", "LIST", "LIBRARYNAME", l, "WITHCODE"])))
        };
        let want = listing(src);
        dst.cmd_raw(&["FUNCTION", "FLUSH"]);
        let restore = |c: &mut Conn, policy: &[u8]| {
            let mut args: Vec<&[u8]> = vec![b"FUNCTION", b"RESTORE", &payload];
            if !policy.is_empty() {
                args.push(policy);
            }
            c.cmd_raw(&args)
        };
        assert_eq!(show(&restore(dst, b"")), "+OK\r\n");
        assert_eq!(listing(dst), want);
        assert_eq!(
            show(&dst.cmd_raw(&["FCALL", "fb", "2", "{x}a", "{x}b"])),
            ":2\r\n"
        );
        // APPEND over the same libraries collides; REPLACE and FLUSH do not.
        let append_err = restore(dst, b"APPEND");
        assert!(append_err.starts_with(b"-ERR"), "{}", show(&append_err));
        assert_eq!(show(&restore(dst, b"REPLACE")), "+OK\r\n");
        assert_eq!(show(&restore(dst, b"FLUSH")), "+OK\r\n");
        assert_eq!(listing(dst), want);
        // A payload with a broken checksum is refused by both.
        let mut bad = payload.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        let args: Vec<&[u8]> = vec![b"FUNCTION", b"RESTORE", &bad];
        assert_eq!(show(&dst.cmd_raw(&args)), show(&src.cmd_raw(&args)));
    }
}

/// Valkey's name for the API: every `server.*` call answers as `redis.*` does (Redis 7.0
/// has no `server` global, so this one is checked on percore alone).
#[test]
fn server_is_the_redis_api_under_valkeys_name() {
    let percore = Server::percore_threads(1);
    let mut pc = percore.conn();
    for body in [
        "return X.call('ping')",
        "return X.pcall('nosuch')",
        "return X.call('incr', 'k' .. 'X')",
        "return X.error_reply('E x')",
        "return X.status_reply('S')",
        "return X.sha1hex('a')",
        "return X.REDIS_VERSION",
        "return X.LOG_WARNING",
        "return X.setresp(3)",
    ] {
        let redis_form = body.replace('X', "redis");
        let server_form = body.replace('X', "server");
        let want = pc.cmd_raw(&["EVAL", &redis_form, "0"]);
        let got = pc.cmd_raw(&["EVAL", &server_form, "0"]);
        // Error texts name the script's SHA1, which differs with the text.
        let strip = |b: &[u8]| {
            show(b)
                .split(" script: ")
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(strip(&got), strip(&want), "{server_form}");
    }
    assert_eq!(
        show(&pc.cmd_raw(&["EVAL", "return tostring(server == redis)", "0"])),
        "$4\r\ntrue\r\n"
    );
}

/// Function libraries are saved in RDB files as redis-server 7.0 saves them (opcode
/// 0xF5): they survive a restart of percore, a percore dump loads in redis-server with
/// them, and a redis-server dump loads in percore with them.
#[test]
fn functions_are_saved_in_rdb_files_both_ways() {
    let Some(probe) = Server::redis() else {
        return;
    };
    drop(probe);
    let dir = common::scratch_dir("lua-rdb");
    let dir_s = dir.to_str().expect("utf-8 temp path").to_owned();
    let lib = "#!lua name=keep\nredis.register_function{function_name='kept', callback=function(keys, args) return 'still here' end, flags={'no-writes'}, description='survives'}";
    let listing = |c: &mut Conn| show(&c.cmd_raw(&["FUNCTION", "LIST", "WITHCODE"]));
    let want;
    {
        let p = Server::percore(&["--threads", "2", "--dir", &dir_s]);
        let mut c = p.conn();
        assert_eq!(
            show(&c.cmd_raw(&["FUNCTION", "LOAD", lib])),
            "$4\r\nkeep\r\n"
        );
        c.cmd_raw(&["SET", "k", "v"]);
        want = listing(&mut c);
        assert_eq!(show(&c.cmd_raw(&["SAVE"])), "+OK\r\n");
    }
    {
        let p = Server::percore(&["--threads", "2", "--dir", &dir_s]);
        let mut c = p.conn();
        assert_eq!(listing(&mut c), want);
        assert_eq!(
            show(&c.cmd_raw(&["FCALL_RO", "kept", "0"])),
            "$10\r\nstill here\r\n"
        );
        assert_eq!(show(&c.cmd_raw(&["GET", "k"])), "$1\r\nv\r\n");
    }
    {
        let r = Server::redis_with(&["--dir", &dir_s, "--dbfilename", "dump.rdb"])
            .expect("redis-server");
        let mut c = r.conn();
        assert_eq!(listing(&mut c), want);
        assert_eq!(
            show(&c.cmd_raw(&["FCALL", "kept", "0"])),
            "$10\r\nstill here\r\n"
        );
        c.cmd_raw(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=fromredis\nredis.register_function('fr', function() return 7 end)",
        ]);
        assert_eq!(show(&c.cmd_raw(&["SAVE"])), "+OK\r\n");
    }
    let p = Server::percore(&["--threads", "2", "--dir", &dir_s]);
    let mut c = p.conn();
    assert_eq!(show(&c.cmd_raw(&["FCALL", "fr", "0"])), ":7\r\n");
    assert_eq!(
        show(&c.cmd_raw(&["FCALL", "kept", "0"])),
        "$10\r\nstill here\r\n"
    );
}

/// A script's write touches a key WATCHed by another client (its EXEC then fails), as a
/// client's write does: scripts and functions, keys on both shards, vs redis-server.
#[test]
fn script_writes_fail_watchers_exec_as_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let lib = "#!lua name=wlib\nredis.register_function('wset', function(keys, args) return redis.call('set', keys[1], args[1]) end)";
    for server in [&redis, &percore] {
        let mut c = server.conn();
        assert!(
            c.cmd_raw(&["FUNCTION", "LOAD", "REPLACE", lib])
                .starts_with(b"$")
        );
    }
    let mut got = Vec::new();
    for server in [&redis, &percore] {
        let mut replies = Vec::new();
        for key in ["k", "a", "b", "c", "d", "{x}1"] {
            for writer in [
                vec!["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", key],
                vec!["EVAL", "return redis.call('get', KEYS[1])", "1", key],
                vec!["FCALL", "wset", "1", key, "y"],
                vec!["EVAL", "return redis.call('del', KEYS[1])", "1", key],
            ] {
                let (mut w, mut o) = (server.conn(), server.conn());
                w.cmd_raw(&["WATCH", key]);
                replies.push(show(&o.cmd_raw(&writer)));
                w.cmd_raw(&["MULTI"]);
                w.cmd_raw(&["PING"]);
                replies.push(format!("{key} {writer:?}: {}", show(&w.cmd_raw(&["EXEC"]))));
            }
        }
        got.push(replies);
    }
    assert_eq!(got[0], got[1], "redis (left) vs percore (right)");
}

/// `redis.acl_check_cmd` (and `server.acl_check_cmd`) for a restricted user and the
/// default one: allowed, refused command, refused key, unknown command or subcommand,
/// bad arguments, vs redis-server (two shards). Not compared: a command without its key
/// (Redis's SET then reads past its argument list).
#[test]
fn acl_check_cmd_answers_as_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let checks = [
        "return redis.acl_check_cmd('set','xx',1)",
        "return redis.acl_check_cmd('SET','yy',1)",
        "return redis.acl_check_cmd('hset','xx','f',1)",
        "return redis.acl_check_cmd('config','get','x')",
        "return redis.acl_check_cmd('config','set','x','y')",
        "return redis.acl_check_cmd('config','nosuch')",
        "return redis.acl_check_cmd('config')",
        "return redis.acl_check_cmd('invalid-cmd','arg')",
        "return redis.acl_check_cmd()",
        "return redis.acl_check_cmd({})",
        "return {pcall(redis.acl_check_cmd, 'nosuch')}",
        "return type(redis.acl_check_cmd('get','xa'))",
    ];
    let mut got = Vec::new();
    for (i, server) in [&redis, &percore].into_iter().enumerate() {
        let mut admin = server.conn();
        admin.cmd_raw(&[
            "ACL",
            "SETUSER",
            "bob",
            "on",
            ">123",
            "+@scripting",
            "+set",
            "+get",
            "+config|get",
            "~x*",
        ]);
        let mut bob = server.conn();
        assert_eq!(bob.cmd_raw(&["AUTH", "bob", "123"]), b"+OK\r\n");
        let mut replies = Vec::new();
        for (who, c) in [("bob", &mut bob), ("default", &mut admin)] {
            for script in checks {
                let reply = show(&c.cmd_raw(&["EVAL", script, "1", "xk"]));
                replies.push(format!("{who} {script}: {reply}"));
            }
        }
        if i == 1 {
            // Valkey's name for the same API (Redis 7.0 has no `server` global).
            let script = "return server.acl_check_cmd('get','xa')";
            assert_eq!(bob.cmd_raw(&["EVAL", script, "0"]), b":1\r\n");
        }
        got.push(replies);
    }
    assert_eq!(got[0], got[1], "redis (left) vs percore (right)");
}
