//! Differential tests of the geo commands against a real `redis-server`: seeded random
//! points (clustered, world-wide, near the poles and the antimeridian) and random
//! queries (every search form and option, STORE/STOREDIST into keys on either shard,
//! bad arguments), RESP2 and RESP3, percore with 1 and 2 shards, replies compared byte
//! for byte.
//!
//! Without `redis-server` on the PATH the tests print a notice and pass; with
//! `PERCORE_REQUIRE_REDIS=1` they fail instead.

mod common;

use common::{Rng, Server, show};

const SEEDS: [u64; 3] = [0x6e0_0001, 0x0bad_cafe, 0x5eed_f00d];
/// Commands per seed and protocol (after the points are loaded).
const COMMANDS: usize = 500;
/// Points GEOADDed per seed before the random commands.
const POINTS: usize = 400;
/// Source keys: `{t}` ones share a shard, the others spread over two shards. `big` gets
/// enough members to leave the listpack form.
const SOURCES: [&str; 4] = ["big", "small", "{t}a", "{t}b"];
const DESTS: [&str; 3] = ["dst", "{t}d", "small"];

/// A coordinate in `lo..hi` with six decimals.
fn coord(r: &mut Rng, lo: f64, hi: f64) -> String {
    let f = (r.next() % 1_000_001) as f64 / 1_000_000.0;
    format!("{:.6}", lo + (hi - lo) * f)
}

/// A point: mostly clustered around Sicily, some anywhere, some at the edges.
fn point(r: &mut Rng) -> (String, String) {
    match r.below(10) {
        0..=5 => (coord(r, 12.0, 16.0), coord(r, 36.0, 39.0)),
        6 => (coord(r, -180.0, 180.0), coord(r, -85.05, 85.05)),
        7 => (coord(r, 178.0, 180.0), coord(r, -10.0, 10.0)),
        8 => (coord(r, -180.0, -178.0), coord(r, -10.0, 10.0)),
        _ => (coord(r, -30.0, 30.0), coord(r, 80.0, 85.05)),
    }
}

fn member(r: &mut Rng) -> String {
    format!("m{}", r.below(POINTS + 20))
}

fn unit(r: &mut Rng) -> String {
    if r.below(30) == 0 {
        return "yd".to_owned();
    }
    r.pick(&["m", "km", "KM", "ft", "mi", "mi", "km", "km"])
        .to_owned()
}

fn radius(r: &mut Rng) -> String {
    match r.below(40) {
        0 => "0".to_owned(),
        1 => "-5".to_owned(),
        2 => "abc".to_owned(),
        3..=5 => format!("{}", r.below(20_000)),
        _ => format!("{}.{}", r.below(400), r.below(100)),
    }
}

/// FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX, sometimes both or neither.
fn search_spec(r: &mut Rng, a: &mut Vec<String>) {
    match r.below(30) {
        0 => {}
        1..=12 => {
            a.push("FROMMEMBER".into());
            a.push(member(r));
        }
        _ => {
            a.push("fromlonlat".into());
            let (lon, lat) = if r.below(15) == 0 {
                ("200".to_owned(), "10".to_owned())
            } else {
                point(r)
            };
            a.push(lon);
            a.push(lat);
        }
    }
    match r.below(30) {
        0 => {}
        1..=15 => {
            a.push("BYRADIUS".into());
            a.push(radius(r));
            a.push(unit(r));
        }
        _ => {
            a.push("bybox".into());
            a.push(radius(r));
            a.push(radius(r));
            a.push(unit(r));
        }
    }
}

fn options(r: &mut Rng, a: &mut Vec<String>, with: bool) {
    for _ in 0..r.below(5) {
        match r.below(9) {
            0 if with => a.push("WITHDIST".into()),
            1 if with => a.push("withcoord".into()),
            2 if with => a.push("WITHHASH".into()),
            3 => a.push(r.pick(&["ASC", "desc"]).into()),
            4 | 5 => {
                a.push("COUNT".into());
                let bad = r.below(12) == 0;
                a.push(
                    if bad {
                        r.pick(&["0", "-1", "x"])
                    } else {
                        r.pick(&["1", "3", "10", "50"])
                    }
                    .into(),
                );
                if r.below(3) == 0 {
                    a.push("ANY".into());
                }
            }
            6 if r.below(15) == 0 => a.push("ANY".into()),
            7 if r.below(15) == 0 => a.push("bogus".into()),
            _ => {}
        }
    }
}

fn source(r: &mut Rng) -> String {
    if r.below(25) == 0 {
        return r.pick(&["str", "nokey"]).to_owned();
    }
    r.pick(&SOURCES).to_owned()
}

fn command(r: &mut Rng) -> Vec<Vec<String>> {
    let s = |x: &str| x.to_owned();
    let mut a: Vec<String>;
    match r.below(20) {
        0 | 1 => {
            a = vec![s("GEOADD"), source(r)];
            for _ in 0..r.below(3) {
                a.push(r.pick(&["NX", "XX", "CH", "ch"]).into());
            }
            for _ in 0..=r.below(3) {
                let (lon, lat) = match r.below(20) {
                    0 => (s("181"), s("0")),
                    1 => (s("0"), s("85.06")),
                    2 => (s("x"), s("1")),
                    _ => point(r),
                };
                a.extend([lon, lat, member(r)]);
            }
            if r.below(15) == 0 {
                a.pop();
            }
        }
        2 => {
            a = vec![s("GEODIST"), source(r), member(r), member(r)];
            if r.below(2) == 0 {
                a.push(unit(r));
            }
            if r.below(15) == 0 {
                a.push(s("extra"));
            }
        }
        3 => {
            a = vec![s(r.pick(&["GEOHASH", "GEOPOS"])), source(r)];
            for _ in 0..r.below(4) {
                a.push(member(r));
            }
        }
        4..=8 => {
            a = vec![s(r.pick(&["GEOSEARCH", "geosearch"])), source(r)];
            search_spec(r, &mut a);
            options(r, &mut a, true);
        }
        9 | 10 => {
            a = vec![s("GEOSEARCHSTORE"), r.pick(&DESTS).into(), source(r)];
            search_spec(r, &mut a);
            let with = r.below(10) == 0;
            options(r, &mut a, with);
            if r.below(2) == 0 {
                a.push(s("STOREDIST"));
            }
            let dest = a[1].clone();
            return vec![a, vec![s("ZRANGE"), dest, s("0"), s("-1"), s("WITHSCORES")]];
        }
        11..=16 => {
            let by_member = r.below(2) == 0;
            let ro = r.below(3) == 0;
            let name = match (by_member, ro) {
                (false, false) => "GEORADIUS",
                (false, true) => "GEORADIUS_RO",
                (true, false) => "GEORADIUSBYMEMBER",
                (true, true) => "georadiusbymember_ro",
            };
            a = vec![s(name), source(r)];
            if by_member {
                a.push(member(r));
            } else {
                let (lon, lat) = point(r);
                a.extend([lon, lat]);
            }
            a.push(radius(r));
            a.push(unit(r));
            let store = !ro && r.below(3) == 0;
            let with = !store || r.below(10) == 0;
            options(r, &mut a, with);
            if store || (ro && r.below(10) == 0) {
                a.push(s(r.pick(&["STORE", "STOREDIST"])));
                let dest = r.pick(&DESTS).to_owned();
                a.push(dest.clone());
                return vec![a, vec![s("ZRANGE"), dest, s("0"), s("-1"), s("WITHSCORES")]];
            }
        }
        17 => a = vec![s("ZREM"), source(r), member(r)],
        _ => {
            a = vec![s("GEOPOS"), source(r), member(r)];
        }
    }
    vec![a]
}

fn run(threads: usize, resp3: bool) {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(threads);
    for seed in SEEDS {
        let mut rc = redis.conn();
        let mut pc = percore.conn();
        for c in [&mut rc, &mut pc] {
            c.cmd_raw(&["FLUSHALL"]);
            c.cmd_raw(&["SET", "str", "x"]);
            if resp3 {
                c.cmd_raw(&["HELLO", "3"]);
            }
        }
        let mut r = Rng(seed);
        let mut setup = Vec::new();
        for i in 0..POINTS {
            let key = if i % 4 == 0 {
                r.pick(&SOURCES[1..])
            } else {
                "big"
            };
            let (lon, lat) = point(&mut r);
            setup.push(vec![
                "GEOADD".to_owned(),
                key.to_owned(),
                lon,
                lat,
                format!("m{i}"),
            ]);
        }
        // `small` stays a listpack: keep it under 128 members.
        for cmd in setup.iter().chain(std::iter::once(&vec![
            "ZREMRANGEBYRANK".to_owned(),
            "small".to_owned(),
            "100".to_owned(),
            "-1".to_owned(),
        ])) {
            assert_eq!(show(&pc.cmd_raw(cmd)), show(&rc.cmd_raw(cmd)), "{cmd:?}");
        }
        let (mut found, mut errors) = (0, 0);
        for i in 0..COMMANDS {
            for cmd in command(&mut r) {
                let want = rc.cmd_raw(&cmd);
                found += usize::from(want.starts_with(b"*") && !want.starts_with(b"*0\r"));
                errors += usize::from(want.starts_with(b"-"));
                let got = pc.cmd_raw(&cmd);
                assert_eq!(
                    show(&got),
                    show(&want),
                    "threads {threads} resp3 {resp3} seed {seed:#x} command {i}: {cmd:?}"
                );
            }
        }
        // The sequence must exercise both non-empty results and errors.
        println!("seed {seed:#x}: {found} non-empty arrays, {errors} errors");
        assert!(
            found > COMMANDS / 5 && errors > COMMANDS / 20,
            "{found} {errors}"
        );
    }
}

#[test]
fn random_geo_sequences_match_redis_one_shard_resp2() {
    run(1, false);
}

#[test]
fn random_geo_sequences_match_redis_two_shards_resp2() {
    run(2, false);
}

#[test]
fn random_geo_sequences_match_redis_two_shards_resp3() {
    run(2, true);
}

#[test]
fn geo_encodings_and_documented_examples_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore_threads(2);
    let mut rc = redis.conn();
    let mut pc = percore.conn();
    let script: &[&[&str]] = &[
        &[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &["GEODIST", "Sicily", "Palermo", "Catania"],
        &["GEODIST", "Sicily", "Palermo", "Catania", "km"],
        &[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "WITHDIST",
            "WITHCOORD",
            "WITHHASH",
        ],
        &["GEOHASH", "Sicily", "Palermo", "Catania", "nope"],
        &["GEOPOS", "Sicily", "Palermo", "nope"],
        &["GEOADD", "Sicily", "200", "100", "x"],
        &["GEOADD", "Sicily", "xx", "nx", "1", "2", "x"],
        &[
            "GEOSEARCH",
            "Sicily",
            "FROMLONLAT",
            "15",
            "37",
            "BYBOX",
            "400",
            "400",
            "km",
            "ASC",
            "WITHCOORD",
            "WITHDIST",
        ],
        &[
            "GEOSEARCHSTORE",
            "{x}dst",
            "Sicily",
            "FROMMEMBER",
            "Palermo",
            "BYRADIUS",
            "300",
            "km",
            "STOREDIST",
        ],
        &["ZRANGE", "{x}dst", "0", "-1", "WITHSCORES"],
        &["OBJECT", "ENCODING", "{x}dst"],
        &[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "{y}dst",
            "WITHDIST",
        ],
        &[
            "GEORADIUSBYMEMBER",
            "nokey",
            "x",
            "-1",
            "km",
            "STORE",
            "{x}dst",
        ],
        &["EXISTS", "{x}dst"],
        &[
            "GEOSEARCH",
            "Sicily",
            "FROMMEMBER",
            "nope",
            "BYRADIUS",
            "1",
            "m",
        ],
        &["GEOSEARCH", "Sicily", "BYRADIUS", "1", "m"],
        &["GEOSEARCH", "Sicily", "FROMLONLAT", "1", "1"],
        &[
            "GEOSEARCH",
            "Sicily",
            "FROMLONLAT",
            "1",
            "1",
            "BYRADIUS",
            "1",
            "m",
            "ANY",
        ],
        &[
            "GEOSEARCH",
            "Sicily",
            "FROMLONLAT",
            "1",
            "1",
            "BYRADIUS",
            "1",
            "m",
            "STORE",
            "x",
        ],
        &[
            "GEORADIUS_RO",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "x",
        ],
        &[
            "GEOSEARCHSTORE",
            "d",
            "Sicily",
            "FROMLONLAT",
            "1",
            "1",
            "BYRADIUS",
            "1",
            "m",
            "WITHDIST",
        ],
    ];
    for cmd in script {
        assert_eq!(show(&pc.cmd_raw(cmd)), show(&rc.cmd_raw(cmd)), "{cmd:?}");
    }
}
