//! An ACL user (Redis 7.0's `user`): whether it is enabled, its password hashes, its root
//! selector and its `(...)` selectors; the rules of ACL SETUSER and the `user` config
//! lines, and the descriptions ACL LIST and GETUSER show.

use super::selector::{Denied, RuleError, Selector};
use crate::commands::Command;

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    /// Unique per user object: a client authenticated as a user that was deleted (or
    /// replaced by ACL LOAD) finds another id under its name and is disconnected.
    pub id: u64,
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (true) / `skip-sanitize-payload` (false), when set.
    pub sanitize: Option<bool>,
    /// SHA-256 hashes in lowercase hex, in the order they were added.
    pub passwords: Vec<String>,
    pub root: Selector,
    pub selectors: Vec<Selector>,
}

/// Whether `s` is a valid password hash: 64 lowercase hex digits.
fn valid_hash(s: &[u8]) -> bool {
    s.len() == 64 && s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

impl User {
    /// A new user as Redis creates one: off, no password, no command, no key, and the
    /// channels of `acl-pubsub-default`.
    pub fn new(name: &str, id: u64, all_channels: bool) -> Self {
        Self {
            name: name.to_string(),
            id,
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            root: Selector::new(all_channels),
            selectors: Vec::new(),
        }
    }

    /// The default user of a fresh server: `on nopass ~* &* +@all`.
    pub fn default_user(id: u64) -> Self {
        let mut u = Self::new("default", id, true);
        for op in ["on", "nopass", "~*", "&*", "+@all"] {
            u.apply(op.as_bytes(), true).expect("valid rule");
        }
        u
    }

    /// Applies one rule (Redis's `ACLSetUser`); `all_channels` is `acl-pubsub-default`.
    pub fn apply(&mut self, op: &[u8], all_channels: bool) -> Result<(), RuleError> {
        let eq = |s: &str| op.eq_ignore_ascii_case(s.as_bytes());
        if eq("on") {
            self.enabled = true;
        } else if eq("off") {
            self.enabled = false;
        } else if eq("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if eq("sanitize-payload") {
            self.sanitize = Some(true);
        } else if eq("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if eq("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if let Some(p) = op.strip_prefix(b">") {
            let h = super::sha256::hex(p);
            if !self.passwords.contains(&h) {
                self.passwords.push(h);
            }
            self.nopass = false;
        } else if let Some(h) = op.strip_prefix(b"#") {
            if !valid_hash(h) {
                return Err(RuleError::BadHash);
            }
            let h = String::from_utf8_lossy(h).into_owned();
            if !self.passwords.contains(&h) {
                self.passwords.push(h);
            }
            self.nopass = false;
        } else if let Some(p) = op.strip_prefix(b"<") {
            let h = super::sha256::hex(p);
            self.remove_password(&h)?;
        } else if let Some(h) = op.strip_prefix(b"!") {
            if !valid_hash(h) {
                return Err(RuleError::BadHash);
            }
            self.remove_password(&String::from_utf8_lossy(h))?;
        } else if op.first() == Some(&b'(') && op.last() == Some(&b')') {
            let mut s = Selector::new(all_channels);
            for rule in op[1..op.len() - 1]
                .split(|&b| b == b' ')
                .filter(|r| !r.is_empty())
            {
                s.apply(rule)?;
            }
            self.selectors.push(s);
        } else if eq("clearselectors") {
            self.selectors.clear();
        } else if eq("reset") {
            for r in ["resetpass", "resetkeys", "resetchannels"] {
                self.apply(r.as_bytes(), all_channels)?;
            }
            if all_channels {
                self.apply(b"allchannels", all_channels)?;
            }
            for r in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply(r.as_bytes(), all_channels)?;
            }
        } else {
            self.root.apply(op)?;
        }
        Ok(())
    }

    fn remove_password(&mut self, hash: &str) -> Result<(), RuleError> {
        let at = self
            .passwords
            .iter()
            .position(|p| p == hash)
            .ok_or(RuleError::NoSuchPassword)?;
        self.passwords.remove(at);
        Ok(())
    }

    /// Whether the request needs no check at all (the default user's usual state).
    pub fn unrestricted(&self) -> bool {
        self.root.unrestricted()
    }

    /// Whether `pass` authenticates as this user (Redis's `ACLCheckUserCredentials`).
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = super::sha256::hex(pass);
        // Compared without an early exit, as Redis's `time_independent_strcmp`.
        self.passwords.iter().fold(false, |found, p| {
            found
                | (p.len() == h.len()
                    && p.bytes().zip(h.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0)
        })
    }

    /// Redis's `ACLCheckAllUserCommandPerm`: allowed by the root selector or any other;
    /// else the highest-ranked refusal.
    pub fn check(&self, cmd: &'static Command, id: u32, argv: &[&[u8]]) -> Result<(), Denied> {
        let mut keys = None;
        let mut worst = None;
        for s in std::iter::once(&self.root).chain(&self.selectors) {
            match s.check(cmd, id, argv, &mut keys) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if worst.is_none_or(|w| rank(d) > rank(w)) {
                        worst = Some(d);
                    }
                }
            }
        }
        Err(worst.unwrap_or(Denied::Command))
    }

    /// Whether any selector lets this user publish or subscribe to `channel`.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        std::iter::once(&self.root)
            .chain(&self.selectors)
            .any(|s| s.channel_allowed(channel, is_pattern))
    }

    /// The flags as GETUSER lists them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// The user as ACL LIST shows it and the ACL file stores it (Redis's `ACLDescribeUser`).
    pub fn describe(&self) -> String {
        let mut s = format!("user {}", self.name);
        for f in self.flag_names() {
            s.push(' ');
            s.push_str(f);
        }
        for p in &self.passwords {
            s.push_str(" #");
            s.push_str(p);
        }
        s.push(' ');
        s.push_str(&self.root.describe());
        for sel in &self.selectors {
            s.push_str(" (");
            s.push_str(&sel.describe());
            s.push(')');
        }
        s
    }
}

/// Redis ranks refusals command < key < auth < channel.
fn rank(d: Denied) -> u8 {
    match d {
        Denied::Command => 1,
        Denied::Key(_) => 2,
        Denied::Channel(_) => 4,
    }
}

/// Joins the arguments of a selector given as several words, `(` to `)` (Redis's
/// `ACLMergeSelectorArguments`); the error names the argument where it started.
pub fn merge_selector_args(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut open: Option<Vec<u8>> = None;
    for a in args {
        if let Some(cur) = open.as_mut() {
            cur.push(b' ');
            cur.extend_from_slice(a);
            if a.last() == Some(&b')') {
                out.push(open.take().expect("open"));
            }
        } else if a.first() == Some(&b'(') && a.last() != Some(&b')') {
            open = Some(a.to_vec());
        } else {
            out.push(a.to_vec());
        }
    }
    if let Some(cur) = open {
        return Err(format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(&cur)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut u = User::new("u", 1, false);
        for r in rules {
            u.apply(r.as_bytes(), false).unwrap();
        }
        u
    }

    fn lookup(name: &str) -> &'static Command {
        crate::commands::lookup(name.as_bytes()).unwrap()
    }

    fn run(u: &User, argv: &[&str]) -> Result<(), Denied> {
        let cmd = lookup(argv[0]);
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        u.check(cmd, super::super::table::table().id_of(cmd, &argv), &argv)
    }

    // The examples of Redis's ACL documentation and `ACL SETUSER` page.
    #[test]
    fn documented_examples() {
        let u = user(&[
            "on",
            ">p1",
            "+@hash",
            "+get",
            "-hget",
            "~k*",
            "&ch",
            "resetchannels",
        ]);
        // Single commands come in table order (Redis's in its hash order, which varies
        // from one run to the next).
        assert_eq!(
            u.describe(),
            "user u on #f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a ~k* resetchannels -@all +@hash +get -hget"
        );
        assert!(u.password_ok(b"p1"));
        assert!(!u.password_ok(b"p2"));
        assert_eq!(run(&u, &["get", "k1"]), Ok(()));
        assert_eq!(run(&u, &["get", "z"]), Err(Denied::Key(1)));
        assert_eq!(run(&u, &["set", "k1", "v"]), Err(Denied::Command));
        assert_eq!(run(&u, &["hget", "k1", "f"]), Err(Denied::Command));
        assert_eq!(run(&u, &["hset", "k1", "f", "v"]), Ok(()));

        // "virginia": root allows GET on any key; the selector SET on app1*.
        let v = user(&["on", "+GET", "allkeys", "(+SET ~app1*)"]);
        assert_eq!(run(&v, &["get", "x"]), Ok(()));
        assert_eq!(run(&v, &["set", "app1:x", "v"]), Ok(()));
        assert_eq!(run(&v, &["set", "x", "v"]), Err(Denied::Key(1)));
        assert_eq!(
            v.describe(),
            "user u on ~* resetchannels -@all +get (~app1* resetchannels -@all +set)"
        );

        // Read/write key permissions: %R~ reads, %W~ writes, ~ both.
        let w = user(&["+@all", "%W~*"]);
        assert_eq!(run(&w, &["set", "a", "b"]), Ok(()));
        assert_eq!(run(&w, &["set", "a", "b", "get"]), Err(Denied::Key(1)));
        assert_eq!(run(&w, &["get", "a"]), Err(Denied::Key(1)));
        let r = user(&["+@all", "%R~src*", "%W~dst*"]);
        assert_eq!(
            run(&r, &["lmove", "src1", "dst1", "left", "right"]),
            Err(Denied::Key(1))
        );
        assert_eq!(run(&r, &["copy", "src1", "dst1"]), Ok(()));
        assert_eq!(run(&r, &["copy", "dst1", "src1"]), Err(Denied::Key(1)));
    }

    #[test]
    fn patterns_and_passwords() {
        let u = user(&[
            "%RW~a", "%R~b", "%W~b", "~c", "%R~c", "&x", "&x", "&y", "+get|x", "+get|y",
        ]);
        assert_eq!(
            u.root.describe(),
            "~a ~b ~c resetchannels &x &y -@all +get|x +get|y"
        );
        let mut p = user(&[">a", ">b", ">a"]);
        assert_eq!(p.passwords.len(), 2);
        assert_eq!(p.apply(b"<c", false), Err(RuleError::NoSuchPassword));
        assert_eq!(p.apply(b"#abc", false), Err(RuleError::BadHash));
        p.apply(b"<a", false).unwrap();
        assert_eq!(p.passwords, vec![super::super::sha256::hex(b"b")]);
        p.apply(b"nopass", false).unwrap();
        assert!(p.passwords.is_empty() && p.nopass);
        let mut k = user(&["allkeys"]);
        assert_eq!(k.apply(b"~a", false), Err(RuleError::KeyAfterAll));
        let mut c = user(&["allchannels"]);
        assert_eq!(c.apply(b"&a", false), Err(RuleError::ChannelAfterAll));
        assert_eq!(c.apply(b"%X~a", false), Err(RuleError::Syntax));
        assert_eq!(c.apply(b"bogus", false), Err(RuleError::Syntax));
        assert_eq!(c.apply(b"+foo", false), Err(RuleError::UnknownName));
        assert_eq!(c.apply(b"+@foo", false), Err(RuleError::UnknownName));
        assert_eq!(c.apply(b"+get|a|b", false), Err(RuleError::UnknownName));
        assert_eq!(c.apply(b"+client|foo", false), Err(RuleError::UnknownName));
        assert_eq!(c.apply(b"-select|0", false), Err(RuleError::UnknownName));
        assert_eq!(
            c.apply(b"+client|kill|x", false),
            Err(RuleError::FirstArgOfSubcommand)
        );
    }

    #[test]
    #[expect(clippy::many_single_char_names, reason = "one user per letter")]
    fn commands_and_firstargs() {
        let u = user(&["+client|kill", "+select|0"]);
        assert_eq!(run(&u, &["select", "0"]), Ok(()));
        assert_eq!(run(&u, &["select", "1"]), Err(Denied::Command));
        assert_eq!(run(&u, &["client", "kill", "1.2.3.4:5"]), Ok(()));
        assert_eq!(run(&u, &["client", "id"]), Err(Denied::Command));
        // AUTH is always allowed (no-auth).
        assert_eq!(run(&u, &["auth", "x"]), Ok(()));
        let a = user(&["+@all", "-get", "+get"]);
        assert_eq!(a.root.describe_commands(), "+@all");
        let b = user(&["+@all", "-@dangerous"]);
        assert!(b.root.describe_commands().starts_with("+@all -@"));
        assert_eq!(run(&b, &["flushall"]), Err(Denied::Command));
        assert_eq!(run(&b, &["get", "x"]), Err(Denied::Key(1)));
        let c = user(&["-@all", "+@read", "allkeys", "resetchannels", "&news.*"]);
        assert_eq!(run(&c, &["get", "x"]), Ok(()));
        assert_eq!(run(&c, &["set", "x", "y"]), Err(Denied::Command));
        let p = user(&["+@all", "allkeys", "&news.*"]);
        assert_eq!(run(&p, &["publish", "news.a", "m"]), Ok(()));
        assert_eq!(run(&p, &["publish", "other", "m"]), Err(Denied::Channel(1)));
        assert_eq!(run(&p, &["psubscribe", "news.*"]), Ok(()));
        assert_eq!(run(&p, &["psubscribe", "news.a*"]), Err(Denied::Channel(1)));
        // The channel refusal outranks the root's command refusal.
        let s = user(&["(+publish ~*)", "+get"]);
        assert_eq!(run(&s, &["publish", "c", "m"]), Err(Denied::Channel(1)));
    }

    #[test]
    fn selector_arguments_merge() {
        let args: Vec<&[u8]> = vec![b"on", b"(~a", b"+get)", b"(+set)"];
        assert_eq!(
            merge_selector_args(&args).unwrap(),
            vec![b"on".to_vec(), b"(~a +get)".to_vec(), b"(+set)".to_vec()]
        );
        assert_eq!(
            merge_selector_args(&[b"(+get"]).unwrap_err(),
            "Unmatched parenthesis in acl selector starting at '(+get'."
        );
    }
}
