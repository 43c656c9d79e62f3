//! COMMAND and its subcommands, all read from the command table.

use super::super::{Begin, COMMANDS, Command, Ctx, Find, KeySpec, eq_ic, flags, lookup};
use super::{help_reply, subcommand, subcommand_error};
use percore_engine::glob::string_match;
use percore_net::resp::ReplyWriter;

const HELP: &[&str] = &[
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
];

/// ACL categories in Redis's order (`@read`, ...): Redis's listed ones and those the
/// flags imply, as the ACL rules see them (`acl::category::of`).
pub fn acl_categories(name: &str, flags_: u32) -> Vec<String> {
    crate::acl::category::names(crate::acl::category::of(name, flags_))
        .map(|n| format!("@{n}"))
        .collect()
}

fn write_flags(w: &mut ReplyWriter, f: u32) {
    let names: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(bit, _)| f & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    w.set(names.len());
    for n in names {
        w.simple(n);
    }
}

fn write_strs<S: AsRef<str>>(w: &mut ReplyWriter, items: &[S]) {
    w.set(items.len());
    for s in items {
        w.simple(s.as_ref());
    }
}

/// The key specs: the table's, or one derived from the legacy range.
fn write_key_specs(w: &mut ReplyWriter, c: &Command) {
    if !c.key_specs.is_empty() {
        w.set(c.key_specs.len());
        for spec in c.key_specs {
            write_key_spec(w, spec);
        }
        return;
    }
    if c.first_key <= 0 {
        w.set(0);
        return;
    }
    w.set(1);
    write_key_spec(
        w,
        &KeySpec {
            notes: None,
            flags: c.range_flags(),
            begin: Begin::Index(c.first_key),
            find: Find::Range {
                lastkey: if c.last_key >= 0 {
                    c.last_key - c.first_key
                } else {
                    c.last_key
                },
                keystep: c.step,
                limit: 0,
            },
        },
    );
}

/// One key spec map, as Redis's `addReplyCommandKeySpecs`.
fn write_key_spec(w: &mut ReplyWriter, spec: &KeySpec) {
    w.map(3 + usize::from(spec.notes.is_some()));
    if let Some(n) = spec.notes {
        w.bulk(b"notes");
        w.bulk(n.as_bytes());
    }
    w.bulk(b"flags");
    write_strs(w, spec.flags);
    let ints = |w: &mut ReplyWriter, kind: &str, fields: &[(&str, i32)]| {
        w.map(2);
        w.bulk(b"type");
        w.bulk(kind.as_bytes());
        w.bulk(b"spec");
        w.map(fields.len());
        for (k, v) in fields {
            w.bulk(k.as_bytes());
            w.int(i64::from(*v));
        }
    };
    w.bulk(b"begin_search");
    match spec.begin {
        Begin::Index(i) => ints(w, "index", &[("index", i)]),
        Begin::Keyword { keyword, startfrom } => {
            w.map(2);
            w.bulk(b"type");
            w.bulk(b"keyword");
            w.bulk(b"spec");
            w.map(2);
            w.bulk(b"keyword");
            w.bulk(keyword.as_bytes());
            w.bulk(b"startfrom");
            w.int(i64::from(startfrom));
        }
        Begin::Unknown => ints(w, "unknown", &[]),
    }
    w.bulk(b"find_keys");
    match spec.find {
        Find::Range {
            lastkey,
            keystep,
            limit,
        } => ints(
            w,
            "range",
            &[("lastkey", lastkey), ("keystep", keystep), ("limit", limit)],
        ),
        Find::Keynum {
            keynumidx,
            firstkey,
            keystep,
        } => ints(
            w,
            "keynum",
            &[
                ("keynumidx", keynumidx),
                ("firstkey", firstkey),
                ("keystep", keystep),
            ],
        ),
        Find::Unknown => ints(w, "unknown", &[]),
    }
}

/// One COMMAND INFO entry: name, arity, flags, first, last, step, ACL categories, tips,
/// key specs, subcommands.
pub fn write_info(w: &mut ReplyWriter, c: &Command) {
    w.array(10);
    w.bulk(c.name.as_bytes());
    w.int(i64::from(c.arity));
    let movable = if c.movable_keys() {
        flags::MOVABLE_KEYS
    } else {
        0
    };
    write_flags(w, c.flags | movable);
    w.int(i64::from(c.first_key));
    w.int(i64::from(c.last_key));
    w.int(i64::from(c.step));
    write_strs(w, &acl_categories(c.name, c.flags));
    w.set(0);
    write_key_specs(w, c);
    w.array(c.subcommands.len());
    for (name, arity, f) in c.subcommands {
        w.array(10);
        w.bulk(name.as_bytes());
        w.int(i64::from(*arity));
        write_flags(w, *f);
        w.int(0);
        w.int(0);
        w.int(0);
        write_strs(w, &acl_categories(name, *f));
        w.set(0);
        w.set(0);
        w.array(0);
    }
}

fn write_docs(w: &mut ReplyWriter, c: &Command) {
    w.map(3);
    w.bulk(b"summary");
    w.bulk(c.summary.as_bytes());
    w.bulk(b"since");
    w.bulk(c.since.as_bytes());
    w.bulk(b"group");
    w.bulk(c.group.as_bytes());
}

/// Every command name and subcommand name, as COMMAND LIST.
fn all_names() -> impl Iterator<Item = (&'static str, &'static Command, u32)> {
    COMMANDS.iter().flat_map(|c| {
        std::iter::once((c.name, c, c.flags))
            .chain(c.subcommands.iter().map(move |(n, _, f)| (*n, c, *f)))
    })
}

pub fn command(_ctx: &mut Ctx, argv: &[&[u8]], w: &mut ReplyWriter) {
    if argv.len() == 1 {
        w.array(COMMANDS.len());
        for c in COMMANDS {
            write_info(w, c);
        }
        return;
    }
    let Some(sub) = subcommand(argv, w.proto) else {
        subcommand_error(argv, w);
        return;
    };
    match sub {
        "command|count" => w.int(COMMANDS.len() as i64),
        "command|info" => {
            if argv.len() == 2 {
                w.array(COMMANDS.len());
                for c in COMMANDS {
                    write_info(w, c);
                }
            } else {
                w.array(argv.len() - 2);
                for name in &argv[2..] {
                    match lookup(name) {
                        Some(c) => write_info(w, c),
                        None => w.null(),
                    }
                }
            }
        }
        "command|docs" => {
            let found: Vec<&Command> = if argv.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                argv[2..].iter().filter_map(|n| lookup(n)).collect()
            };
            w.map(found.len());
            for c in found {
                w.bulk(c.name.as_bytes());
                write_docs(w, c);
            }
        }
        "command|list" => command_list(argv, w),
        "command|getkeys" | "command|getkeysandflags" => {
            getkeys(argv, w, sub == "command|getkeysandflags");
        }
        _ => help_reply(w, "COMMAND", HELP),
    }
}

fn command_list(argv: &[&[u8]], w: &mut ReplyWriter) {
    let names: Vec<&str> = match argv.len() {
        2 => all_names().map(|(n, _, _)| n).collect(),
        5 if eq_ic(argv[2], "FILTERBY") => {
            let (kind, arg) = (argv[3], argv[4]);
            if eq_ic(kind, "MODULE") {
                Vec::new()
            } else if eq_ic(kind, "ACLCAT") {
                let cat = format!("@{}", String::from_utf8_lossy(arg).to_ascii_lowercase());
                all_names()
                    .filter(|(n, _, f)| acl_categories(n, *f).contains(&cat))
                    .map(|(n, _, _)| n)
                    .collect()
            } else if eq_ic(kind, "PATTERN") {
                all_names()
                    .filter(|(n, _, _)| string_match(arg, n.as_bytes(), true))
                    .map(|(n, _, _)| n)
                    .collect()
            } else {
                w.error(super::errors::SYNTAX);
                return;
            }
        }
        _ => {
            w.error(super::errors::SYNTAX);
            return;
        }
    };
    w.array(names.len());
    for n in names {
        w.bulk(n.as_bytes());
    }
}

/// The getkeys procedures of the commands whose key flags vary with their arguments:
/// Redis's `setGetKeys` (`RW access update` with GET, else `OW update`) and
/// `bitfieldGetKeys` (`RO access` when it only reads).
fn variable_flags_keys(
    name: &str,
    argv: &[&[u8]],
) -> Option<Vec<(usize, &'static [&'static str])>> {
    const RW: &[&str] = &["RW", "access", "update"];
    let flags: &'static [&'static str] = match name {
        "set" => {
            if argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) {
                RW
            } else {
                &["OW", "update"]
            }
        }
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < argv.len() {
                let rem = argv.len() - i - 1;
                let a = argv[i];
                if a.eq_ignore_ascii_case(b"get") && rem >= 2 {
                    i += 2;
                } else if a.eq_ignore_ascii_case(b"overflow") && rem >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            if readonly { &["RO", "access"] } else { RW }
        }
        _ => return None,
    };
    Some(vec![(1, flags)])
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS, as Redis's `getKeysSubcommandImpl`.
fn getkeys(argv: &[&[u8]], w: &mut ReplyWriter, with_flags: bool) {
    let target = &argv[2..];
    let Some(c) = lookup(target[0]) else {
        w.error("ERR Invalid command specified");
        return;
    };
    // Redis's `lookupCommand`: a container with arguments names one of its subcommands,
    // whose own key specs (Redis 7.0's, from `acl::catalog`) and arity apply.
    let sub = if c.subcommands.is_empty() || target.len() < 2 {
        None
    } else {
        let Some(s) = c.subcommands.iter().find(|s| {
            s.0.split_once('|')
                .is_some_and(|(_, n)| n.as_bytes().eq_ignore_ascii_case(target[1]))
        }) else {
            w.error("ERR Invalid command specified");
            return;
        };
        Some(s)
    };
    let specs = match sub {
        Some(s) => crate::acl::table::specs_of(s.0),
        None => crate::acl::table::specs_of(c.name),
    }
    .unwrap_or(&[]);
    let getkeys = if sub.is_none() { c.getkeys } else { None };
    let has_keys = if sub.is_some() {
        !specs.is_empty()
    } else {
        c.has_keys() || !specs.is_empty()
    };
    if !has_keys {
        w.error("ERR The command has no key arguments");
        return;
    }
    let arity_ok = match sub {
        Some(s) => {
            let n = target.len() as i32;
            if s.1 >= 0 { n == s.1 } else { n >= -s.1 }
        }
        None => c.arity_ok(target.len()),
    };
    if !arity_ok {
        w.error("ERR Invalid number of arguments specified for command");
        return;
    }
    // Redis's `getKeysFromCommandWithSpecs`: the specs when they resolve and their flags
    // do not vary, else the command's getkeys procedure.
    let varies = specs.iter().any(|s| s.flags.contains(&"variable_flags"));
    let from_specs = if varies {
        variable_flags_keys(c.name, target)
    } else {
        crate::commands::keys_from_specs(specs, target)
    };
    let keys = match from_specs {
        Some(k) if !specs.is_empty() => k,
        _ => match getkeys {
            Some(g) => g(target),
            None if specs.is_empty() => c.keys_with_flags(target),
            None => Vec::new(),
        },
    };
    if keys.is_empty() {
        if c.flags & flags::NO_MANDATORY_KEYS != 0 {
            w.array(0);
        } else {
            w.error("ERR Invalid arguments specified for command");
        }
        return;
    }
    w.array(keys.len());
    for (p, f) in keys {
        if with_flags {
            w.array(2);
            w.bulk(target[p]);
            write_strs(w, f);
        } else {
            w.bulk(target[p]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use percore_net::resp::Protocol;
    use percore_net::resp::frame::{Frame, decode_frame};

    #[test]
    fn info_entry_has_redis_shape() {
        let mut out = Vec::new();
        write_info(
            &mut ReplyWriter::new(&mut out, Protocol::Resp2),
            lookup(b"get").unwrap(),
        );
        let (f, _) = decode_frame(&out).unwrap().unwrap();
        let Frame::Array(items) = f else {
            panic!("not an array")
        };
        assert_eq!(items.len(), 10);
        assert_eq!(items[0], Frame::Bulk(b"get".to_vec()));
        assert_eq!(items[1], Frame::Int(2));
        assert_eq!(
            items[2],
            Frame::Array(vec![
                Frame::Simple(b"readonly".to_vec()),
                Frame::Simple(b"fast".to_vec())
            ])
        );
        assert_eq!(items[3..6], [Frame::Int(1), Frame::Int(1), Frame::Int(1)]);
        assert_eq!(
            items[6],
            Frame::Array(vec![
                Frame::Simple(b"@read".to_vec()),
                Frame::Simple(b"@string".to_vec()),
                Frame::Simple(b"@fast".to_vec())
            ])
        );
        assert_eq!(items[9], Frame::Array(vec![]));
    }
}
