//! One set of permissions (Redis 7.0's `aclSelector`): the commands it allows (a bit per
//! command id, plus first arguments allowed for an otherwise blocked command), its key
//! patterns with read/write flags, and its channel patterns. A user has a root selector and
//! any number of `(...)` selectors; a request is allowed when any one of them allows it.

use super::category;
use super::table::{Table, table};
use crate::commands::Command;
use percore_engine::glob::string_match;
use std::collections::BTreeMap;

/// A key pattern may be used to read (`%R~`), to write (`%W~`), or both (`~`).
pub const KEY_READ: u8 = 1;
pub const KEY_WRITE: u8 = 2;
pub const KEY_ALL: u8 = KEY_READ | KEY_WRITE;

/// Why a rule was refused (Redis's `errno` values and their texts, `ACLSetUserStringError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    UnknownName,
    Syntax,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSubcommand,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::UnknownName => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::ChannelAfterAll => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::FirstArgOfSubcommand => {
                "Allowing first-arg of a subcommand is not supported"
            }
        }
    }
}

/// What a selector refused, ranked as Redis ranks them (the highest of all selectors'
/// refusals is reported): a command, then a key, then a channel (with its argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub flags: u8,
    pub pattern: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Selector {
    pub all_keys: bool,
    pub all_channels: bool,
    /// Every command, without looking at the bits (cleared by any removal).
    pub all_commands: bool,
    /// Set by `+@all` only, cleared by `-@all`: commands added later are allowed too
    /// (Redis's reserved command bit). Decides whether a description starts from `+@all`.
    future: bool,
    allowed: Vec<u64>,
    /// Allowed first arguments of a command whose bit is clear (`+select|0`).
    firstargs: BTreeMap<u32, Vec<String>>,
    pub patterns: Vec<KeyPattern>,
    pub channels: Vec<Vec<u8>>,
}

impl Selector {
    /// An empty selector: no command, no key, and every channel when `all_channels`
    /// (`acl-pubsub-default`).
    pub fn new(all_channels: bool) -> Self {
        Self {
            all_keys: false,
            all_channels,
            all_commands: false,
            future: false,
            allowed: vec![0; table().len().div_ceil(64)],
            firstargs: BTreeMap::new(),
            patterns: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Whether everything is allowed: the state that lets a request skip the check.
    pub fn unrestricted(&self) -> bool {
        self.all_keys && self.all_channels && self.all_commands
    }

    fn bit(&self, id: u32) -> bool {
        self.allowed[id as usize / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: u32, on: bool) {
        let w = &mut self.allowed[id as usize / 64];
        if on {
            *w |= 1 << (id % 64);
        } else {
            *w &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Redis's `ACLChangeSelectorPerm`: the command, its subcommands, and no first args.
    fn change_perm(&mut self, t: &Table, id: u32, allow: bool) {
        self.firstargs.remove(&id);
        self.set_bit(id, allow);
        for s in t.get(id).subs.clone() {
            self.firstargs.remove(&s);
            self.set_bit(s, allow);
        }
    }

    /// Redis's `ACLSetSelectorCommandBitsForCategory`.
    fn change_category(&mut self, t: &Table, cat: u32, allow: bool) {
        for id in 0..t.len() as u32 {
            // A container's change covers its subcommands (those outside the category
            // too, as Redis's recursion leaves them); a subcommand's only itself.
            if t.get(id).categories & cat != 0 {
                self.change_perm(t, id, allow);
            }
        }
    }

    fn all(&mut self, allow: bool) {
        let fill = if allow { u64::MAX } else { 0 };
        self.allowed.iter_mut().for_each(|w| *w = fill);
        self.all_commands = allow;
        self.future = allow;
        self.firstargs.clear();
    }

    /// Applies one rule (Redis's `ACLSetSelector`).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let t = table();
        let eq = |s: &str| op.eq_ignore_ascii_case(s.as_bytes());
        if eq("allkeys") || op == b"~*" {
            self.all_keys = true;
            self.patterns.clear();
        } else if eq("resetkeys") {
            self.all_keys = false;
            self.patterns.clear();
        } else if eq("allchannels") || op == b"&*" {
            self.all_channels = true;
            self.channels.clear();
        } else if eq("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if eq("allcommands") || eq("+@all") {
            self.all(true);
        } else if eq("nocommands") || eq("-@all") {
            self.all(false);
        } else if op.first() == Some(&b'~') || op.first() == Some(&b'%') {
            self.add_key_pattern(op)?;
        } else if op.first() == Some(&b'&') {
            if self.all_channels {
                return Err(RuleError::ChannelAfterAll);
            }
            let pat = &op[1..];
            if pat.iter().any(|&b| b == b' ' || b == 0) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pat) {
                self.channels.push(pat.to_vec());
            }
        } else if (op.first() == Some(&b'+') || op.first() == Some(&b'-'))
            && op.get(1) == Some(&b'@')
        {
            let cat = category::by_name(&op[2..]).ok_or(RuleError::UnknownName)?;
            self.change_category(t, cat, op[0] == b'+');
        } else if op.first() == Some(&b'+') {
            self.allow_command(t, &op[1..])?;
        } else if op.first() == Some(&b'-') {
            let name = std::str::from_utf8(&op[1..]).map_err(|_| RuleError::UnknownName)?;
            let id = t.lookup(name).ok_or(RuleError::UnknownName)?;
            self.change_perm(t, id, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeyAfterAll);
        }
        let (flags, pat) = if op[0] == b'%' {
            let mut flags = 0;
            let mut i = 1;
            loop {
                match op.get(i).map(u8::to_ascii_uppercase) {
                    Some(b'R') if flags & KEY_READ == 0 => flags |= KEY_READ,
                    Some(b'W') if flags & KEY_WRITE == 0 => flags |= KEY_WRITE,
                    Some(b'~') if flags != 0 => break,
                    _ => return Err(RuleError::Syntax),
                }
                i += 1;
            }
            (flags, &op[i + 1..])
        } else {
            (KEY_ALL, &op[1..])
        };
        if pat.iter().any(|&b| b == b' ' || b == 0) {
            return Err(RuleError::Syntax);
        }
        if let Some(p) = self.patterns.iter_mut().find(|p| p.pattern == pat) {
            p.flags |= flags;
        } else {
            self.patterns.push(KeyPattern {
                flags,
                pattern: pat.to_vec(),
            });
        }
        Ok(())
    }

    /// `+cmd`, `+container|sub`, or `+cmd|firstarg`.
    fn allow_command(&mut self, t: &Table, name: &[u8]) -> Result<(), RuleError> {
        let name = std::str::from_utf8(name).map_err(|_| RuleError::UnknownName)?;
        let Some(bar) = name.rfind('|') else {
            let id = t.lookup(name).ok_or(RuleError::UnknownName)?;
            self.change_perm(t, id, true);
            return Ok(());
        };
        let (cmd, sub) = (&name[..bar], &name[bar + 1..]);
        let id = t.lookup(cmd).ok_or(RuleError::UnknownName)?;
        let e = t.get(id);
        if e.parent.is_some() {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if e.subs.is_empty() {
            let args = self.firstargs.entry(id).or_default();
            if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                args.push(sub.to_string());
            }
        } else {
            let sid = t.lookup(name).ok_or(RuleError::UnknownName)?;
            self.change_perm(t, sid, true);
        }
        Ok(())
    }

    /// `ON` and `OFF` counts of a category's commands and subcommands.
    fn count_category(&self, t: &Table, cat: u32) -> (u32, u32) {
        let (mut on, mut off) = (0, 0);
        for id in 0..t.len() as u32 {
            if t.get(id).categories & cat != 0 {
                if self.bit(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// The command rules that rebuild this selector's command bits (Redis 7.0's
    /// `ACLDescribeSelectorCommandRules`: `+@all` or `-@all`, the categories that fit
    /// best, then single commands in table order, then first args).
    pub fn describe_commands(&self) -> String {
        let t = table();
        let additive = !self.future;
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        let mut fake = Selector::new(false);
        fake.all(!additive);
        let mut temp = self.clone();
        let mut applied = [false; category::NAMES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (u32::MAX, 0);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(t, 1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.change_category(t, 1 << j, additive);
            temp.change_category(t, 1 << j, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(category::NAMES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for id in 0..t.len() as u32 {
            let e = t.get(id);
            if e.parent.is_some() {
                continue;
            }
            self.describe_single(t, &mut fake, &mut rules, id);
            for s in e.subs.clone() {
                self.describe_single(t, &mut fake, &mut rules, s);
            }
            if !self.bit(id)
                && let Some(args) = self.firstargs.get(&id)
            {
                for a in args {
                    rules.push('+');
                    rules.push_str(e.name);
                    rules.push('|');
                    rules.push_str(a);
                    rules.push(' ');
                }
            }
        }
        rules.pop();
        rules
    }

    fn describe_single(&self, t: &Table, fake: &mut Selector, rules: &mut String, id: u32) {
        let user = self.bit(id);
        if user != fake.bit(id) {
            rules.push(if user { '+' } else { '-' });
            rules.push_str(t.get(id).name);
            rules.push(' ');
            fake.change_perm(t, id, user);
        }
    }

    /// The key patterns as GETUSER shows them (`~*` for allkeys).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let parts: Vec<String> = self
            .patterns
            .iter()
            .map(|p| {
                let prefix = match p.flags {
                    KEY_READ => "%R~",
                    KEY_WRITE => "%W~",
                    _ => "~",
                };
                format!("{prefix}{}", String::from_utf8_lossy(&p.pattern))
            })
            .collect();
        parts.join(" ")
    }

    /// The channel patterns as GETUSER shows them (`&*` for allchannels).
    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let parts: Vec<String> = self
            .channels
            .iter()
            .map(|c| format!("&{}", String::from_utf8_lossy(c)))
            .collect();
        parts.join(" ")
    }

    /// The whole selector as ACL LIST shows it (Redis's `ACLDescribeSelector`).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let keys = self.describe_keys();
        if !keys.is_empty() {
            s.push_str(&keys);
            s.push(' ');
        }
        if self.all_channels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push('&');
                s.push_str(&String::from_utf8_lossy(c));
                s.push(' ');
            }
        }
        s.push_str(&self.describe_commands());
        s
    }

    /// Whether this selector lets `id` run with `argv` (Redis's `ACLSelectorCheckCmd`).
    pub fn check(
        &self,
        cmd: &'static Command,
        id: u32,
        argv: &[&[u8]],
        keys: &mut Option<Vec<(usize, u8)>>,
    ) -> Result<(), Denied> {
        let t = table();
        let e = t.get(id);
        if !self.all_commands && e.flags & crate::commands::flags::NO_AUTH == 0 && !self.bit(id) {
            let idx = if e.parent.is_some() { 2 } else { 1 };
            let allowed = argv.get(idx).is_some_and(|a| {
                self.firstargs
                    .get(&id)
                    .is_some_and(|v| v.iter().any(|f| f.as_bytes().eq_ignore_ascii_case(a)))
            });
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if !self.all_keys {
            let keys = keys.get_or_insert_with(|| request_keys(cmd, id, argv));
            for &(pos, flags) in keys.iter() {
                if !self.key_allowed(argv[pos], flags) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.all_channels {
            for (pos, pattern) in request_channels(e.name, argv) {
                if !self.channel_allowed(argv[pos], pattern) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    /// Redis's `ACLSelectorCheckKey`: a pattern with every permission the access needs.
    pub fn key_allowed(&self, key: &[u8], need: u8) -> bool {
        self.all_keys
            || self
                .patterns
                .iter()
                .any(|p| p.flags & need == need && string_match(&p.pattern, key, false))
    }

    /// Redis's `ACLCheckChannelAgainstList`: a pattern subscription must be listed as is;
    /// a channel must match a listed pattern.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|c| {
                if is_pattern {
                    c == channel
                } else {
                    string_match(c, channel, false)
                }
            })
    }
}

/// The keys of a request with the permissions each needs (read for `access`, write for
/// `insert`/`delete`/`update`), from Redis's key specs; SET and BITFIELD's flags depend on
/// their arguments (Redis's `setGetKeys`, `bitfieldGetKeys`).
pub fn request_keys(cmd: &'static Command, id: u32, argv: &[&[u8]]) -> Vec<(usize, u8)> {
    let e = table().get(id);
    let has = |w: &str| {
        argv.iter()
            .skip(2)
            .any(|a| a.eq_ignore_ascii_case(w.as_bytes()))
    };
    match e.name {
        "set" if argv.len() > 1 => {
            let get = argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            return vec![(1, if get { KEY_ALL } else { KEY_WRITE })];
        }
        "bitfield" if argv.len() > 1 => {
            let write = has("set") || has("incrby");
            return vec![(1, if write { KEY_ALL } else { KEY_READ })];
        }
        _ => {}
    }
    let with_flags = match e.key_specs {
        Some(specs) => crate::commands::keys_from_specs(specs, argv)
            .unwrap_or_else(|| cmd.getkeys.map_or_else(Vec::new, |g| g(argv))),
        None if e.parent.is_none() && cmd.has_keys() => cmd.keys_with_flags(argv),
        None => Vec::new(),
    };
    with_flags
        .into_iter()
        .filter(|&(p, _)| p < argv.len())
        .map(|(p, f)| (p, access_of(f)))
        .collect()
}

fn access_of(flags: &[&str]) -> u8 {
    let mut a = 0;
    for f in flags {
        if f.eq_ignore_ascii_case("access") {
            a |= KEY_READ;
        } else if ["insert", "delete", "update"]
            .iter()
            .any(|w| f.eq_ignore_ascii_case(w))
        {
            a |= KEY_WRITE;
        }
    }
    a
}

/// The channels a request publishes to or subscribes to, and whether each is a pattern
/// (Redis's `getChannelsFromCommand`, the publish and subscribe flags).
pub fn request_channels(name: &str, argv: &[&[u8]]) -> Vec<(usize, bool)> {
    match name {
        "publish" | "spublish" if argv.len() > 1 => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argv.len()).map(|p| (p, false)).collect(),
        "psubscribe" => (1..argv.len()).map(|p| (p, true)).collect(),
        _ => Vec::new(),
    }
}
