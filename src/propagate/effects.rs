//! Effects as commands: RESP arrays in one buffer, each with its database.

/// The most bytes one batch of effects may hold before it is published: a shard publishes
/// at the end of each loop iteration, and an iteration bigger than this (a huge MSET, a
/// script writing gigabytes) is still published whole, only the offsets must fit.
pub const EFFECTS_BATCH_MAX_BYTES: usize = u32::MAX as usize;

/// Commands in the order they took effect, each in its database, encoded as RESP arrays
/// back to back.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    bytes: Vec<u8>,
    /// Per command: its database and where its bytes end.
    cmds: Vec<(u16, u32)>,
}

impl Effects {
    /// Empty, with room for `bytes` of commands.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            cmds: Vec::with_capacity(bytes / 32),
        }
    }

    /// Appends `argv` as one command in database `db`.
    pub fn push(&mut self, db: usize, argv: &[&[u8]]) {
        encode(&mut self.bytes, argv);
        assert!(
            self.bytes.len() <= EFFECTS_BATCH_MAX_BYTES,
            "a batch of effects passed EFFECTS_BATCH_MAX_BYTES"
        );
        self.cmds.push((db as u16, self.bytes.len() as u32));
    }

    /// Appends owned arguments (a rewritten command).
    pub fn push_owned(&mut self, db: usize, argv: &[Vec<u8>]) {
        let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        self.push(db, &refs);
    }

    /// Moves every command of `other` to the end of this batch.
    pub fn append(&mut self, other: Effects) {
        if self.cmds.is_empty() {
            *self = other;
            return;
        }
        let base = self.bytes.len() as u32;
        self.bytes.extend_from_slice(&other.bytes);
        assert!(
            self.bytes.len() <= EFFECTS_BATCH_MAX_BYTES,
            "a batch of effects passed EFFECTS_BATCH_MAX_BYTES"
        );
        self.cmds
            .extend(other.cmds.into_iter().map(|(db, end)| (db, base + end)));
    }

    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// Bytes of all commands.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The commands: database and RESP bytes.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[u8])> + '_ {
        let mut start = 0usize;
        self.cmds.iter().map(move |&(db, end)| {
            let s = start;
            start = end as usize;
            (usize::from(db), &self.bytes[s..end as usize])
        })
    }

    /// The database of the first command.
    pub fn first_db(&self) -> Option<usize> {
        self.cmds.first().map(|&(db, _)| usize::from(db))
    }
}

/// Appends `argv` as a RESP array of bulk strings.
pub fn encode(out: &mut Vec<u8>, argv: &[&[u8]]) {
    // One reservation: the arguments plus a header of at most 24 bytes each.
    out.reserve(argv.iter().map(|a| a.len() + 24).sum::<usize>() + 24);
    let mut head = [0u8; 24];
    head[0] = b'*';
    let n = 1 + write_decimal(&mut head[1..], argv.len());
    head[n..n + 2].copy_from_slice(b"\r\n");
    out.extend_from_slice(&head[..n + 2]);
    for a in argv {
        head[0] = b'$';
        let n = 1 + write_decimal(&mut head[1..], a.len());
        head[n..n + 2].copy_from_slice(b"\r\n");
        out.extend_from_slice(&head[..n + 2]);
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes `n` in decimal at the start of `buf` (room for 20 digits); the digit count.
#[inline]
fn write_decimal(buf: &mut [u8], n: usize) -> usize {
    if n < 10 {
        buf[0] = b'0' + n as u8;
        return 1;
    }
    if n < 100 {
        buf[0] = b'0' + (n / 10) as u8;
        buf[1] = b'0' + (n % 10) as u8;
        return 2;
    }
    let mut digits = [0u8; 20];
    let (mut i, mut rest) = (digits.len(), n);
    while rest > 0 {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let len = digits.len() - i;
    buf[..len].copy_from_slice(&digits[i..]);
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_keep_their_database_and_bytes_across_appends() {
        let mut a = Effects::default();
        a.push(0, &[b"SET", b"k", b"v"]);
        let mut b = Effects::default();
        b.push(3, &[b"DEL", b"k"]);
        b.push(3, &[b"INCR", b"n"]);
        a.append(b);
        let got: Vec<(usize, &[u8])> = a.iter().collect();
        assert_eq!(
            got,
            vec![
                (0, &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"[..]),
                (3, &b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"[..]),
                (3, &b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"[..]),
            ]
        );
        assert_eq!(a.len(), 3);
        assert_eq!(a.first_db(), Some(0));
    }

    #[test]
    fn empty_arguments_and_long_counts_encode_as_redis_does() {
        let mut out = Vec::new();
        let long = vec![b'x'; 1234];
        encode(&mut out, &[b"SET", b"", &long]);
        assert!(out.starts_with(b"*3\r\n$3\r\nSET\r\n$0\r\n\r\n$1234\r\n"));
    }
}
