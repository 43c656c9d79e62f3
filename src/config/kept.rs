//! Redis 7.0 options percore keeps by value: each is parsed with Redis's syntax, bounds and
//! error texts, stored as the text CONFIG GET renders, and read back through the typed
//! getters below by the code that gives it an effect (`unixsocket`, `always-show-logo`,
//! `enable-debug-command`, `shutdown-on-sigterm`, ...). Options with no meaning in percore
//! (`io-threads`, `activedefrag`, the `*_cpulist`s, ...) are accepted and reported the same
//! way; README's configuration section says which and why.

use std::collections::BTreeMap;

use super::values::{parse_bool, parse_int, parse_memory, render_bool};

/// The values set so far, by canonical option name; an absent name has its default.
pub type Kept = BTreeMap<&'static str, String>;

/// Redis's `protected_action_enum` (`enable-debug-command`, `enable-protected-configs`,
/// `enable-module-command`).
pub const PROTECTED_ACTION: &[(&str, i64)] = &[("no", 0), ("yes", 1), ("local", 2)];
/// `shutdown-on-sigint` / `shutdown-on-sigterm` flags (Redis's `shutdown_on_sig_enum`).
pub const SHUTDOWN_ON_SIG: &[(&str, i64)] = &[
    ("default", 0),
    ("save", 1),
    ("nosave", 2),
    ("now", 4),
    ("force", 8),
];
/// `shutdown-on-sig*` flag: save even without save points.
pub const SHUTDOWN_SAVE: i64 = 1;
/// `shutdown-on-sig*` flag: exit without saving.
pub const SHUTDOWN_NOSAVE: i64 = 2;
/// `shutdown-on-sig*` flag: exit even if the final save fails.
pub const SHUTDOWN_FORCE: i64 = 8;
pub const OOM_SCORE_ADJ: &[(&str, i64)] =
    &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
pub const SANITIZE_DUMP_PAYLOAD: &[(&str, i64)] = &[("no", 0), ("yes", 1), ("clients", 2)];
/// Valkey 8.1's `rdb-version-check`: `relaxed` lets RESTORE take a payload of an RDB
/// version newer than the server's (not one of the foreign range 12-79).
pub const RDB_VERSION_CHECK: &[(&str, i64)] = &[("strict", 0), ("relaxed", 1)];
pub const SUPERVISED: &[(&str, i64)] = &[("upstart", 1), ("systemd", 2), ("auto", 3), ("no", 0)];
pub const SYSLOG_FACILITY: &[(&str, i64)] = &[
    ("user", 0),
    ("local0", 1),
    ("local1", 2),
    ("local2", 3),
    ("local3", 4),
    ("local4", 5),
    ("local5", 6),
    ("local6", 7),
    ("local7", 8),
];
pub const PROPAGATION_ERROR_BEHAVIOR: &[(&str, i64)] =
    &[("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];
pub const CLUSTER_ENDPOINT_TYPE: &[(&str, i64)] =
    &[("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];

/// Number of values in `oom-score-adj-values` (primary, replica, background child).
pub const OOM_SCORE_ADJ_VALUES_COUNT: usize = 3;

/// An option's type, bounds and default, as its `create*Config` row in Redis's config.c.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool(bool),
    /// A plain integer within bounds.
    Int {
        min: i64,
        max: i64,
        default: i64,
    },
    /// A byte count (`memtoull` units) within bounds.
    Memory {
        min: u64,
        max: u64,
        default: u64,
    },
    /// A byte count or a percentage of `maxmemory` (`10%`, kept negative as Redis does);
    /// `max_percent` is the largest percentage.
    MemoryOrPercent {
        max_percent: i64,
        max: i64,
    },
    /// An octal number (`unixsocketperm`).
    Octal {
        max: i64,
        default: i64,
    },
    /// One of the names; the default is the first name with value `default`.
    Enum(&'static [(&'static str, i64)], i64),
    /// Several names whose values are or-ed (Redis's `MULTI_ARG_CONFIG` enums).
    Flags(&'static [(&'static str, i64)]),
    Text(&'static str),
    /// `oom-score-adj-values`: three integers in -2000..=2000.
    OomValues,
    /// `activedefrag`: yes/no, but `yes` is refused as by a Redis built without jemalloc.
    NoDefrag,
    /// `cluster-announce-hostname`: empty, or letters, digits, `-` and `.`.
    Hostname,
    /// `proc-title-template`: Redis's `{variable}` template, checked as Redis checks it.
    ProcTitle,
}

/// Redis's `NET_HOST_STR_LEN`.
const HOSTNAME_MAX_BYTES: usize = 256;
/// `proc-title-template`'s default.
const PROC_TITLE_DEFAULT: &str = "{title} {listen-addr} {server-mode}";
/// The variables a `proc-title-template` may name, and whether each expands to a
/// non-empty text (Redis's `redisProcTitleGetVariable` with an empty title).
const PROC_TITLE_VARIABLES: &[(&str, bool)] = &[
    ("title", false),
    ("listen-addr", true),
    ("server-mode", false),
    ("config-file", true),
    ("port", true),
    ("tls-port", true),
    ("unixsocket", false),
];

/// Redis's `validateProcTitleTemplate`: `sdstemplate` expands it (`{{` is a literal `{`,
/// an unknown or unterminated variable fails) to a non-empty text.
fn valid_proc_title(template: &str) -> bool {
    let mut rest = template;
    let mut non_empty = false;
    while let Some(open) = rest.find('{') {
        non_empty |= open > 0;
        let after = &rest[open + 1..];
        if after.is_empty() {
            return false;
        }
        if let Some(tail) = after.strip_prefix('{') {
            non_empty = true;
            rest = tail;
            continue;
        }
        let Some(close) = after.find('}') else {
            return false;
        };
        match PROC_TITLE_VARIABLES
            .iter()
            .find(|(n, _)| *n == &after[..close])
        {
            Some((_, expands)) => non_empty |= expands,
            None => return false,
        }
        rest = &after[close + 1..];
    }
    non_empty || !rest.is_empty()
}

impl Kind {
    /// The CONFIG GET text of the default.
    pub fn default_text(self) -> String {
        match self {
            Kind::Bool(b) => render_bool(b),
            Kind::Int { default, .. } => default.to_string(),
            Kind::Memory { default, .. } => default.to_string(),
            Kind::MemoryOrPercent { .. } => "0".to_owned(),
            Kind::Octal { default, .. } => format!("{default:o}"),
            Kind::Enum(names, default) => enum_name(names, default),
            Kind::Flags(names) => flags_name(names, 0),
            Kind::Text(default) => default.to_owned(),
            Kind::OomValues => "0 200 800".to_owned(),
            Kind::NoDefrag => render_bool(false),
            Kind::Hostname => String::new(),
            Kind::ProcTitle => PROC_TITLE_DEFAULT.to_owned(),
        }
    }

    /// Whether the option takes several arguments (CONFIG SET splits its value on spaces).
    pub const fn multi_arg(self) -> bool {
        matches!(self, Kind::Flags(_) | Kind::OomValues)
    }

    /// Whether CONFIG REWRITE quotes the value (Redis's string options, written with
    /// `sdscatrepr`: `proc-title-template "{title} ..."` loads back as one argument).
    pub const fn quoted(self) -> bool {
        matches!(self, Kind::Text(_) | Kind::Hostname | Kind::ProcTitle)
    }

    /// Parses `args` (one, or several for a multi-argument kind) into the CONFIG GET text,
    /// with Redis's error text when they do not parse.
    pub fn parse(self, args: &[String]) -> Result<String, String> {
        match self {
            Kind::Flags(names) => {
                let value = flags_value(names, args).ok_or_else(|| one_of(names))?;
                if value & SHUTDOWN_SAVE != 0 && value & SHUTDOWN_NOSAVE != 0 {
                    return Err(
                        "shutdown options SAVE and NOSAVE can't be used simultaneously".to_owned(),
                    );
                }
                Ok(flags_name(names, value))
            }
            Kind::OomValues => parse_oom_values(args),
            _ if args.len() != 1 => Err("wrong number of arguments".to_owned()),
            Kind::Bool(_) => parse_bool(&args[0]).map(render_bool),
            Kind::Int { min, max, .. } => {
                let value = parse_int(&args[0]).ok_or(super::values::ERR_NOT_INTEGER)?;
                check_bounds(value, min, max).map(|()| value.to_string())
            }
            Kind::Memory { min, max, .. } => {
                let value = parse_memory(&args[0]).ok_or(super::values::ERR_NOT_MEMORY)?;
                if value < min || value > max {
                    return Err(between(min, max));
                }
                Ok(value.to_string())
            }
            Kind::MemoryOrPercent { max_percent, max } => {
                parse_memory_or_percent(&args[0], max_percent, max)
            }
            Kind::Octal { max, .. } => {
                let value = i64::from_str_radix(&args[0], 8)
                    .ok()
                    .filter(|_| !args[0].starts_with(['+', '-']))
                    .ok_or("argument couldn't be parsed as an octal number")?;
                if value > max {
                    return Err(format!("argument must be between 0 and {max:o} inclusive"));
                }
                Ok(format!("{value:o}"))
            }
            Kind::Enum(names, _) => names
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&args[0]))
                .map(|&(_, v)| enum_name(names, v))
                .ok_or_else(|| one_of(names)),
            Kind::Text(_) => Ok(args[0].clone()),
            Kind::NoDefrag => {
                if parse_bool(&args[0])? {
                    Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution".to_owned())
                } else {
                    Ok(render_bool(false))
                }
            }
            Kind::Hostname => {
                let name = &args[0];
                if name.len() >= HOSTNAME_MAX_BYTES {
                    return Err(format!(
                        "Hostnames must be less than {HOSTNAME_MAX_BYTES} characters"
                    ));
                }
                if !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return Err(
                        "Hostnames may only contain alphanumeric characters, hyphens or dots"
                            .to_owned(),
                    );
                }
                Ok(name.clone())
            }
            Kind::ProcTitle => {
                if !valid_proc_title(&args[0]) {
                    return Err(
                        "template format is invalid or contains unknown variables".to_owned()
                    );
                }
                Ok(args[0].clone())
            }
        }
    }
}

fn between<T: std::fmt::Display>(min: T, max: T) -> String {
    format!("argument must be between {min} and {max} inclusive")
}

fn check_bounds(value: i64, min: i64, max: i64) -> Result<(), String> {
    if value < min || value > max {
        return Err(between(min, max));
    }
    Ok(())
}

fn one_of(names: &[(&str, i64)]) -> String {
    let list: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
    format!(
        "argument(s) must be one of the following: {}",
        list.join(", ")
    )
}

/// Redis's `configEnumGetName` for a plain enum: the first name with that value.
fn enum_name(names: &[(&str, i64)], value: i64) -> String {
    names
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("unknown", |(n, _)| n)
        .to_owned()
}

fn flags_value(names: &[(&str, i64)], args: &[String]) -> Option<i64> {
    if args.is_empty() {
        return None;
    }
    let mut value = 0;
    for arg in args {
        value |= names.iter().find(|(n, _)| n.eq_ignore_ascii_case(arg))?.1;
    }
    Some(value)
}

/// Redis's `configEnumGetName` with bit flags: an exact match, else the names of the set
/// bits in table order.
fn flags_name(names: &[(&str, i64)], value: i64) -> String {
    if let Some((n, _)) = names.iter().find(|(_, v)| *v == value) {
        return (*n).to_owned();
    }
    let set: Vec<&str> = names
        .iter()
        .filter(|(_, v)| *v != 0 && value & v == *v)
        .map(|(n, _)| *n)
        .collect();
    set.join(" ")
}

fn parse_memory_or_percent(arg: &str, max_percent: i64, max: i64) -> Result<String, String> {
    if let Some(bytes) = parse_memory(arg) {
        let bytes = i64::try_from(bytes).map_err(|_| between(-max_percent, max))?;
        check_bounds(bytes, -max_percent, max)?;
        return Ok(bytes.to_string());
    }
    if let Some(digits) = arg.strip_suffix('%')
        && let Some(percent) = parse_int(digits).filter(|p| *p >= 0)
    {
        if percent > max_percent {
            return Err(format!(
                "percentage argument must be less or equal to {max_percent}"
            ));
        }
        return Ok(if percent == 0 {
            "0".to_owned()
        } else {
            format!("{percent}%")
        });
    }
    Err("argument must be a memory or percent value".to_owned())
}

fn parse_oom_values(args: &[String]) -> Result<String, String> {
    if args.len() != OOM_SCORE_ADJ_VALUES_COUNT {
        return Err("wrong number of arguments".to_owned());
    }
    let mut values = Vec::with_capacity(OOM_SCORE_ADJ_VALUES_COUNT);
    for arg in args {
        // Redis uses strtoll: a leading `+` or `-` and surrounding digits only.
        let value = arg
            .parse::<i64>()
            .ok()
            .filter(|v| (-2000..=2000).contains(v))
            .ok_or("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")?;
        values.push(value.to_string());
    }
    Ok(values.join(" "))
}

/// The stored text of `name` (canonical), or its default.
pub fn get(kept: &Kept, name: &str, kind: Kind) -> String {
    kept.get(name)
        .cloned()
        .unwrap_or_else(|| kind.default_text())
}

/// An enum or flags option's numeric value.
pub fn enum_value(kept: &Kept, name: &str, names: &[(&str, i64)], default: i64) -> i64 {
    match kept.get(name) {
        None => default,
        Some(text) => {
            let args: Vec<String> = text.split(' ').map(str::to_owned).collect();
            flags_value(names, &args).unwrap_or(default)
        }
    }
}

/// A yes/no option's value.
pub fn bool_value(kept: &Kept, name: &str, default: bool) -> bool {
    kept.get(name).map_or(default, |t| t == "yes")
}

/// Options Redis flags `HIDDEN_CONFIG`: `CONFIG GET` with a glob pattern leaves them out.
pub const HIDDEN: &[&str] = &[
    "enable-debug-assert",
    "use-exit-on-panic",
    "key-load-delay",
    "watchdog-period",
    "loading-process-events-interval-bytes",
    "rdb-key-save-delay",
    "cluster-ping-interval",
];

/// Redis's `setOOMScoreAdj` statics: whether percore has changed its `oom_score_adj`,
/// and the value it read just before (restored when `oom-score-adj` goes back to `no`).
static OOM_STATE: std::sync::Mutex<(bool, i64)> = std::sync::Mutex::new((false, 0));
const OOM_SCORE_ADJ_PATH: &str = "/proc/self/oom_score_adj";

/// `oom-score-adj-values`' classes: a primary, a replica, a background child.
pub const OOM_PRIMARY: usize = 0;
pub const OOM_REPLICA: usize = 1;
pub const OOM_CHILD: usize = 2;

/// Redis's `setOOMScoreAdj`: with `oom-score-adj` on, writes `/proc/self/oom_score_adj`
/// for the process `class` (relative to the value read when percore first changed it);
/// turned off, writes that value back once; otherwise leaves the file alone. The error
/// text is for the log.
pub fn apply_oom_score_adj(config: &super::Config, class: usize) -> Result<(), String> {
    let mut state = OOM_STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let value = if config.oom_score_adj_enabled() {
        if !state.0 {
            let base = std::fs::read_to_string(OOM_SCORE_ADJ_PATH).map_err(|e| {
                format!("Unable to read oom_score_adj: {}", super::os_error_text(&e))
            })?;
            *state = (true, base.trim().parse().unwrap_or(0));
        }
        config.oom_score_adj_for(class, state.1).unwrap_or(state.1)
    } else if state.0 {
        state.0 = false;
        state.1
    } else {
        return Ok(());
    };
    std::fs::write(OOM_SCORE_ADJ_PATH, format!("{value}\n")).map_err(|e| {
        format!(
            "Unable to write oom_score_adj: {}",
            super::os_error_text(&e)
        )
    })
}

/// CONFIG SET's `updateOOMScoreAdj`: when `oom-score-adj` or `oom-score-adj-values`
/// changed (`pairs` named first decides which one the error names), applies them for
/// the server's role; on failure puts `before` back (and applies it again) and answers
/// Redis's error.
pub fn oom_config_set(
    before: &super::Config,
    config: &mut super::Config,
    pairs: &[(&[u8], &[u8])],
    replica: bool,
    log: impl Fn(&str),
) -> Result<(), String> {
    const NAMES: [&str; 2] = ["oom-score-adj", "oom-score-adj-values"];
    let changed = |name: &str| before.kept.get(name) != config.kept.get(name);
    let Some(name) = pairs.iter().find_map(|(k, _)| {
        NAMES
            .into_iter()
            .find(|n| k.eq_ignore_ascii_case(n.as_bytes()) && changed(n))
    }) else {
        return Ok(());
    };
    let class = if replica { OOM_REPLICA } else { OOM_PRIMARY };
    if let Err(e) = apply_oom_score_adj(config, class) {
        log(&e);
        log(&format!(
            "Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings."
        ));
        *config = before.clone();
        let _ = apply_oom_score_adj(config, class);
        return Err(format!(
            "ERR CONFIG SET failed (possibly related to argument '{name}') - Failed to set current oom_score_adj. Check server logs."
        ));
    }
    Ok(())
}

/// The `oom_score_adj` a background child sets for itself after the fork (Redis's
/// `setOOMScoreAdj(CONFIG_OOM_BGCHILD)` in the child), if `oom-score-adj` is on.
pub fn child_oom_score_adj(config: &super::Config) -> Option<i64> {
    let state = *OOM_STATE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !config.oom_score_adj_enabled() || !state.0 {
        return None;
    }
    config.oom_score_adj_for(OOM_CHILD, state.1)
}

/// Redis's `allowProtectedAction`: `yes`, or `local` for a local client (Unix socket or
/// loopback).
fn protected_allowed(setting: i64, local: bool) -> bool {
    setting == 1 || (setting == 2 && local)
}

impl super::Config {
    /// `unixsocket`: the Unix socket path to listen on, if any.
    pub fn unixsocket(&self) -> Option<&str> {
        self.kept
            .get("unixsocket")
            .map(String::as_str)
            .filter(|p| !p.is_empty())
    }

    /// `unixsocketperm`: the socket file's mode (0: leave the umask's).
    pub fn unixsocketperm(&self) -> u32 {
        self.kept
            .get("unixsocketperm")
            .and_then(|t| u32::from_str_radix(t, 8).ok())
            .unwrap_or(0)
    }

    /// `always-show-logo`.
    pub fn always_show_logo(&self) -> bool {
        bool_value(&self.kept, "always-show-logo", false)
    }

    /// `enable-debug-command` allows DEBUG for this client.
    pub fn debug_allowed(&self, local: bool) -> bool {
        let setting = enum_value(&self.kept, "enable-debug-command", PROTECTED_ACTION, 0);
        protected_allowed(setting, local)
    }

    /// `enable-protected-configs` allows CONFIG SET of protected options for this client.
    pub fn protected_configs_allowed(&self, local: bool) -> bool {
        let setting = enum_value(&self.kept, "enable-protected-configs", PROTECTED_ACTION, 0);
        protected_allowed(setting, local)
    }

    /// `shutdown-on-sigint` (`sigint`) or `shutdown-on-sigterm`: the `SHUTDOWN_*` flags.
    pub fn shutdown_on_signal(&self, sigint: bool) -> i64 {
        let name = if sigint {
            "shutdown-on-sigint"
        } else {
            "shutdown-on-sigterm"
        };
        enum_value(&self.kept, name, SHUTDOWN_ON_SIG, 0)
    }

    /// `lazyfree-lazy-server-del`: SPOP that empties its set propagates UNLINK, not DEL.
    pub fn lazyfree_lazy_server_del(&self) -> bool {
        bool_value(&self.kept, "lazyfree-lazy-server-del", false)
    }

    /// `lazyfree-lazy-user-del`: DEL frees big values on the lazy-free thread as UNLINK.
    pub fn lazyfree_lazy_user_del(&self) -> bool {
        bool_value(&self.kept, "lazyfree-lazy-user-del", false)
    }

    /// `stop-writes-on-bgsave-error`.
    pub fn stop_writes_on_bgsave_error(&self) -> bool {
        bool_value(&self.kept, "stop-writes-on-bgsave-error", true)
    }

    /// Whether `oom-score-adj` is on (`yes`, `relative` or `absolute`).
    pub fn oom_score_adj_enabled(&self) -> bool {
        enum_value(&self.kept, "oom-score-adj", OOM_SCORE_ADJ, 0) != 0
    }

    /// The `oom_score_adj` a process of `class` ([`OOM_PRIMARY`], ...) should have per
    /// `oom-score-adj` and `oom-score-adj-values`, relative to `base` (the value before
    /// percore changed it) unless `absolute`, within -1000..=1000; `None` when
    /// `oom-score-adj` is `no`.
    pub fn oom_score_adj_for(&self, class: usize, base: i64) -> Option<i64> {
        let mode = enum_value(&self.kept, "oom-score-adj", OOM_SCORE_ADJ, 0);
        let values = get(&self.kept, "oom-score-adj-values", Kind::OomValues);
        let value: i64 = values.split(' ').nth(class)?.parse().ok()?;
        match mode {
            1 => Some((base + value).clamp(-1000, 1000)),
            2 => Some(value.clamp(-1000, 1000)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, OOM_SCORE_ADJ, SHUTDOWN_ON_SIG};

    fn one(kind: Kind, arg: &str) -> Result<String, String> {
        kind.parse(&[arg.to_owned()])
    }

    #[test]
    fn values_parse_and_render_as_redis() {
        let percent = Kind::MemoryOrPercent {
            max_percent: 100,
            max: i64::MAX,
        };
        assert_eq!(one(percent, "10%").unwrap(), "10%");
        assert_eq!(one(percent, "1mb").unwrap(), "1048576");
        assert_eq!(
            one(percent, "101%").unwrap_err(),
            "percentage argument must be less or equal to 100"
        );
        assert_eq!(
            one(percent, "x").unwrap_err(),
            "argument must be a memory or percent value"
        );
        let octal = Kind::Octal {
            max: 0o777,
            default: 0,
        };
        assert_eq!(one(octal, "700").unwrap(), "700");
        assert_eq!(
            one(octal, "1000").unwrap_err(),
            "argument must be between 0 and 777 inclusive"
        );
        assert_eq!(
            one(octal, "9").unwrap_err(),
            "argument couldn't be parsed as an octal number"
        );
        let oom = Kind::Enum(OOM_SCORE_ADJ, 0);
        assert_eq!(one(oom, "relative").unwrap(), "yes");
        assert_eq!(
            one(oom, "x").unwrap_err(),
            "argument(s) must be one of the following: no, yes, relative, absolute"
        );
        let flags = Kind::Flags(SHUTDOWN_ON_SIG);
        let args = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(flags.parse(&args("now force")).unwrap(), "now force");
        assert_eq!(flags.parse(&args("default")).unwrap(), "default");
        assert_eq!(
            flags.parse(&args("save nosave")).unwrap_err(),
            "shutdown options SAVE and NOSAVE can't be used simultaneously"
        );
        for (template, ok) in [
            ("{title} {listen-addr} {server-mode}", true),
            ("", false),
            ("{title}", false),
            ("{port}", true),
            ("x{title}", true),
            ("{{", true),
            ("{nope}", false),
            ("{title", false),
            ("{", false),
            ("}", true),
        ] {
            assert_eq!(one(Kind::ProcTitle, template).is_ok(), ok, "{template:?}");
        }
        assert!(one(Kind::Hostname, "a-b.c").is_ok());
        assert!(one(Kind::Hostname, "a_b").is_err());
        assert_eq!(
            Kind::OomValues.parse(&args("0 200 800")).unwrap(),
            "0 200 800"
        );
        assert_eq!(
            Kind::OomValues.parse(&args("0 200 3000")).unwrap_err(),
            "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
        );
    }
}
