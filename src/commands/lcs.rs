//! LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN] (Redis 7's `lcsCommand`). The
//! two values are gathered from their shards; the computation is
//! `percore_engine::lcs`.

use super::gather::{self, Got, Spec};
use super::keyspace::reply;
use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use percore_engine::lcs::lcs as compute;

const NOT_STRINGS_ERR: &str = "ERR The specified keys must contain string values";
const LEN_AND_IDX_ERR: &str = "ERR If you want both the length and indexes, please just use IDX.";

const LCS_GATHER: Spec = Spec {
    keys: |_| 1..3,
    finish_on: None,
    finish: lcs_finish,
};

pub fn lcs(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    gather::start(ctx, argv, lcs_step)
}

fn lcs_step(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
    gather::step(ctx, argv, &LCS_GATHER, lcs_step)
}

fn lcs_finish(ctx: &mut Ctx, argv: &[&[u8]], vals: &[Got]) -> Partial {
    let mut strs: [&[u8]; 2] = [b"", b""];
    for (s, v) in strs.iter_mut().zip(vals) {
        match v {
            Got::Absent => {}
            Got::Str(b) => *s = b,
            Got::WrongType => return reply(ctx, |w| w.error(NOT_STRINGS_ERR)),
        }
    }
    let (mut idx, mut len, mut withlen, mut minlen) = (false, false, false, 0u64);
    let mut j = 3;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let o = argv[j];
        if eq_ic(o, "IDX") {
            idx = true;
        } else if eq_ic(o, "LEN") {
            len = true;
        } else if eq_ic(o, "WITHMATCHLEN") {
            withlen = true;
        } else if eq_ic(o, "MINMATCHLEN") && more > 0 {
            match parse_i64(argv[j + 1]) {
                Some(n) => minlen = n.max(0) as u64,
                None => return reply(ctx, |w| w.error(errors::NOT_INTEGER)),
            }
            j += 1;
        } else {
            return reply(ctx, |w| w.error(errors::SYNTAX));
        }
        j += 1;
    }
    if idx && len {
        return reply(ctx, |w| w.error(LEN_AND_IDX_ERR));
    }
    let max = ctx.shard.cfg.proto_max_bulk_len_bytes;
    let r = match compute(strs[0], strs[1], idx || !len, minlen, max) {
        Ok(r) => r,
        Err(e) => return reply(ctx, |w| w.error(e.reply_text())),
    };
    reply(ctx, |w| {
        if idx {
            w.map(2);
            w.bulk(b"matches");
            w.array(r.matches.len());
            for m in &r.matches {
                w.array(if withlen { 3 } else { 2 });
                w.array(2);
                w.int(i64::from(m.a.0));
                w.int(i64::from(m.a.1));
                w.array(2);
                w.int(i64::from(m.b.0));
                w.int(i64::from(m.b.1));
                if withlen {
                    w.int(i64::from(m.len));
                }
            }
            w.bulk(b"len");
            w.int(i64::from(r.len));
        } else if len {
            w.int(i64::from(r.len));
        } else {
            w.bulk(&r.text);
        }
    })
}
