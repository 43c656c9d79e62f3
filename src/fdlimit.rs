//! The descriptor limit (`RLIMIT_NOFILE`) against `maxclients`, as Redis's
//! `adjustOpenFilesLimit`: raise the limit to what the clients need, or else lower
//! `maxclients` to what the limit allows, with Redis's log lines.

use crate::server::LogLevel;
use std::io;

/// Descriptors kept for everything but clients (Redis's `CONFIG_MIN_RESERVED_FDS`).
pub const MIN_RESERVED_FDS: u64 = 32;
/// percore's own descriptors per shard beyond Redis's: its ring and its listeners.
const RESERVED_FDS_PER_SHARD: u64 = 1;
/// Descriptors outside the shards (stdio, log, signalfd, metrics, snapshot files, pidfds).
const RESERVED_FDS_BASE: u64 = 16;
/// A refused limit is lowered by this much and tried again (Redis's `decr_step`).
const LIMIT_STEP_FDS: u64 = 16;

/// Descriptors kept aside from clients for `shards` shards listening on `binds` addresses:
/// Redis's 32, more on machines with many shards.
pub fn reserved_fds(shards: usize, binds: usize) -> u64 {
    let per_shard = RESERVED_FDS_PER_SHARD + binds as u64;
    MIN_RESERVED_FDS.max(RESERVED_FDS_BASE + shards as u64 * per_shard)
}

/// What the adjustment decided: the `maxclients` to run with and the lines to log.
#[derive(Debug, PartialEq, Eq)]
pub struct Adjusted {
    pub maxclients: u32,
    pub log: Vec<(LogLevel, String)>,
}

/// Fits `maxclients` to the descriptor limit. `limits` reads (soft, hard); `set` tries a
/// new limit (soft and hard). `Err` is the fatal message when not even the reserve fits.
pub fn adjust(
    maxclients: u32,
    reserved: u64,
    limits: io::Result<(u64, u64)>,
    mut set: impl FnMut(u64) -> io::Result<()>,
) -> Result<Adjusted, String> {
    let maxfiles = u64::from(maxclients) + reserved;
    let mut log = Vec::new();
    let old = match limits {
        Ok((soft, _)) => soft,
        Err(e) => {
            log.push((
                LogLevel::Warning,
                format!(
                    "Unable to obtain the current NOFILE limit ({}), assuming 1024 and setting the max clients configuration accordingly.",
                    percore_net::sys::strerror(&e)
                ),
            ));
            return Ok(Adjusted {
                maxclients: 1024u64.saturating_sub(reserved).max(1) as u32,
                log,
            });
        }
    };
    if old >= maxfiles {
        return Ok(Adjusted { maxclients, log });
    }
    // The highest limit the system takes, from `maxfiles` down in steps (Redis's loop).
    let mut best = maxfiles;
    let mut error = None;
    while best > old {
        match set(best) {
            Ok(()) => break,
            Err(e) => error = Some(e),
        }
        if best < LIMIT_STEP_FDS {
            best = old;
            break;
        }
        best -= LIMIT_STEP_FDS;
    }
    best = best.max(old);
    if best >= maxfiles {
        log.push((
            LogLevel::Notice,
            format!(
                "Increased maximum number of open files to {maxfiles} (it was originally set to {old})."
            ),
        ));
        return Ok(Adjusted { maxclients, log });
    }
    if best <= reserved {
        return Err(format!(
            "Your current 'ulimit -n' of {old} is not enough for the server to start. Please increase your open file limit to at least {maxfiles}. Exiting."
        ));
    }
    let reduced = (best - reserved) as u32;
    let why = error.map_or_else(String::new, |e| percore_net::sys::strerror(&e));
    log.push((
        LogLevel::Warning,
        format!(
            "You requested maxclients of {maxclients} requiring at least {maxfiles} max file descriptors."
        ),
    ));
    log.push((
        LogLevel::Warning,
        format!("Server can't set maximum open files to {maxfiles} because of OS error: {why}."),
    ));
    log.push((
        LogLevel::Warning,
        format!(
            "Current maximum open files is {best}. maxclients has been reduced to {reduced} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
        ),
    ));
    Ok(Adjusted {
        maxclients: reduced,
        log,
    })
}

/// Applies [`adjust`] to this process's limit.
pub fn adjust_process(maxclients: u32, reserved: u64) -> Result<Adjusted, String> {
    adjust(
        maxclients,
        reserved,
        percore_net::sys::nofile_limit(),
        percore_net::sys::set_nofile_limit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process whose hard limit is `hard`: setting above it fails with EPERM.
    fn set_up_to(hard: u64) -> impl FnMut(u64) -> io::Result<()> {
        move |l| {
            if l <= hard {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(libc::EPERM))
            }
        }
    }

    #[test]
    fn a_low_limit_lowers_maxclients_with_redis_lines() {
        let a = adjust(10_000, 32, Ok((64, 64)), set_up_to(64)).unwrap();
        assert_eq!(a.maxclients, 32);
        assert_eq!(
            a.log.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>(),
            [
                "You requested maxclients of 10000 requiring at least 10032 max file descriptors.",
                "Server can't set maximum open files to 10032 because of OS error: Operation not permitted.",
                "Current maximum open files is 64. maxclients has been reduced to 32 to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.",
            ]
        );
    }

    #[test]
    fn the_limit_is_raised_in_redis_steps_up_to_the_hard_limit() {
        // Redis with soft 100, hard 200 and maxclients 150 raised it to 182.
        let mut tried = Vec::new();
        let a = adjust(150, 32, Ok((100, 200)), |l| {
            tried.push(l);
            set_up_to(200)(l)
        })
        .unwrap();
        assert_eq!(a.maxclients, 150);
        assert_eq!(tried, [182]);
        assert_eq!(
            a.log[0].1,
            "Increased maximum number of open files to 182 (it was originally set to 100)."
        );
        let b = adjust(180, 32, Ok((182, 182)), set_up_to(182)).unwrap();
        assert_eq!(b.maxclients, 150);
    }

    #[test]
    fn enough_limit_changes_nothing_and_too_little_is_fatal() {
        let a = adjust(100, 32, Ok((1024, 1024)), |_| unreachable!()).unwrap();
        assert_eq!(
            a,
            Adjusted {
                maxclients: 100,
                log: Vec::new()
            }
        );
        assert!(adjust(100, 32, Ok((20, 20)), set_up_to(20)).is_err());
        assert_eq!(reserved_fds(2, 2), 32);
        assert_eq!(reserved_fds(64, 2), 16 + 64 * 3);
    }
}
