//! DUMP and RESTORE (with REPLACE, ABSTTL, IDLETIME, FREQ), in Redis's payload format:
//! the value as the RDB writer writes it (type byte, then the value), the RDB version
//! (2 bytes, little endian) and the CRC-64/Jones of everything before it (8 bytes,
//! little endian). The value codec is the persist crate's RDB encoder and loader, so a
//! payload is exactly what a snapshot holds for that key.

use super::{Ctx, eq_ic, errors, parse_i64};
use crate::notify::class;
use percore_engine::db::SetExpire;
use percore_net::resp::ReplyWriter;
use percore_persist::crc64::crc64;
use percore_persist::rdb::{Encoder, MAX_REDIS_VERSION, RDB_VERSION, VALKEY_VERSION, load_value};

/// The footer after the value: RDB version (2 bytes) and CRC-64 (8 bytes).
const FOOTER_BYTES: usize = 10;
const BAD_PAYLOAD: &str = "ERR DUMP payload version or checksum are wrong";
const BAD_DATA: &str = "ERR Bad data format";
const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
/// Highest FREQ RESTORE accepts (an 8-bit LFU counter).
const LFU_COUNTER_MAX: i64 = 255;

/// Whether a payload's RDB version is one percore's loader reads: Redis's up to 11
/// (7.2; Valkey 7.2 to 8.1) and Valkey 9's 80. Newer ones are refused, as Redis refuses
/// versions above its own.
/// Valkey's range of RDB versions it takes for other formats (`RDB_FOREIGN_VERSION_MIN`
/// to `_MAX`): refused whatever `rdb-version-check` says.
const FOREIGN_RDB_VERSIONS: std::ops::RangeInclusive<u32> = 12..=79;

fn version_supported(v: u16, relaxed: bool) -> bool {
    let v = u32::from(v);
    v <= MAX_REDIS_VERSION || v == VALKEY_VERSION || (relaxed && !FOREIGN_RDB_VERSIONS.contains(&v))
}

/// `verifyDumpPayload`: the value bytes when the version and checksum are right.
/// `relaxed`: `rdb-version-check relaxed` (a newer version is tried).
pub fn verify(payload: &[u8], relaxed: bool) -> Option<&[u8]> {
    let body_len = payload.len().checked_sub(FOOTER_BYTES)?;
    let footer = &payload[body_len..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if !version_supported(version, relaxed) {
        return None;
    }
    let crc = u64::from_le_bytes(footer[2..].try_into().expect("8 bytes"));
    (super::server::debug::skip_checksum_validation()
        || crc64(&payload[..payload.len() - 8]) == crc)
        .then_some(&payload[..body_len])
}

/// The DUMP payload of `value` (`createDumpPayload`).
pub fn dump_payload(value: &percore_engine::Value, compress: bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    Encoder::new(compress).write_value(&mut out, value).ok()?;
    let version = u16::try_from(RDB_VERSION).expect("the RDB version fits two bytes");
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// DUMP key.
pub fn dump(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let now = ctx.shard.now_ms;
    let compress = ctx.shard.cfg.rdbcompression;
    let sh = &mut *ctx.shard;
    let Some(v) = sh.keyspace.db_mut(ctx.db).get(argv[1], now) else {
        sh.stats.keyspace_misses += 1;
        return w.null();
    };
    sh.stats.keyspace_hits += 1;
    match dump_payload(v, compress) {
        Some(p) => w.bulk(&p),
        None => w.error(&format!(
            "ERR DUMP of a {} value is not supported yet",
            v.type_name()
        )),
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency], with
/// Redis's checks in Redis's order.
pub fn restore(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let a = argv[j];
        if eq_ic(a, "replace") {
            replace = true;
        } else if eq_ic(a, "absttl") {
            absttl = true;
        } else if eq_ic(a, "idletime") && more && freq.is_none() {
            let Some(v) = parse_i64(argv[j + 1]) else {
                return w.error(errors::NOT_INTEGER);
            };
            if v < 0 {
                return w.error("ERR Invalid IDLETIME value, must be >= 0");
            }
            idle = Some(v);
            j += 1;
        } else if eq_ic(a, "freq") && more && idle.is_none() {
            let Some(v) = parse_i64(argv[j + 1]) else {
                return w.error(errors::NOT_INTEGER);
            };
            if !(0..=LFU_COUNTER_MAX).contains(&v) {
                return w.error("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = Some(v);
            j += 1;
        } else {
            return w.error(errors::SYNTAX);
        }
        j += 1;
    }
    let key = argv[1];
    let now = ctx.shard.now_ms;
    if !replace && ctx.shard.keyspace.db_mut(ctx.db).contains(key, now) {
        return w.error(BUSYKEY);
    }
    let Some(mut ttl) = parse_i64(argv[2]) else {
        return w.error(errors::NOT_INTEGER);
    };
    if ttl < 0 {
        return w.error("ERR Invalid TTL value, must be >= 0");
    }
    let relaxed = crate::config::kept::enum_value(
        &ctx.shard.cfg.kept,
        "rdb-version-check",
        crate::config::kept::RDB_VERSION_CHECK,
        0,
    ) == 1;
    let Some(body) = verify(argv[3], relaxed) else {
        return w.error(BAD_PAYLOAD);
    };
    let Ok((Some(value), _)) = load_value(body) else {
        return w.error(BAD_DATA);
    };
    let db = ctx.shard.keyspace.db_mut(ctx.db);
    let deleted = replace && db.remove(key, now).is_some();
    if ttl != 0 && !absttl {
        ttl = ttl.saturating_add(now);
    }
    if ttl != 0 && ttl <= now {
        // Already expired: nothing is stored (the old key is gone with REPLACE).
        if deleted {
            ctx.notify(class::GENERIC, "del", key);
        }
        return w.ok();
    }
    let expire = if ttl == 0 {
        SetExpire::Clear
    } else {
        SetExpire::At(ttl)
    };
    db.set(key, value, expire, now);
    db.set_access(key, idle, freq, now);
    w.ok();
    ctx.notify(class::GENERIC, "restore", key);
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key ...] (`crate::migrate`): the client waits, the
/// shard does not.
pub fn migrate(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let args = match crate::migrate::parse(argv) {
        Ok(a) => a,
        Err(e) => return w.error(e),
    };
    // Inside EXEC or a script the reply cannot wait for the network.
    let Some(client) = ctx
        .client
        .as_deref_mut()
        .filter(|c| c.last_cmd == "migrate")
    else {
        return w.error(crate::migrate::NOT_IN_TRANSACTION);
    };
    crate::migrate::start(ctx.shard, client, argv, args, w);
}
