//! Geo commands on sorted sets (Redis 7.0's `geo.c` replies and error texts): GEOADD,
//! GEODIST, GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and
//! the `_RO` forms. The geometry is `percore_engine::geo`.
//!
//! GEORADIUS, GEORADIUSBYMEMBER (which take STORE/STOREDIST) and GEOSEARCHSTORE run
//! through the multi-key hop chain (`multikey.rs`) so a destination on another shard gets
//! the result; the read-only forms are plain keyed commands sharing the same search.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::many_single_char_names,
    clippy::single_match_else,
    reason = "WITHHASH replies the score as C's (long long) cast; counts are small; \
              names follow Redis's geo.c (z = the zset, q = the query, w = the reply)"
)]

use super::multikey::{self, Keys, Limits, MultiKey, Outcome, Src, encoded};
use super::zsets::read_zset;
use super::{Ctx, Partial, eq_ic, errors, parse_i64};
use percore_engine::geo::{self, Extent, Shape};
use percore_engine::value::Value;
use percore_engine::zsets::{ZSetValue, parse_score};
use percore_net::resp::{Protocol, ReplyWriter};

const NOT_FLOAT: &str = "ERR value is not a valid float";
const BAD_UNIT: &str = "ERR unsupported unit provided. please use M, KM, FT, MI";
const BAD_MEMBER: &str = "ERR could not decode requested zset member";

/// `extractLongLatOrReply`: two floats within Redis's limits.
fn parse_lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), String> {
    let lon = parse_score(lon).ok_or(NOT_FLOAT)?;
    let lat = parse_score(lat).ok_or(NOT_FLOAT)?;
    if !geo::valid_lon_lat(lon, lat) {
        return Err(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        ));
    }
    Ok((lon, lat))
}

fn parse_unit(u: &[u8]) -> Result<f64, String> {
    geo::unit_metres(u).ok_or_else(|| BAD_UNIT.to_owned())
}

/// `extractDistanceOrReply`: `(radius, unit in metres)`.
fn parse_distance(r: &[u8], unit: &[u8]) -> Result<(f64, f64), String> {
    let r = parse_score(r).ok_or("ERR need numeric radius")?;
    if r < 0.0 {
        return Err("ERR radius cannot be negative".to_owned());
    }
    Ok((r, parse_unit(unit)?))
}

/// `extractBoxOrReply`: `(width, height, unit in metres)`.
fn parse_box(w: &[u8], h: &[u8], unit: &[u8]) -> Result<(f64, f64, f64), String> {
    let w = parse_score(w).ok_or("ERR need numeric width")?;
    let h = parse_score(h).ok_or("ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err("ERR height or width cannot be negative".to_owned());
    }
    Ok((w, h, parse_unit(unit)?))
}

/// The decoded position of `member` in `z`.
fn member_pos(z: &ZSetValue, member: &[u8]) -> Result<(f64, f64), String> {
    z.score(member)
        .map(geo::decode_score)
        .ok_or_else(|| BAD_MEMBER.to_owned())
}

// ---------------------------------------------------------------------------------------
// GEOADD, GEODIST, GEOHASH, GEOPOS

/// GEOADD key [NX|XX] [CH] lon lat member ...: checked here, then run as the ZADD it
/// stands for (as Redis does), so flags, replies and encodings are ZADD's.
pub fn geoadd(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let (mut nx, mut xx) = (false, false);
    let mut first = 2;
    while first < argv.len() {
        let a = argv[first];
        if eq_ic(a, "nx") {
            nx = true;
        } else if eq_ic(a, "xx") {
            xx = true;
        } else if !eq_ic(a, "ch") {
            break;
        }
        first += 1;
    }
    let triples = &argv[first..];
    if !triples.len().is_multiple_of(3) || (xx && nx) {
        return w.error(errors::SYNTAX);
    }
    let mut scores = Vec::with_capacity(triples.len() / 3);
    for t in triples.chunks_exact(3) {
        match parse_lon_lat(t[0], t[1]) {
            Ok((lon, lat)) => scores.push(
                geo::score_of(lon, lat)
                    .expect("a valid pair encodes")
                    .to_string(),
            ),
            Err(e) => return w.error(&e),
        }
    }
    let mut zargv: Vec<&[u8]> = Vec::with_capacity(first + scores.len() * 2);
    zargv.push(b"zadd");
    zargv.extend_from_slice(&argv[1..first]);
    for (t, s) in triples.chunks_exact(3).zip(&scores) {
        zargv.push(s.as_bytes());
        zargv.push(t[2]);
    }
    super::zsets::zadd(ctx, &zargv, w);
}

/// A distance as Redis replies it: a bulk string with four decimals.
fn write_distance(w: &mut ReplyWriter, d: f64) {
    w.bulk(format!("{d:.4}").as_bytes());
}

/// A coordinate as `addReplyHumanLongDouble`: RESP2 bulk, RESP3 double, `%.17Lf` trimmed.
fn write_coord(w: &mut ReplyWriter, v: f64) {
    let text = geo::human_double(v);
    if w.is_resp3() {
        w.raw(b",");
        w.raw(text.as_bytes());
        w.raw(b"\r\n");
    } else {
        w.bulk(text.as_bytes());
    }
}

/// GEODIST key member1 member2 [unit].
pub fn geodist(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let unit = match argv.len() {
        4 => 1.0,
        5 => match parse_unit(argv[4]) {
            Ok(u) => u,
            Err(e) => return w.error(&e),
        },
        _ => return w.error(errors::SYNTAX),
    };
    match read_zset(ctx, argv[1]) {
        Err(()) => w.error(errors::WRONGTYPE),
        Ok(None) => w.null(),
        Ok(Some(z)) => match (z.score(argv[2]), z.score(argv[3])) {
            (Some(a), Some(b)) => {
                let (alon, alat) = geo::decode_score(a);
                let (blon, blat) = geo::decode_score(b);
                write_distance(w, geo::distance(alon, alat, blon, blat) / unit);
            }
            _ => w.null(),
        },
    }
}

/// GEOHASH key member ...
pub fn geohash(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let z = match read_zset(ctx, argv[1]) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(z) => z,
    };
    w.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => w.bulk(&geo::geohash_text(s)),
            None => w.null(),
        }
    }
}

/// GEOPOS key member ...
pub fn geopos(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let z = match read_zset(ctx, argv[1]) {
        Err(()) => return w.error(errors::WRONGTYPE),
        Ok(z) => z,
    };
    w.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => {
                let (lon, lat) = geo::decode_score(s);
                w.array(2);
                write_coord(w, lon);
                write_coord(w, lat);
            }
            None => w.null_array(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// GEORADIUS, GEORADIUSBYMEMBER (and _RO), GEOSEARCH, GEOSEARCHSTORE

/// Which search command runs (Redis's `georadiusGeneric` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Radius { store: bool },
    ByMember { store: bool },
    Search,
    SearchStore,
}

impl Kind {
    /// argv position of the source key.
    fn src(self) -> usize {
        if self == Kind::SearchStore { 2 } else { 1 }
    }
    fn is_search(self) -> bool {
        matches!(self, Kind::Search | Kind::SearchStore)
    }
    fn takes_store(self) -> bool {
        matches!(
            self,
            Kind::Radius { store: true } | Kind::ByMember { store: true }
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A parsed search.
struct Query {
    shape: Shape,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    /// 0 = no COUNT.
    count: usize,
    any: bool,
    /// argv position of the destination key.
    store: Option<usize>,
    storedist: bool,
}

/// Parses a search's arguments in Redis's order, so the first error is Redis's. `z` is
/// the source (`None` when missing: a BYMEMBER centre and the radius after it are not
/// read, and FROMMEMBER is only noted, as Redis does).
#[expect(
    clippy::too_many_lines,
    reason = "one option loop, kept in Redis's order"
)]
fn parse(argv: &[&[u8]], kind: Kind, z: Option<&ZSetValue>) -> Result<Query, String> {
    let mut shape = Shape {
        lon: 0.0,
        lat: 0.0,
        extent: Extent::Radius(0.0),
        unit_m: 1.0,
    };
    let base = match kind {
        Kind::Radius { .. } => {
            (shape.lon, shape.lat) = parse_lon_lat(argv[2], argv[3])?;
            let (r, u) = parse_distance(argv[4], argv[5])?;
            (shape.extent, shape.unit_m) = (Extent::Radius(r), u);
            6
        }
        Kind::ByMember { .. } => {
            if let Some(z) = z {
                (shape.lon, shape.lat) = member_pos(z, argv[2])?;
                let (r, u) = parse_distance(argv[3], argv[4])?;
                (shape.extent, shape.unit_m) = (Extent::Radius(r), u);
            }
            5
        }
        Kind::Search => 2,
        Kind::SearchStore => 3,
    };
    let mut q = Query {
        shape,
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::None,
        count: 0,
        any: false,
        store: (kind == Kind::SearchStore).then_some(1),
        storedist: false,
    };
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let opts = &argv[base..];
    let n = opts.len();
    let mut i = 0;
    while i < n {
        let a = opts[i];
        let search = kind.is_search();
        if eq_ic(a, "withdist") {
            q.withdist = true;
        } else if eq_ic(a, "withhash") {
            q.withhash = true;
        } else if eq_ic(a, "withcoord") {
            q.withcoord = true;
        } else if eq_ic(a, "any") {
            q.any = true;
        } else if eq_ic(a, "asc") {
            q.sort = Sort::Asc;
        } else if eq_ic(a, "desc") {
            q.sort = Sort::Desc;
        } else if eq_ic(a, "count") && i + 1 < n {
            let c = parse_i64(opts[i + 1]).ok_or(errors::NOT_INTEGER)?;
            if c <= 0 {
                return Err("ERR COUNT must be > 0".to_owned());
            }
            q.count = usize::try_from(c).unwrap_or(usize::MAX);
            i += 1;
        } else if (eq_ic(a, "store") || eq_ic(a, "storedist")) && i + 1 < n && kind.takes_store() {
            q.store = Some(base + i + 1);
            q.storedist = eq_ic(a, "storedist");
            i += 1;
        } else if eq_ic(a, "storedist") && kind == Kind::SearchStore {
            q.storedist = true;
        } else if eq_ic(a, "frommember") && i + 1 < n && search && !fromloc {
            if let Some(z) = z {
                (q.shape.lon, q.shape.lat) = member_pos(z, opts[i + 1])?;
            }
            frommember = true;
            i += 1;
        } else if eq_ic(a, "fromlonlat") && i + 2 < n && search && !frommember {
            (q.shape.lon, q.shape.lat) = parse_lon_lat(opts[i + 1], opts[i + 2])?;
            fromloc = true;
            i += 2;
        } else if eq_ic(a, "byradius") && i + 2 < n && search && !bybox {
            let (r, u) = parse_distance(opts[i + 1], opts[i + 2])?;
            (q.shape.extent, q.shape.unit_m) = (Extent::Radius(r), u);
            byradius = true;
            i += 2;
        } else if eq_ic(a, "bybox") && i + 3 < n && search && !byradius {
            let (width, height, u) = parse_box(opts[i + 1], opts[i + 2], opts[i + 3])?;
            (q.shape.extent, q.shape.unit_m) = (Extent::Box { width, height }, u);
            bybox = true;
            i += 3;
        } else {
            return Err(errors::SYNTAX.to_owned());
        }
        i += 1;
    }
    if q.store.is_some() && (q.withdist || q.withhash || q.withcoord) {
        return Err(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if kind == Kind::SearchStore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    let name = String::from_utf8_lossy(argv[0]);
    if kind.is_search() && !(frommember || fromloc) {
        return Err(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        ));
    }
    if kind.is_search() && !(byradius || bybox) {
        return Err(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        ));
    }
    if q.any && q.count == 0 {
        return Err("ERR the ANY argument requires COUNT argument".to_owned());
    }
    Ok(q)
}

/// Runs a search on `src` (the source key's value): the reply, or the value to store.
fn run(proto: Protocol, argv: &[&[u8]], kind: Kind, src: Src<'_>, limits: &Limits) -> Outcome {
    let err = |e: &str| Outcome::Reply(encoded(proto, |w| w.error(e)));
    let z = match src {
        Src::ZSet(z) => Some(z),
        Src::Missing => None,
        Src::Set(_) | Src::WrongType => return err(errors::WRONGTYPE),
    };
    let mut q = match parse(argv, kind, z) {
        Ok(q) => q,
        Err(e) => return err(&e),
    };
    let Some(z) = z else {
        return match q.store {
            Some(_) => Outcome::Store {
                value: None,
                reply: encoded(proto, |w| w.int(0)),
            },
            None => Outcome::Reply(encoded(proto, |w| w.array(0))),
        };
    };
    if q.count != 0 && q.sort == Sort::None && !q.any {
        q.sort = Sort::Asc;
    }
    let mut found = geo::search(z, &q.shape, (q.any).then_some(q.count));
    if q.sort != Sort::None {
        geo::sort_points(&mut found, q.sort == Sort::Desc);
    }
    if q.count != 0 {
        found.truncate(q.count);
    }
    let unit = q.shape.unit_m;
    if q.store.is_none() {
        return Outcome::Reply(encoded(proto, |w| {
            let extra =
                usize::from(q.withdist) + usize::from(q.withhash) + usize::from(q.withcoord);
            w.array(found.len());
            for p in &found {
                if extra > 0 {
                    w.array(extra + 1);
                }
                w.bulk(&p.member);
                if q.withdist {
                    write_distance(w, p.dist_m / unit);
                }
                if q.withhash {
                    w.int(p.score as i64);
                }
                if q.withcoord {
                    w.array(2);
                    write_coord(w, p.lon);
                    write_coord(w, p.lat);
                }
            }
        }));
    }
    let n = found.len() as i64;
    let entries: Vec<(f64, Vec<u8>)> = found
        .into_iter()
        .map(|p| {
            let s = if q.storedist {
                p.dist_m / unit
            } else {
                p.score
            };
            (s, p.member)
        })
        .collect();
    let value =
        (!entries.is_empty()).then(|| Value::ZSet(ZSetValue::from_entries(entries, &limits.zset)));
    Outcome::Store {
        value,
        reply: encoded(proto, |w| w.int(n)),
    }
}

/// The read-only forms: a keyed command on the source's shard.
fn read_only(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter, kind: Kind) {
    let limits = Limits {
        set: super::sets::set_limits(&ctx.shard.cfg),
        zset: super::zsets::zset_limits(&ctx.shard.cfg),
    };
    let proto = ctx.proto;
    let src = match read_zset(ctx, argv[kind.src()]) {
        Err(()) => Src::WrongType,
        Ok(None) => Src::Missing,
        Ok(Some(z)) => Src::ZSet(z),
    };
    match run(proto, argv, kind, src, &limits) {
        Outcome::Reply(r) => w.raw(&r),
        Outcome::Store { .. } => unreachable!("read-only forms take no STORE"),
    }
}

pub fn georadius_ro(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    read_only(ctx, argv, w, Kind::Radius { store: false });
}

pub fn georadiusbymember_ro(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    read_only(ctx, argv, w, Kind::ByMember { store: false });
}

pub fn geosearch(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    read_only(ctx, argv, w, Kind::Search);
}

/// The forms that may store, as multi-key commands (source and destination on any
/// shards).
macro_rules! storing {
    ($ty:ident, $kind:expr, $handler:ident) => {
        struct $ty;
        impl MultiKey for $ty {
            fn keys(argv: &[&[u8]]) -> Result<Keys, String> {
                let kind = $kind;
                // A parse that fails here fails (at least as early) in `compute`, which
                // answers the error; the destination only matters for a good parse.
                let dest = parse(argv, kind, None).ok().and_then(|q| q.store);
                Ok(Keys {
                    sources: vec![kind.src()],
                    dest,
                })
            }

            fn compute(
                proto: Protocol,
                argv: &[&[u8]],
                srcs: &[Src<'_>],
                limits: &Limits,
            ) -> Outcome {
                run(proto, argv, $kind, srcs[0], limits)
            }
        }

        pub fn $handler(ctx: &mut Ctx, argv: &[&[u8]]) -> Partial {
            multikey::start::<$ty>(ctx, argv)
        }
    };
}

storing!(GeoRadius, Kind::Radius { store: true }, georadius);
storing!(
    GeoRadiusByMember,
    Kind::ByMember { store: true },
    georadiusbymember
);
storing!(GeoSearchStore, Kind::SearchStore, geosearchstore);
