//! The AOF manifest (`appendonly.aof.manifest`), in Redis 7.0's line format:
//! `file appendonly.aof.1.base.rdb seq 1 type b` (b: base, i: incremental, h: history).

/// The longest manifest read (Redis refuses a line over 1024 bytes; a manifest of a few
/// thousand incremental files stays far below this).
pub const MANIFEST_MAX_BYTES: usize = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Base,
    Incr,
    History,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Base => 'b',
            Kind::Incr => 'i',
            Kind::History => 'h',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: u64,
    pub kind: Kind,
}

/// The files of one AOF, in load order: the base, then the incremental files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    pub incrs: Vec<AofFile>,
    pub history: Vec<AofFile>,
}

impl Manifest {
    /// Parses a manifest as Redis's `aofLoadManifestFromFile` does (comments and blank
    /// lines skipped; `file`, `seq`, `type` in any order; one base at most).
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        if text.len() > MANIFEST_MAX_BYTES {
            return Err("The AOF manifest file is too big".into());
        }
        let mut m = Manifest::default();
        for raw in text.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(raw);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words =
                split_words(line).ok_or_else(|| "Invalid AOF manifest file format".to_owned())?;
            if words.len() % 2 != 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                match pair[0].as_str() {
                    "file" => name = Some(pair[1].clone()),
                    "seq" => seq = pair[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match pair[1].as_str() {
                            "b" => Some(Kind::Base),
                            "i" => Some(Kind::Incr),
                            "h" => Some(Kind::History),
                            _ => None,
                        };
                    }
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err("Invalid AOF manifest file format".into());
            };
            if name.contains('/') {
                return Err(format!("Invalid AOF file name in the manifest: {name}"));
            }
            let f = AofFile { name, seq, kind };
            match kind {
                Kind::Base => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base = Some(f);
                }
                Kind::Incr => {
                    if m.incrs.last().is_some_and(|l| l.seq >= f.seq) {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.incrs.push(f);
                }
                Kind::History => m.history.push(f),
            }
        }
        if m.base.is_none() && m.incrs.is_empty() {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest's text (base, history, then incremental files, as Redis writes it).
    pub fn format(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, f: &AofFile| {
            use std::fmt::Write;
            let _ = writeln!(
                out,
                "file {} seq {} type {}",
                quote(&f.name),
                f.seq,
                f.kind.letter()
            );
        };
        if let Some(b) = &self.base {
            line(&mut out, b);
        }
        for h in &self.history {
            line(&mut out, h);
        }
        for i in &self.incrs {
            line(&mut out, i);
        }
        out
    }

    /// The sequence number of the newest incremental file (0: none yet).
    pub fn last_incr_seq(&self) -> u64 {
        self.incrs.last().map_or(0, |f| f.seq)
    }

    pub fn base_seq(&self) -> u64 {
        self.base.as_ref().map_or(0, |f| f.seq)
    }
}

/// `sdssplitargs`-like: words separated by spaces, double-quoted words with escapes.
fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else {
            return Some(words);
        };
        let mut w = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => w.push('\n'),
                        'r' => w.push('\r'),
                        't' => w.push('\t'),
                        other => w.push(other),
                    },
                    other => w.push(other),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        words.push(w);
    }
}

/// A file name as Redis writes it: as is, or quoted when it holds spaces or quotes.
fn quote(name: &str) -> String {
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c.is_control())
    {
        let mut q = String::from("\"");
        for c in name.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                '\r' => q.push_str("\\r"),
                '\t' => q.push_str("\\t"),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_7_manifest_round_trips() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\n\
                    file appendonly.aof.1.incr.aof seq 1 type i\n\
                    file appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(m.last_incr_seq(), 2);
        assert_eq!(m.format(), text);
    }

    #[test]
    fn bad_manifests_are_refused_with_a_reason() {
        for bad in [
            "",
            "file a seq 1\n",
            "file a seq x type b\n",
            "file a seq 1 type b\nfile b seq 2 type b\n",
            "file a seq 2 type i\nfile b seq 1 type i\n",
            "file \"unterminated seq 1 type i\n",
            "file ../x seq 1 type i\n",
        ] {
            assert!(Manifest::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let m = Manifest::parse(b"# comment\n\nfile \"a b\" seq 3 type i\n").unwrap();
        assert_eq!(m.incrs[0].name, "a b");
        assert_eq!(m.format(), "file \"a b\" seq 3 type i\n");
    }
}
