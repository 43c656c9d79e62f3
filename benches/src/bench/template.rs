//! Command templates (`HSET __key__ f __data__`), the weighted mix of them, and encoding a
//! request straight into a connection's output buffer as a RESP multibulk.

use percore_net::resp::{NulByte, split_args};

use super::keys::{KeyCursor, KeySpace};
use super::rng::Rng;

/// Replaced by a key drawn from the key distribution (each occurrence draws its own).
pub const KEY_PLACEHOLDER: &str = "__key__";
/// redis-benchmark's spelling of the key placeholder, accepted as the same thing.
pub const KEY_PLACEHOLDER_ALT: &str = "__rand_int__";
/// Replaced by a value of `--value-size` bytes (one value per request).
pub const DATA_PLACEHOLDER: &str = "__data__";
/// The most arguments a template may have.
pub const MAX_TEMPLATE_ARGS: usize = 1024;
/// Values are slices of a pool this much larger than the largest value, starting at a
/// random offset, so values differ and do not compress to nothing in a snapshot.
const DATA_POOL_SLACK_BYTES: usize = 4096;

/// The short names `--mix` understands, and their templates. Types other than strings get
/// their own key prefix so that a mix of them does not collide on one key with WRONGTYPE.
pub const BUILTIN_COMMANDS: &[(&str, &str)] = &[
    ("get", "GET __key__"),
    ("set", "SET __key__ __data__"),
    ("incr", "INCR __key__"),
    ("del", "DEL __key__"),
    ("exists", "EXISTS __key__"),
    ("ping", "PING"),
    ("hset", "HSET hash:__key__ field __data__"),
    ("hget", "HGET hash:__key__ field"),
    ("lpush", "LPUSH list:__key__ __data__"),
    ("rpush", "RPUSH list:__key__ __data__"),
    ("lpop", "LPOP list:__key__"),
    ("rpop", "RPOP list:__key__"),
    ("sadd", "SADD set:__key__ __data__"),
    ("spop", "SPOP set:__key__"),
    ("zadd", "ZADD zset:__key__ 1 __data__"),
];

/// The template a `--mix` name stands for.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN_COMMANDS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, t)| t)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Key,
    Data,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Arg {
    /// A literal argument, already encoded with its `$len` header and CRLF.
    Fixed(Vec<u8>),
    /// An argument with placeholders: its literal byte count and its parts.
    Pattern {
        literal_len: usize,
        parts: Vec<Part>,
    },
}

/// One compiled template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// As the user wrote it (or the `--mix` name), for reports.
    pub label: String,
    /// `*argc\r\n`.
    header: Vec<u8>,
    args: Vec<Arg>,
    uses_data: bool,
}

impl Template {
    /// Splits `text` as redis-cli does (quotes and escapes) and compiles it.
    pub fn parse(label: &str, text: &str) -> Result<Self, String> {
        let mut scratch = Vec::new();
        let mut ranges = Vec::new();
        split_args(text.as_bytes(), NulByte::IsData, &mut scratch, &mut ranges)
            .map_err(|_| format!("unbalanced quotes in '{text}'"))?;
        if ranges.is_empty() {
            return Err("a command template cannot be empty".into());
        }
        if ranges.len() > MAX_TEMPLATE_ARGS {
            return Err(format!(
                "a template may have at most {MAX_TEMPLATE_ARGS} arguments, '{text}' has {}",
                ranges.len()
            ));
        }
        let mut args = Vec::with_capacity(ranges.len());
        let mut uses_data = false;
        for &(start, end) in &ranges {
            let arg = &scratch[start..end];
            let parts = split_placeholders(arg);
            if parts.iter().all(|p| matches!(p, Part::Lit(_))) {
                let mut enc = format!("${}\r\n", arg.len()).into_bytes();
                enc.extend_from_slice(arg);
                enc.extend_from_slice(b"\r\n");
                args.push(Arg::Fixed(enc));
            } else {
                uses_data |= parts.contains(&Part::Data);
                let literal_len = parts
                    .iter()
                    .map(|p| match p {
                        Part::Lit(b) => b.len(),
                        _ => 0,
                    })
                    .sum();
                args.push(Arg::Pattern { literal_len, parts });
            }
        }
        Ok(Self {
            label: label.to_string(),
            header: format!("*{}\r\n", args.len()).into_bytes(),
            args,
            uses_data,
        })
    }

    /// Whether any argument holds `__data__`.
    pub fn uses_data(&self) -> bool {
        self.uses_data
    }

    /// Appends one request: keys drawn from `keys` through `cursor`/`rng`, every
    /// `__data__` replaced by `data`.
    #[inline]
    pub fn encode(
        &self,
        keys: &KeySpace,
        cursor: &mut KeyCursor,
        rng: &mut Rng,
        data: &[u8],
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(&self.header);
        for arg in &self.args {
            match arg {
                Arg::Fixed(enc) => out.extend_from_slice(enc),
                Arg::Pattern { literal_len, parts } => {
                    let len = parts.iter().fold(*literal_len, |n, p| match p {
                        Part::Lit(_) => n,
                        Part::Key => n + keys.key_len(),
                        Part::Data => n + data.len(),
                    });
                    out.push(b'$');
                    write_decimal(len as u64, out);
                    out.extend_from_slice(b"\r\n");
                    for p in parts {
                        match p {
                            Part::Lit(b) => out.extend_from_slice(b),
                            Part::Key => keys.write_key(keys.next_key(cursor, rng), out),
                            Part::Data => out.extend_from_slice(data),
                        }
                    }
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

/// Splits one argument at its placeholders.
fn split_placeholders(arg: &[u8]) -> Vec<Part> {
    let marks: [(&[u8], Part); 3] = [
        (KEY_PLACEHOLDER.as_bytes(), Part::Key),
        (KEY_PLACEHOLDER_ALT.as_bytes(), Part::Key),
        (DATA_PLACEHOLDER.as_bytes(), Part::Data),
    ];
    let mut parts = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    'scan: while i < arg.len() {
        for (mark, part) in &marks {
            if arg[i..].starts_with(mark) {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(part.clone());
                i += mark.len();
                continue 'scan;
            }
        }
        lit.push(arg[i]);
        i += 1;
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

/// Appends `v` in decimal.
#[inline]
pub fn write_decimal(mut v: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Values for `__data__`: sizes uniform in `min..=max`, contents slices of a pseudo-random
/// printable pool.
#[derive(Clone, Debug)]
pub struct DataPool {
    pool: Vec<u8>,
    min: usize,
    max: usize,
}

impl DataPool {
    pub fn new(min: usize, max: usize, seed: u64) -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        assert!(min <= max);
        let mut rng = Rng::new(seed, u64::MAX);
        let pool = (0..max + DATA_POOL_SLACK_BYTES)
            .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
            .collect();
        Self { pool, min, max }
    }

    /// A value for one request.
    #[inline]
    pub fn pick(&self, rng: &mut Rng) -> &[u8] {
        let len = if self.min == self.max {
            self.min
        } else {
            self.min + rng.below((self.max - self.min + 1) as u64) as usize
        };
        let start = rng.below((self.pool.len() - len + 1) as u64) as usize;
        &self.pool[start..start + len]
    }
}

/// The weighted templates of a run.
#[derive(Clone, Debug)]
pub struct Mix {
    templates: Vec<Template>,
    /// Running sums of the weights, for picking by one random draw.
    cumulative: Vec<u64>,
}

impl Mix {
    /// `entries` are templates with their weights; weights of zero drop the template.
    pub fn new(entries: Vec<(Template, u64)>) -> Result<Self, String> {
        let mut templates = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0u64;
        for (t, w) in entries {
            if w == 0 {
                continue;
            }
            total = total
                .checked_add(w)
                .ok_or_else(|| "weights add up to more than 2^64".to_string())?;
            templates.push(t);
            cumulative.push(total);
        }
        if templates.is_empty() {
            return Err("the mix has no command with a positive weight".into());
        }
        Ok(Self {
            templates,
            cumulative,
        })
    }

    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// Each template's share of requests, in the order given.
    pub fn shares(&self) -> Vec<(String, f64)> {
        let total = *self.cumulative.last().unwrap_or(&1) as f64;
        let mut prev = 0;
        self.templates
            .iter()
            .zip(&self.cumulative)
            .map(|(t, &c)| {
                let share = (c - prev) as f64 / total;
                prev = c;
                (t.label.clone(), share)
            })
            .collect()
    }

    /// Draws a template.
    #[inline]
    pub fn pick(&self, rng: &mut Rng) -> &Template {
        if self.templates.len() == 1 {
            return &self.templates[0];
        }
        let total = self.cumulative[self.cumulative.len() - 1];
        let r = rng.below(total);
        let i = self.cumulative.partition_point(|&c| c <= r);
        &self.templates[i]
    }
}

/// Everything a connection needs to make requests, shared read-only by all threads.
#[derive(Clone, Debug)]
pub struct Workload {
    pub mix: Mix,
    pub keys: KeySpace,
    pub data: DataPool,
}

/// One connection's request stream.
#[derive(Clone, Debug)]
pub struct RequestGen {
    rng: Rng,
    cursor: KeyCursor,
}

impl RequestGen {
    /// The stream of connection `conn` of `conns` for run seed `seed`.
    pub fn new(workload: &Workload, seed: u64, conn: u64, conns: u64) -> Self {
        Self {
            rng: Rng::new(seed, conn),
            cursor: workload.keys.cursor(conn, conns),
        }
    }

    /// Appends the next request to `out`.
    #[inline]
    pub fn write_next(&mut self, w: &Workload, out: &mut Vec<u8>) {
        let t = w.mix.pick(&mut self.rng);
        let data: &[u8] = if t.uses_data() {
            w.data.pick(&mut self.rng)
        } else {
            &[]
        };
        t.encode(&w.keys, &mut self.cursor, &mut self.rng, data, out);
    }
}

#[cfg(test)]
mod tests {
    use percore_net::resp::{ParseLimits, Parsed, Request, parse_request};

    use super::super::keys::Distribution;
    use super::*;

    fn parse_all(buf: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut req = Request::new();
        while pos < buf.len() {
            match parse_request(&buf[pos..], &ParseLimits::default(), &mut req) {
                Ok(Parsed::Complete { consumed }) => {
                    out.push(
                        (0..req.len())
                            .map(|i| req.arg(&buf[pos..], i).to_vec())
                            .collect(),
                    );
                    pos += consumed;
                }
                other => panic!("{other:?} at {pos}"),
            }
        }
        out
    }

    fn workload(mix: &[(&str, u64)], keyspace: u64, dist: Distribution) -> Workload {
        let entries = mix
            .iter()
            .map(|&(t, w)| (Template::parse(t, t).unwrap(), w))
            .collect();
        Workload {
            mix: Mix::new(entries).unwrap(),
            keys: KeySpace::new(keyspace, dist, "key:"),
            data: DataPool::new(64, 512, 9),
        }
    }

    #[test]
    fn encodes_valid_resp_with_placeholders_filled() {
        let w = workload(
            &[("HSET __key__ \"a field\" __data__ x:__key__:y", 1)],
            100,
            Distribution::Uniform,
        );
        let mut g = RequestGen::new(&w, 1, 0, 1);
        let mut buf = Vec::new();
        for _ in 0..200 {
            g.write_next(&w, &mut buf);
        }
        let reqs = parse_all(&buf);
        assert_eq!(reqs.len(), 200);
        for r in reqs {
            assert_eq!(r.len(), 5);
            assert_eq!(r[0], b"HSET");
            assert!(r[1].starts_with(b"key:") && r[1].len() == 16);
            assert_eq!(r[2], b"a field");
            assert!((64..=512).contains(&r[3].len()));
            assert!(r[3].iter().all(u8::is_ascii_alphanumeric));
            assert!(r[4].starts_with(b"x:key:") && r[4].ends_with(b":y") && r[4].len() == 20);
        }
    }

    #[test]
    fn mix_follows_its_weights() {
        let w = workload(
            &[("GET __key__", 80), ("SET __key__ __data__", 20)],
            1000,
            Distribution::Uniform,
        );
        let mut g = RequestGen::new(&w, 5, 0, 1);
        let mut buf = Vec::new();
        for _ in 0..20_000 {
            g.write_next(&w, &mut buf);
        }
        let reqs = parse_all(&buf);
        let gets = reqs.iter().filter(|r| r[0] == b"GET").count();
        let sets = reqs.iter().filter(|r| r[0] == b"SET").count();
        assert_eq!(gets + sets, 20_000);
        let share = gets as f64 / 20_000.0;
        assert!((0.78..0.82).contains(&share), "{share}");
        assert_eq!(
            w.mix.shares(),
            vec![
                ("GET __key__".to_string(), 0.8),
                ("SET __key__ __data__".to_string(), 0.2)
            ]
        );
    }

    #[test]
    fn zero_weights_and_bad_templates() {
        let t = Template::parse("x", "PING").unwrap();
        assert!(Mix::new(vec![(t.clone(), 0)]).is_err());
        assert!(Mix::new(vec![(t, 0), (Template::parse("y", "ECHO a").unwrap(), 1)]).is_ok());
        assert!(Template::parse("x", "").is_err());
        assert!(Template::parse("x", "SET \"unclosed").is_err());
    }

    #[test]
    fn every_builtin_compiles_and_fixed_value_size_is_exact() {
        for (name, text) in BUILTIN_COMMANDS {
            let t = Template::parse(name, text).unwrap();
            assert_eq!(builtin(name), Some(*text));
            assert_eq!(t.uses_data(), text.contains(DATA_PLACEHOLDER));
        }
        let pool = DataPool::new(100, 100, 1);
        let mut rng = Rng::new(0, 0);
        assert!((0..100).all(|_| pool.pick(&mut rng).len() == 100));
        let mut out = Vec::new();
        write_decimal(0, &mut out);
        write_decimal(18_446_744_073_709_551_615, &mut out);
        assert_eq!(out, b"018446744073709551615");
    }
}
