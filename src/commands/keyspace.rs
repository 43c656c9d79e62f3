//! Keyspace commands: DEL, EXISTS, EXPIRE family, TTL, TYPE, RENAME, SCAN, KEYS, ...

use super::{Ctx, Gather, Partial};
use percore_net::resp::ReplyWriter;

pub fn del_part(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    let sh = &mut *ctx.shard;
    let now = sh.now_ms;
    let db = sh.keyspace.db_mut(ctx.db);
    let n = argv[1..]
        .iter()
        .filter(|k| db.remove(k, now).is_some())
        .count();
    Partial::Int(n as i64)
}

/// Sums the shards' integer parts (DEL, EXISTS, UNLINK, TOUCH).
pub fn sum_merge(g: &mut Gather, w: &mut ReplyWriter) {
    let mut total = 0;
    for p in g.parts.iter().flatten() {
        if let Partial::Error(e) = p {
            w.error(e);
            return;
        }
        if let Partial::Int(n) = p {
            total += n;
        }
    }
    w.int(total);
}
