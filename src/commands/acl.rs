//! ACL and its subcommands (Redis 7.0's `aclCommand`); the users and checks are in
//! `crate::acl`.

use super::{Ctx, eq_ic, errors, parse_i64};
use crate::acl::{self, GENPASS_MAX_BITS, category, selector::Denied, table::table};
use percore_net::resp::ReplyWriter;

const HELP: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

pub fn acl(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let sub = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
    match sub.as_str() {
        "setuser" => {
            let all = ctx.shard.cfg.acl_pubsub_default_all;
            match ctx.shard.shared.acl.set_user(argv[2], &argv[3..], all) {
                Ok(()) => {
                    relink_here(ctx);
                    w.ok();
                }
                Err(e) => w.error(&e),
            }
        }
        "getuser" => getuser(ctx, argv[2], w),
        "deluser" => match ctx.shard.shared.acl.delete(&argv[2..]) {
            Ok(n) => {
                relink_here(ctx);
                w.int(n);
            }
            Err(e) => w.error(&e),
        },
        "list" => {
            let users = ctx.shard.shared.acl.users();
            w.array(users.len());
            for u in users {
                w.bulk(u.describe().as_bytes());
            }
        }
        "users" => {
            let users = ctx.shard.shared.acl.users();
            w.array(users.len());
            for u in users {
                w.bulk(u.name.as_bytes());
            }
        }
        "whoami" => {
            let name = ctx.client.as_deref().map_or("default", acl::user_name);
            w.bulk(name.as_bytes());
        }
        "cat" => cat(argv, w),
        "genpass" => genpass(ctx, argv, w),
        "log" => log(ctx, argv, w),
        "dryrun" => dryrun(ctx, argv, w),
        "load" => {
            let path = ctx.shard.cfg.aclfile.clone();
            if path.is_empty() {
                w.error(NO_ACL_FILE);
                return;
            }
            let all = ctx.shard.cfg.acl_pubsub_default_all;
            match acl::file::load(&ctx.shard.shared.acl, &path, all) {
                Ok(()) => {
                    relink_here(ctx);
                    w.ok();
                }
                Err(e) => w.error(&format!("ERR {e}")),
            }
        }
        "save" => {
            let path = ctx.shard.cfg.aclfile.clone();
            if path.is_empty() {
                w.error(NO_ACL_FILE);
                return;
            }
            if let Err(e) = acl::file::save(&ctx.shard.shared.acl, &path) {
                ctx.shard
                    .shared
                    .warning(&format!("Failed saving ACL file '{path}': {e}"));
                w.error("ERR There was an error trying to save the ACLs. Please check the server logs for more information");
            } else {
                w.ok();
            }
        }
        "help" => super::server::help_reply(w, "ACL", HELP),
        _ => unreachable!("dispatch checked the subcommand"),
    }
}

/// After a change of users: this shard's clients and the calling client see it now
/// (other shards at their next event).
fn relink_here(ctx: &mut Ctx) {
    crate::acl::refresh(ctx.shard);
    if let Some(c) = ctx.client.as_deref_mut() {
        let users: std::collections::BTreeMap<_, _> = ctx
            .shard
            .shared
            .acl
            .users()
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect();
        if !matches!(acl::relink(c, &users), acl::Relink::Kept) {
            c.close_after_reply = true;
        }
    }
}

fn getuser(ctx: &mut Ctx, name: &[u8], w: &mut ReplyWriter) {
    let Some(u) = ctx.shard.shared.acl.user(&String::from_utf8_lossy(name)) else {
        w.null();
        return;
    };
    w.map(6);
    w.bulk(b"flags");
    let flags = u.flag_names();
    w.set(flags.len());
    for f in flags {
        w.bulk(f.as_bytes());
    }
    w.bulk(b"passwords");
    w.array(u.passwords.len());
    for p in &u.passwords {
        w.bulk(p.as_bytes());
    }
    w.bulk(b"commands");
    w.bulk(u.root.describe_commands().as_bytes());
    w.bulk(b"keys");
    w.bulk(u.root.describe_keys().as_bytes());
    w.bulk(b"channels");
    w.bulk(u.root.describe_channels().as_bytes());
    w.bulk(b"selectors");
    w.array(u.selectors.len());
    for s in &u.selectors {
        w.map(3);
        w.bulk(b"commands");
        w.bulk(s.describe_commands().as_bytes());
        w.bulk(b"keys");
        w.bulk(s.describe_keys().as_bytes());
        w.bulk(b"channels");
        w.bulk(s.describe_channels().as_bytes());
    }
}

fn cat(argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len() == 2 {
        w.array(category::NAMES.len());
        for n in category::NAMES {
            w.bulk(n.as_bytes());
        }
        return;
    }
    if argv.len() > 3 {
        subcommand_syntax(argv, w);
        return;
    }
    let Some(bit) = category::by_name(argv[2]) else {
        w.error(&format!(
            "ERR Unknown category '{}'",
            String::from_utf8_lossy(argv[2])
        ));
        return;
    };
    let names: Vec<&str> = table()
        .entries
        .iter()
        .filter(|e| e.categories & bit != 0)
        .map(|e| e.name)
        .collect();
    w.array(names.len());
    for n in names {
        w.bulk(n.as_bytes());
    }
}

fn genpass(ctx: &Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len() > 3 {
        subcommand_syntax(argv, w);
        return;
    }
    let bits = match argv.get(2) {
        None => 256,
        Some(a) => match parse_i64(a) {
            Some(n) if n > 0 && n <= GENPASS_MAX_BITS => n,
            Some(_) => {
                w.error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
                return;
            }
            None => {
                w.error(errors::NOT_INTEGER);
                return;
            }
        },
    };
    let chars = (bits as usize).div_ceil(4);
    let mut out = String::with_capacity(chars);
    let mut random = [0u8; (GENPASS_MAX_BITS / 8) as usize];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random));
    if let Err(e) = read {
        // Redis refuses too when it has no randomness for a password.
        let _ = ctx;
        w.error(&format!("ERR Failed to generate a random password: {e}"));
        return;
    }
    for b in &random[..chars.div_ceil(2)] {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out.truncate(chars);
    w.bulk(out.as_bytes());
}

fn log(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len() > 3 {
        subcommand_syntax(argv, w);
        return;
    }
    let mut count = 10;
    if let Some(a) = argv.get(2) {
        if eq_ic(a, "reset") {
            ctx.shard.shared.acl.log.lock().expect("acl log").reset();
            w.ok();
            return;
        }
        let Some(n) = parse_i64(a) else {
            w.error(errors::NOT_INTEGER);
            return;
        };
        count = usize::try_from(n).unwrap_or(0);
    }
    let now = ctx.shard.now_ms;
    ctx.shard
        .shared
        .acl
        .log
        .lock()
        .expect("acl log")
        .reply(count, now, w);
}

fn dryrun(ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    let Some(user) = ctx.shard.shared.acl.user(&String::from_utf8_lossy(argv[2])) else {
        w.error(&format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(argv[2])
        ));
        return;
    };
    let args = &argv[3..];
    let not_found = || {
        format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(args[0])
        )
    };
    let Some(cmd) = super::lookup(args[0]) else {
        w.error(&not_found());
        return;
    };
    let t = table();
    let id = t.id_of(cmd, args);
    let e = t.get(id);
    let arity = if e.parent.is_some() {
        cmd.subcommands
            .iter()
            .find(|(n, _, _)| *n == e.name)
            .map_or(cmd.arity, |s| s.1)
    } else {
        if !cmd.subcommands.is_empty() && args.len() >= 2 {
            w.error(&not_found());
            return;
        }
        cmd.arity
    };
    let argc = args.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity {
        w.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            e.name
        ));
        return;
    }
    match user.check(cmd, id, args) {
        Ok(()) => w.ok(),
        Err(Denied::Command) => w.bulk(
            format!(
                "This user has no permissions to run the '{}' command",
                e.name
            )
            .as_bytes(),
        ),
        Err(Denied::Key(p)) => w.bulk(
            format!(
                "This user has no permissions to access the '{}' key",
                String::from_utf8_lossy(args[p])
            )
            .as_bytes(),
        ),
        Err(Denied::Channel(p)) => w.bulk(
            format!(
                "This user has no permissions to access the '{}' channel",
                String::from_utf8_lossy(args[p])
            )
            .as_bytes(),
        ),
    }
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(argv: &[&[u8]], w: &mut ReplyWriter) {
    w.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        super::trunc_lossy(argv[1], 128)
    ));
}
