//! Geo on sorted sets, as Redis 7.0's `geohash.c`, `geohash_helper.c` and `geo.c` compute
//! it, so that scores, distances and search results match redis-server digit for digit.
//!
//! A point is stored as a sorted-set score: the 52-bit interleaving of its latitude and
//! longitude cells at 26 bits each (latitude bits even, longitude bits odd), over the
//! Web-Mercator latitude range ±85.05112878. A search covers the query shape with the
//! cell of the centre at a step chosen from the radius plus its eight neighbours (some
//! dropped when the shape does not reach them), reads each cell's score range, and keeps
//! the points inside the shape by haversine distance.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::float_cmp,
    clippy::manual_midpoint,
    reason = "the casts and comparisons are Redis's, kept so results match bit for bit"
)]

use crate::zsets::{ScoreBound, ZSetValue};

pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.051_128_78;
pub const LAT_MAX: f64 = 85.051_128_78;
/// Bits per coordinate in a stored score (52 bits in all).
pub const STEP_MAX: u8 = 26;
/// Redis's `EARTH_RADIUS_IN_METERS` (WGS-84 quadratic mean radius).
pub const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
const MERCATOR_MAX: f64 = 20_037_726.37;
/// The longitude (odd) and latitude (even) bits of an interleaved cell.
const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;
const EVEN: u64 = 0x5555_5555_5555_5555;
const D_R: f64 = std::f64::consts::PI / 180.0;

/// A geohash cell: `step` bits per coordinate, interleaved in `bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Clone, Copy, Debug)]
struct Range {
    min: f64,
    max: f64,
}

const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// A cell's bounds.
#[derive(Clone, Copy, Debug, Default)]
struct Area {
    lon_min: f64,
    lon_max: f64,
    lat_min: f64,
    lat_max: f64,
}

/// Spreads the low 32 bits of `v` to the even bit positions.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `v` into the low 32 bits.
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

/// Whether `(lon, lat)` is a point GEOADD accepts.
#[must_use]
pub fn valid_lon_lat(lon: f64, lat: f64) -> bool {
    (LONG_MIN..=LONG_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

/// `geohashEncode` over the given ranges; `None` outside them (or Redis's limits).
fn encode_in(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    if step == 0 || step > 32 || !valid_lon_lat(lon, lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_r.min) / (lat_r.max - lat_r.min) * scale;
    let lon_off = (lon - lon_r.min) / (lon_r.max - lon_r.min) * scale;
    // C converts the doubles to `uint32_t` by truncation.
    Some(Cell {
        bits: spread(lat_off as u32) | (spread(lon_off as u32) << 1),
        step,
    })
}

fn encode(lon: f64, lat: f64, step: u8) -> Option<Cell> {
    encode_in(LONG_RANGE, LAT_RANGE, lon, lat, step)
}

/// `geohashAlign52Bits`.
fn align52(c: Cell) -> u64 {
    c.bits << (52 - u32::from(c.step) * 2)
}

/// The sorted-set score GEOADD stores for a valid point.
#[must_use]
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode(lon, lat, STEP_MAX).map(align52)
}

fn decode_area(c: Cell) -> Option<Area> {
    if c.is_zero() {
        return None;
    }
    let lat_cell = squash(c.bits);
    let lon_cell = squash(c.bits >> 1);
    let div = (1u64 << c.step) as f64;
    let lat_scale = LAT_MAX - LAT_MIN;
    let lon_scale = LONG_MAX - LONG_MIN;
    Some(Area {
        lat_min: LAT_MIN + (f64::from(lat_cell) * 1.0 / div) * lat_scale,
        lat_max: LAT_MIN + ((f64::from(lat_cell) + 1.0) * 1.0 / div) * lat_scale,
        lon_min: LONG_MIN + (f64::from(lon_cell) * 1.0 / div) * lon_scale,
        lon_max: LONG_MIN + ((f64::from(lon_cell) + 1.0) * 1.0 / div) * lon_scale,
    })
}

/// C's `(uint64_t)d` as gcc compiles it on x86-64 (scores of non-geo members may be
/// negative or huge).
fn double_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d < TWO_63 {
        (d as i64) as u64
    } else {
        ((d - TWO_63) as i64 as u64) ^ (1 << 63)
    }
}

/// The centre of the cell a stored score names: `(longitude, latitude)`.
#[must_use]
pub fn decode_score(score: f64) -> (f64, f64) {
    let cell = Cell {
        bits: double_to_u64(score),
        step: STEP_MAX,
    };
    let a = decode_area(cell).expect("a step-26 cell is never zero");
    let lon = ((a.lon_min + a.lon_max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat_min + a.lat_max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The standard 11-character geohash of a stored score (GEOHASH): decoded, re-encoded
/// over latitude ±90, the 11th character always `0`.
#[must_use]
pub fn geohash_text(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let bits = encode_in(
        LONG_RANGE,
        Range {
            min: -90.0,
            max: 90.0,
        },
        lon,
        lat,
        26,
    )
    .map_or(0, |c| c.bits);
    let mut out = [b'0'; 11];
    for (i, o) in out.iter_mut().enumerate().take(10) {
        *o = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
    }
    out
}

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

/// Haversine distance in metres (Redis 7.0's `geohashGetDistance`).
#[must_use]
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lat1r = deg_rad(lat1);
    let lon1r = deg_rad(lon1);
    let lat2r = deg_rad(lat2);
    let lon2r = deg_rad(lon2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let v = ((lon2r - lon1r) / 2.0).sin();
    2.0 * EARTH_RADIUS_M * (u * u + lat1r.cos() * lat2r.cos() * v * v).sqrt().asin()
}

/// A distance unit's size in metres (`m`, `km`, `ft`, `mi`, any case).
#[must_use]
pub fn unit_metres(unit: &[u8]) -> Option<f64> {
    match unit.to_ascii_lowercase().as_slice() {
        b"m" => Some(1.0),
        b"km" => Some(1000.0),
        b"ft" => Some(0.3048),
        b"mi" => Some(1609.34),
        _ => None,
    }
}

/// What a search covers, in the query's unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Extent {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search shape: its centre, extent and the unit's size in metres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    pub lon: f64,
    pub lat: f64,
    pub extent: Extent,
    pub unit_m: f64,
}

/// A point a search found.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub member: Vec<u8>,
    pub score: f64,
    pub lon: f64,
    pub lat: f64,
    /// Metres from the centre.
    pub dist_m: f64,
}

/// `geohashEstimateStepsByRadius`.
fn steps_for_radius(mut range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_m < MERCATOR_MAX {
        range_m *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// `geohashBoundingBox`: `[min lon, min lat, max lon, max lat]`.
fn bounding_box(s: &Shape) -> [f64; 4] {
    let (h, w) = match s.extent {
        Extent::Radius(r) => (r, r),
        Extent::Box { width, height } => (height / 2.0, width / 2.0),
    };
    let (h, w) = (s.unit_m * h, s.unit_m * w);
    let lat_delta = rad_deg(h / EARTH_RADIUS_M);
    let lon_delta_top = rad_deg(w / EARTH_RADIUS_M / deg_rad(s.lat + lat_delta).cos());
    let lon_delta_bottom = rad_deg(w / EARTH_RADIUS_M / deg_rad(s.lat - lat_delta).cos());
    let lon_delta = if s.lat < 0.0 {
        lon_delta_bottom
    } else {
        lon_delta_top
    };
    [
        s.lon - lon_delta,
        s.lat - lat_delta,
        s.lon + lon_delta,
        s.lat + lat_delta,
    ]
}

/// `geohash_move_x` (longitude, odd bits) and `geohash_move_y` (latitude, even bits).
fn moved(c: Cell, dx: i8, dy: i8) -> Cell {
    let width = 64 - u32::from(c.step) * 2;
    let step_axis = |bits: u64, own: u64, other: u64, d: i8| -> u64 {
        // `own` selects this axis's bits, `other` the other axis's.
        if d == 0 {
            return bits & own;
        }
        let mut v = bits & own;
        let zz = other >> width;
        if d > 0 {
            v = v.wrapping_add(zz + 1);
        } else {
            v = (v | zz).wrapping_sub(zz + 1);
        }
        v & (own >> width)
    };
    let x = step_axis(c.bits, ODD, EVEN, dx);
    let y = step_axis(c.bits, EVEN, ODD, dy);
    Cell {
        bits: x | y,
        step: c.step,
    }
}

/// The nine cells to read, in Redis's order (centre, N, S, E, W, NE, NW, SE, SW), with
/// the useless ones zeroed.
fn search_cells(s: &Shape) -> [Cell; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(s);
    let radius_m = s.unit_m
        * match s.extent {
            Extent::Radius(r) => r,
            Extent::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        };
    let mut steps = steps_for_radius(radius_m, s.lat);
    let around = |steps: u8| {
        let c = encode(s.lon, s.lat, steps).unwrap_or_default();
        let n = [
            c,
            moved(c, 0, 1),
            moved(c, 0, -1),
            moved(c, 1, 0),
            moved(c, -1, 0),
            moved(c, 1, 1),
            moved(c, -1, 1),
            moved(c, 1, -1),
            moved(c, -1, -1),
        ];
        (n, decode_area(c).unwrap_or_default())
    };
    let (mut cells, mut area) = around(steps);
    let bounds = |c: Cell| decode_area(c).unwrap_or_default();
    let decrease = bounds(cells[1]).lat_max < max_lat
        || bounds(cells[2]).lat_min > min_lat
        || bounds(cells[3]).lon_max < max_lon
        || bounds(cells[4]).lon_min > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        (cells, area) = around(steps);
    }
    if steps >= 2 {
        let zero = Cell::default();
        if area.lat_min < min_lat {
            for i in [2, 8, 7] {
                cells[i] = zero;
            }
        }
        if area.lat_max > max_lat {
            for i in [1, 5, 6] {
                cells[i] = zero;
            }
        }
        if area.lon_min < min_lon {
            for i in [4, 8, 6] {
                cells[i] = zero;
            }
        }
        if area.lon_max > max_lon {
            for i in [3, 7, 5] {
                cells[i] = zero;
            }
        }
    }
    cells
}

/// Metres from the centre when the point at `(lon, lat)` is inside the shape.
fn within(s: &Shape, lon: f64, lat: f64) -> Option<f64> {
    match s.extent {
        Extent::Radius(r) => {
            let d = distance(s.lon, s.lat, lon, lat);
            (d <= r * s.unit_m).then_some(d)
        }
        Extent::Box { width, height } => {
            let (w, h) = (width * s.unit_m, height * s.unit_m);
            let lon_d = distance(lon, lat, s.lon, lat);
            let lat_d = distance(lon, lat, lon, s.lat);
            if lon_d > w / 2.0 || lat_d > h / 2.0 {
                return None;
            }
            Some(distance(s.lon, s.lat, lon, lat))
        }
    }
}

/// The points of `z` inside `s`, in the order Redis finds them (cell by cell, scores
/// ascending in each). With `limit` (COUNT n ANY) the search stops once it has that many.
#[must_use]
pub fn search(z: &ZSetValue, s: &Shape, limit: Option<usize>) -> Vec<Point> {
    let cells = search_cells(s);
    let mut out: Vec<Point> = Vec::new();
    let full = |out: &Vec<Point>| limit.is_some_and(|l| out.len() >= l);
    let mut last = 0;
    for (i, &c) in cells.iter().enumerate() {
        if c.is_zero() {
            continue;
        }
        // Huge radii make neighbours coincide; skip a repeat of the last cell read.
        if last != 0 && cells[last] == c {
            continue;
        }
        if full(&out) {
            break;
        }
        let min = align52(c) as f64;
        let max = align52(Cell {
            bits: c.bits + 1,
            step: c.step,
        }) as f64;
        let (a, b) = z.score_range(
            ScoreBound {
                value: min,
                exclusive: false,
            },
            ScoreBound {
                value: max,
                exclusive: true,
            },
        );
        let mut done = false;
        z.for_ranks(a, b, false, |score, member| {
            if done {
                return;
            }
            let (lon, lat) = decode_score(score);
            if let Some(dist_m) = within(s, lon, lat) {
                out.push(Point {
                    member: member.to_vec(),
                    score,
                    lon,
                    lat,
                    dist_m,
                });
            }
            done = full(&out);
        });
        last = i;
    }
    out
}

/// Sorts found points by distance (stable, as glibc's merge-sort `qsort`); `desc` for
/// farthest first.
pub fn sort_points(points: &mut [Point], desc: bool) {
    points.sort_by(|a, b| {
        let o = a
            .dist_m
            .partial_cmp(&b.dist_m)
            .unwrap_or(std::cmp::Ordering::Equal);
        if desc { o.reverse() } else { o }
    });
}

/// `%.17Lf` with trailing zeros (and a bare dot) removed, `-0` as `0`: how Redis prints
/// coordinates (`addReplyHumanLongDouble`). The value is exact in `long double`, so the
/// decimal expansion of the `f64` is what it prints.
#[must_use]
pub fn human_double(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        return "0".to_owned();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zsets::ZSetLimits;

    #[test]
    fn spread_and_squash_invert() {
        for v in [0u32, 1, 0x3ff_ffff, 0xdead_beef, u32::MAX] {
            assert_eq!(squash(spread(v)), v);
        }
    }

    #[test]
    fn scores_match_redis() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo" 15.087269 37.502669 "Catania"
        assert_eq!(
            score_of(13.361_389, 38.115_556),
            Some(3_479_099_956_230_698)
        );
        assert_eq!(
            score_of(15.087_269, 37.502_669),
            Some(3_479_447_370_796_909)
        );
        assert_eq!(score_of(181.0, 0.0), None);
        assert_eq!(score_of(0.0, 85.06), None);
    }

    #[test]
    fn geodist_geohash_geopos_match_redis_docs() {
        let p = score_of(13.361_389, 38.115_556).unwrap() as f64;
        let c = score_of(15.087_269, 37.502_669).unwrap() as f64;
        let (plon, plat) = decode_score(p);
        let (clon, clat) = decode_score(c);
        assert_eq!(
            format!("{:.4}", distance(plon, plat, clon, clat)),
            "166274.1516"
        );
        assert_eq!(&geohash_text(p), b"sqc8b49rny0");
        assert_eq!(&geohash_text(c), b"sqdtr74hyu0");
        assert_eq!(human_double(plon), "13.36138933897018433");
        assert_eq!(human_double(plat), "38.11555639549629859");
    }

    #[test]
    fn radius_search_finds_redis_docs_answer() {
        let mut z = ZSetValue::from_entries(Vec::new(), &ZSetLimits::default());
        for (lon, lat, m) in [
            (13.361_389, 38.115_556, "Palermo"),
            (15.087_269, 37.502_669, "Catania"),
        ] {
            z.insert(
                m.as_bytes(),
                score_of(lon, lat).unwrap() as f64,
                &ZSetLimits::default(),
            );
        }
        let s = Shape {
            lon: 15.0,
            lat: 37.0,
            extent: Extent::Radius(200.0),
            unit_m: 1000.0,
        };
        let mut found = search(&z, &s, None);
        sort_points(&mut found, false);
        let names: Vec<&[u8]> = found.iter().map(|p| p.member.as_slice()).collect();
        assert_eq!(names, vec![&b"Catania"[..], b"Palermo"]);
        assert_eq!(format!("{:.4}", found[0].dist_m / 1000.0), "56.4413");
        assert_eq!(format!("{:.4}", found[1].dist_m / 1000.0), "190.4424");
        let s = Shape {
            extent: Extent::Box {
                width: 400.0,
                height: 400.0,
            },
            ..s
        };
        assert_eq!(search(&z, &s, Some(1)).len(), 1);
    }

    #[test]
    fn human_double_trims() {
        assert_eq!(human_double(1.5), "1.5");
        assert_eq!(human_double(-0.0), "0");
        assert_eq!(human_double(180.0), "180");
    }
}
