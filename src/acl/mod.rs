//! ACL users and permission checks (Redis 7.0's `acl.c`).
//!
//! The users live in one registry shared by every shard ([`Acl`], in `ServerShared`),
//! behind a lock taken only by AUTH, the ACL commands and a shard's refresh. Each client
//! holds its user (`Client::acl_user`, an `Arc` snapshot) and whether that user may run
//! everything (`Client::acl_free`): a request of such a client costs one branch. A change
//! to any user bumps the registry's generation; every shard compares it at its next event
//! (with the configuration's) and re-reads its clients' users, closing the connections of
//! deleted users and the subscribers whose channels were revoked, as Redis does.

mod catalog;
pub mod category;
pub mod file;
pub mod log;
pub mod selector;
pub mod sha256;
pub mod table;
pub mod user;

use crate::client::Client;
use crate::commands::Command;
use crate::shard::ShardData;
use selector::Denied;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use user::User;

/// Longest password ACL GENPASS makes, in bits (Redis's limit).
pub const GENPASS_MAX_BITS: i64 = 4096;

/// The users of the server.
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    generation: AtomicU64,
    next_id: AtomicU64,
    pub log: Mutex<log::Log>,
}

impl Default for Acl {
    fn default() -> Self {
        Self::new()
    }
}

impl Acl {
    pub fn new() -> Self {
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(User::default_user(1)));
        Self {
            users: RwLock::new(users),
            generation: AtomicU64::new(1),
            next_id: AtomicU64::new(2),
            log: Mutex::new(log::Log::default()),
        }
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().expect("acl lock").get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.user("default")
            .expect("the default user always exists")
    }

    /// Every user, sorted by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users
            .read()
            .expect("acl lock")
            .values()
            .cloned()
            .collect()
    }

    /// ACL SETUSER: applies `rules` to a copy of the user (a new one if absent) and
    /// installs it only if every rule applies. The error is Redis's reply text.
    pub fn set_user(&self, name: &[u8], rules: &[&[u8]], all_channels: bool) -> Result<(), String> {
        if name.iter().any(|&b| b == b' ' || b == 0) {
            return Err("ERR Usernames can't contain spaces or null characters".into());
        }
        let name = String::from_utf8_lossy(name).into_owned();
        let merged = user::merge_selector_args(rules).map_err(|e| format!("ERR {e}"))?;
        let mut users = self.users.write().expect("acl lock");
        let mut u = match users.get(&name) {
            Some(u) => (**u).clone(),
            None => User::new(
                &name,
                self.next_id.fetch_add(1, Ordering::Relaxed),
                all_channels,
            ),
        };
        for op in &merged {
            u.apply(op, all_channels).map_err(|e| {
                format!(
                    "ERR Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(op),
                    e.text()
                )
            })?;
        }
        users.insert(name, Arc::new(u));
        drop(users);
        self.bump();
        Ok(())
    }

    /// ACL DELUSER: how many of `names` existed (`default` cannot be removed).
    pub fn delete(&self, names: &[&[u8]]) -> Result<i64, String> {
        if names.iter().any(|n| *n == b"default") {
            return Err("ERR The 'default' user cannot be removed".into());
        }
        let mut users = self.users.write().expect("acl lock");
        let mut n = 0;
        for name in names {
            if users.remove(&*String::from_utf8_lossy(name)).is_some() {
                n += 1;
            }
        }
        drop(users);
        if n > 0 {
            self.bump();
        }
        Ok(n)
    }

    /// Replaces every user (ACL LOAD, `user` config lines, the ACL file at start). The
    /// default user keeps its id (its clients stay connected); every other user is a new
    /// one, so its clients are disconnected as Redis frees the old users.
    pub fn replace_all(&self, new: Vec<User>) {
        let mut users = self.users.write().expect("acl lock");
        let mut map = BTreeMap::new();
        for mut u in new {
            u.id = if u.name == "default" {
                users.get("default").map_or(1, |d| d.id)
            } else {
                self.next_id.fetch_add(1, Ordering::Relaxed)
            };
            map.insert(u.name.clone(), Arc::new(u));
        }
        if !map.contains_key("default") {
            let id = users.get("default").map_or(1, |d| d.id);
            map.insert("default".into(), Arc::new(User::default_user(id)));
        }
        *users = map;
        drop(users);
        self.bump();
    }

    /// `requirepass` sets the default user's password (Redis's
    /// `ACLUpdateDefaultUserPassword`): `resetpass` then `>pass`, or `nopass` when empty.
    pub fn set_default_password(&self, pass: &str) {
        let mut users = self.users.write().expect("acl lock");
        let mut u = users
            .get("default")
            .map_or_else(|| User::default_user(1), |u| (**u).clone());
        let _ = u.apply(b"resetpass", false);
        if pass.is_empty() {
            let _ = u.apply(b"nopass", false);
        } else {
            let mut op = b">".to_vec();
            op.extend_from_slice(pass.as_bytes());
            let _ = u.apply(&op, false);
        }
        users.insert("default".into(), Arc::new(u));
        drop(users);
        self.bump();
    }
}

/// A new user made outside the registry (the ACL file and `user` lines); it gets its
/// id when installed.
pub fn unlinked(name: &str, all_channels: bool) -> User {
    User::new(name, 0, all_channels)
}

/// What a shard remembers of the registry: the generation it last read.
#[derive(Default)]
pub struct ShardAcl {
    generation: u64,
    /// The restricted user whose script runs now: its `redis.call`s are checked.
    pub script_user: Option<Arc<User>>,
    /// The restricted user of the request whose first step runs now (dispatch sets it
    /// around a multi-step command's first step, which has no client).
    pub caller: Option<Arc<User>>,
    /// Whether a new connection must AUTH first: the default user has a password or is
    /// off (Redis's `authRequired`).
    pub auth_required: bool,
    /// Whether the default user has `nopass` (protected mode applies: Redis checks this
    /// flag alone, whatever `bind` says).
    pub default_nopass: bool,
}

/// Whether connections of the default user must authenticate.
fn default_needs_auth(u: &User) -> bool {
    !u.nopass || !u.enabled
}

/// Picks up user changes made on any shard: one atomic load when nothing changed.
#[inline]
pub fn refresh(data: &mut ShardData) {
    if data.shared.acl.generation() != data.acl.generation {
        refresh_slow(data);
    }
}

#[cold]
fn refresh_slow(data: &mut ShardData) {
    let acl = &data.shared.acl;
    data.acl.generation = acl.generation();
    let default = acl.default_user();
    data.acl.auth_required = default_needs_auth(&default);
    data.acl.default_nopass = default.nopass;
    let users = acl.users.read().expect("acl lock").clone();
    let mut closing = Vec::new();
    for c in data.clients.iter_mut().flatten() {
        if !matches!(relink(c, &users), Relink::Kept) {
            closing.push(c.conn);
        }
    }
    data.to_close.extend(closing);
}

/// What a change of users means for one client.
pub enum Relink {
    Kept,
    /// Its user was deleted or replaced: Redis frees the user and its clients.
    Close,
    /// It is subscribed to a channel its user may no longer use: Redis kills it.
    ChannelsRevoked,
}

/// Points a client at its user's new state.
pub fn relink(c: &mut Client, users: &BTreeMap<String, Arc<User>>) -> Relink {
    let Some(cur) = c.acl_user.as_ref() else {
        // A client made before any user was linked runs as the default user.
        if let Some(d) = users.get("default") {
            c.acl_free = d.unrestricted();
            c.acl_user = Some(d.clone());
        }
        return Relink::Kept;
    };
    match users.get(&cur.name) {
        Some(u) if u.id == cur.id => {
            let u = u.clone();
            let revoked = c.subscribed()
                && (c.subs.iter().any(|ch| !u.channel_allowed(ch, false))
                    || c.ssubs.iter().any(|ch| !u.channel_allowed(ch, false))
                    || c.psubs.iter().any(|ch| !u.channel_allowed(ch, true)));
            c.acl_free = u.unrestricted();
            c.acl_user = Some(u);
            if revoked {
                Relink::ChannelsRevoked
            } else {
                Relink::Kept
            }
        }
        _ => Relink::Close,
    }
}

/// A new client runs as the default user (authenticated when it has no password).
pub fn link_new(data: &mut ShardData, c: &mut Client) {
    refresh(data);
    let d = data.shared.acl.default_user();
    c.authenticated = !default_needs_auth(&d);
    c.acl_free = d.unrestricted();
    c.acl_user = Some(d);
}

/// Authenticates `c` as `user` with `pass` (Redis's `ACLAuthenticateUser`); a failure
/// is logged in ACL LOG under the command's name as the client typed it (`by`).
pub fn authenticate(
    data: &mut ShardData,
    c: &mut Client,
    by: &[u8],
    user: &[u8],
    pass: &[u8],
) -> bool {
    let name = String::from_utf8_lossy(user);
    match data.shared.acl.user(&name) {
        Some(u) if u.password_ok(pass) => {
            c.authenticated = true;
            c.acl_free = u.unrestricted();
            c.acl_user = Some(u);
            true
        }
        _ => {
            let ctx = if c.multi.is_some() {
                "multi"
            } else {
                "toplevel"
            };
            log::add(
                data,
                c,
                log::Reason::Auth,
                ctx,
                &String::from_utf8_lossy(by),
                &name,
            );
            false
        }
    }
}

/// The name of the client's user.
pub fn user_name(c: &Client) -> &str {
    c.acl_user.as_deref().map_or("default", |u| u.name.as_str())
}

/// The permission check of a request (Redis's `ACLCheckAllPerm` in `processCommand`),
/// called by dispatch only for a client whose user is not unrestricted. On refusal it
/// logs the entry and returns the NOPERM text.
pub fn check_request(
    data: &mut ShardData,
    c: &Client,
    cmd: &'static Command,
    argv: &[&[u8]],
) -> Result<(), String> {
    let ctx = if c.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    check_as(data, c, cmd, argv, ctx).map_err(|(d, name)| noperm(d, &name))
}

/// Checks `argv` against the client's user; on refusal logs it under `ctx` and returns
/// what was refused with the command's full name.
pub fn check_as(
    data: &mut ShardData,
    client: &Client,
    cmd: &'static Command,
    argv: &[&[u8]],
    ctx: &str,
) -> Result<(), (Denied, String)> {
    let c = client;
    let Some(user) = c.acl_user.as_ref() else {
        return Ok(());
    };
    let t = table::table();
    let id = t.id_of(cmd, argv);
    match user.check(cmd, id, argv) {
        Ok(()) => Ok(()),
        Err(d) => {
            let name = t.get(id).name.to_string();
            let (reason, object) = match d {
                Denied::Command => (log::Reason::Command, name.clone()),
                Denied::Key(p) => (log::Reason::Key, String::from_utf8_lossy(argv[p]).into()),
                Denied::Channel(p) => (
                    log::Reason::Channel,
                    String::from_utf8_lossy(argv[p]).into(),
                ),
            };
            let uname = user.name.clone();
            log::add(data, c, reason, ctx, &object, &uname);
            Err((d, name))
        }
    }
}

/// The NOPERM error of a refusal, as Redis 7.0 words it.
pub fn noperm(d: Denied, name: &str) -> String {
    match d {
        Denied::Command => {
            format!("NOPERM this user has no permissions to run the '{name}' command")
        }
        Denied::Key(_) => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        Denied::Channel(_) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .into()
        }
    }
}

/// Runs a script step with `user`'s permissions applied to its `redis.call`s.
pub fn run_script_as(
    ctx: &mut crate::commands::Ctx,
    user: Option<Arc<User>>,
    argv: &[&[u8]],
    run: crate::commands::PartFn,
) -> crate::commands::Partial {
    let before = std::mem::replace(&mut ctx.shard.acl.script_user, user);
    let r = run(ctx, argv);
    ctx.shard.acl.script_user = before;
    r
}

/// The check of a script's `redis.call` (Redis's `scriptVerifyACL`): logged with the
/// `lua` context; the error is Redis 7.0's text.
pub fn check_script_call(
    data: &mut ShardData,
    cmd: &'static Command,
    argv: &[&[u8]],
) -> Result<(), String> {
    let Some(user) = data.acl.script_user.clone() else {
        return Ok(());
    };
    let mut c = crate::scripting::script_client();
    c.acl_user = Some(user);
    c.acl_free = false;
    c.last_cmd = cmd.name;
    match check_as(data, &c, cmd, argv, "lua") {
        Ok(()) => Ok(()),
        Err((d, _)) => Err(match d {
            Denied::Command => {
                "The user executing the script can't run this command or subcommand"
            }
            Denied::Key(_) => {
                "The user executing the script can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => {
                "The user executing the script can't publish to the channel mentioned in the command"
            }
        }
        .to_string()),
    }
}

/// EXEC's second check of a queued command (Redis 7.0's `execCommand`): the user's rules
/// may have changed since it was queued.
pub fn check_at_exec(
    data: &mut ShardData,
    client: &Client,
    cmd: &'static Command,
    argv: &[&[u8]],
) -> Result<(), String> {
    check_as(data, client, cmd, argv, "multi").map_err(|(d, _)| {
        let reason = match d {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
        )
    })
}
