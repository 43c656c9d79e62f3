//! The ACL file (`aclfile`: ACL LOAD, ACL SAVE, start-up) and the `user` lines of the
//! configuration file, as Redis 7.0's `ACLLoadFromFile` / `ACLSaveToFile` /
//! `ACLLoadConfiguredUsers`.

use super::Acl;
use super::user::{User, merge_selector_args};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

/// The largest ACL file read, in bytes (far beyond any real user list).
pub const ACL_FILE_MAX_BYTES: u64 = 64 << 20;

/// Parses one ACL file's text; all errors, as Redis joins them, or the users.
pub fn parse(filename: &str, text: &str, all_channels: bool) -> Result<Vec<User>, String> {
    let mut errors = String::new();
    let mut users = Vec::new();
    let mut seen = HashSet::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r' || c == '\n');
        let linenum = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(argv) = crate::config::split_args_public(line.as_bytes()) else {
            let _ = write!(
                errors,
                "{filename}:{linenum}: unbalanced quotes in acl line. "
            );
            continue;
        };
        if argv.is_empty() {
            continue;
        }
        if argv[0] != b"user" || argv.len() < 2 {
            let _ = write!(
                errors,
                "{filename}:{linenum} should start with user keyword. "
            );
            continue;
        }
        let name = &argv[1];
        if name.iter().any(|&b| b == b' ' || b == 0) {
            let _ = write!(
                errors,
                "'{filename}:{linenum}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            );
            continue;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        if !seen.insert(name.clone()) {
            let _ = write!(
                errors,
                "WARNING: Duplicate user '{name}' found on line {linenum}. "
            );
            continue;
        }
        let mut u = super::unlinked(&name, all_channels);
        let rest: Vec<&[u8]> = argv[2..].iter().map(Vec::as_slice).collect();
        let Ok(rules) = merge_selector_args(&rest) else {
            let _ = write!(
                errors,
                "{filename}:{linenum}: Unmatched parenthesis in selector definition."
            );
            continue;
        };
        for r in rules {
            if let Err(e) = u.apply(&r, all_channels) {
                let _ = write!(errors, "{filename}:{linenum}: {}. ", e.text());
            }
        }
        users.push(u);
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(errors)
    }
}

/// ACL LOAD: reads `path` and replaces every user, or changes nothing and returns the
/// error text.
pub fn load(acl: &Acl, path: &str, all_channels: bool) -> Result<(), String> {
    let text = match std::fs::File::open(path).and_then(|f| {
        use std::io::Read;
        let mut s = String::new();
        f.take(ACL_FILE_MAX_BYTES).read_to_string(&mut s)?;
        Ok(s)
    }) {
        Ok(t) => t,
        Err(e) => {
            return Err(format!(
                "Error loading ACLs, opening file '{path}': {}",
                crate::config::os_error_public(&e)
            ));
        }
    };
    let users = parse(path, &text, all_channels)?;
    acl.replace_all(users);
    Ok(())
}

/// ACL SAVE: every user's description, one per line, written to a temporary file then
/// renamed over `path`.
pub fn save(acl: &Acl, path: &str) -> std::io::Result<()> {
    let mut text = String::new();
    for u in acl.users() {
        text.push_str(&u.describe());
        text.push('\n');
    }
    let p = Path::new(path);
    let tmp = p.with_file_name(format!(
        "{}.tmp-{}",
        p.file_name().map_or("acl".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, p)
}

/// The `user` lines of the configuration file, applied at start-up (Redis's
/// `ACLAppendUserForLoading` + `ACLLoadConfiguredUsers`).
pub fn config_users(lines: &[Vec<String>], all_channels: bool) -> Result<Vec<User>, String> {
    let mut users: Vec<User> = Vec::new();
    for line in lines {
        let Some((name, rules)) = line.split_first() else {
            continue;
        };
        if users.iter().any(|u| &u.name == name) {
            return Err(format!(
                "Error in user declaration '{name}': Duplicate user found. A user can only be defined once in config files"
            ));
        }
        let mut u = super::unlinked(name, all_channels);
        let rest: Vec<&[u8]> = rules.iter().map(String::as_bytes).collect();
        let merged = merge_selector_args(&rest)
            .map_err(|_| format!("Error in user declaration '{name}': Syntax error"))?;
        for r in merged {
            u.apply(&r, all_channels)
                .map_err(|e| format!("Error in user declaration '{name}': {}", e.text()))?;
        }
        users.push(u);
    }
    Ok(users)
}

/// Start-up: the `user` lines or the ACL file (not both), then the users are installed.
/// `requirepass` was applied to the default user first; a `user default` line overrides it.
pub fn load_at_startup(
    acl: &Acl,
    aclfile: &str,
    user_lines: &[Vec<String>],
    all_channels: bool,
) -> Result<(), String> {
    if !aclfile.is_empty() && !user_lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    if !user_lines.is_empty() {
        let mut users = config_users(user_lines, all_channels)?;
        if !users.iter().any(|u| u.name == "default") {
            users.push((*acl.default_user()).clone());
        }
        acl.replace_all(users);
    } else if !aclfile.is_empty() {
        load(acl, aclfile, all_channels)?;
    }
    Ok(())
}
