//! Crash reports: a panic while a command runs is a bug, and the process still aborts (see
//! `main`), but first the log names the command and its first arguments, as Redis's bug
//! report does, so the request that found the bug can be replayed.

use crate::server::{LogLevel, ServerShared};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Arguments a crash report shows, and the bytes shown of each.
pub const CRASH_REPORT_MAX_ARGS: usize = 8;
pub const CRASH_REPORT_MAX_ARG_BYTES: usize = 128;

thread_local! {
    /// Set while [`guarded`] runs a command on this thread: the panic hook then lets the
    /// panic unwind to it instead of aborting at once.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The panic's message and place, kept by the hook for the report.
    static PANIC_TEXT: RefCell<String> = const { RefCell::new(String::new()) };
    /// The server (for its log) and the shard this thread runs, set once when it starts.
    static SHARD: RefCell<Option<(Arc<ServerShared>, usize)>> = const { RefCell::new(None) };
}

/// Names the shard the calling thread runs, for its crash reports.
pub fn register_shard_thread(shared: Arc<ServerShared>, shard: usize) {
    SHARD.with(|s| *s.borrow_mut() = Some((shared, shard)));
}

/// Called by the process's panic hook: `true` when a [`guarded`] command is running on this
/// thread (it writes the report and aborts); `false` when the hook must abort itself.
pub fn hook_defers(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let deferred = GUARDED.with(Cell::get);
    if deferred {
        PANIC_TEXT.with(|t| *t.borrow_mut() = info.to_string());
    }
    deferred
}

/// Runs `f`, the execution of the command `argv`. A panic inside it writes a crash report
/// to the server's log (stderr on a thread that is not a shard's) and aborts the process.
#[inline]
pub fn guarded<R>(argv: &[&[u8]], f: impl FnOnce() -> R) -> R {
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    let Ok(r) = result else {
        let panic = PANIC_TEXT.with(|t| std::mem::take(&mut *t.borrow_mut()));
        SHARD.with(|s| match &*s.borrow() {
            Some((shared, shard)) => {
                shared
                    .log
                    .log(LogLevel::Warning, &report(*shard, argv, &panic));
            }
            None => eprintln!("{}", report(usize::MAX, argv, &panic)),
        });
        eprintln!("percore: a shard thread panicked; aborting");
        std::process::abort();
    };
    r
}

/// The text of a crash report.
pub fn report(shard: usize, argv: &[&[u8]], panic: &str) -> String {
    use std::fmt::Write as _;
    let mut s =
        String::from("\n\n=== PERCORE BUG REPORT START: Cut & paste starting from here ===\n");
    let _ = writeln!(s, "shard {shard} panicked while running a command: {panic}");
    s.push_str("------ CURRENT CLIENT INFO ------\n");
    let _ = writeln!(s, "argc: '{}'", argv.len());
    for (i, a) in argv.iter().take(CRASH_REPORT_MAX_ARGS).enumerate() {
        let shown = &a[..a.len().min(CRASH_REPORT_MAX_ARG_BYTES)];
        let _ = write!(s, "argv[{i}]: '{}'", shown.escape_ascii());
        if a.len() > shown.len() {
            let _ = write!(s, "... ({} bytes)", a.len());
        }
        s.push('\n');
    }
    s.push_str("=== PERCORE BUG REPORT END. Make sure to include from START to END. ===\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_the_command_and_truncates_arguments() {
        let long = vec![b'x'; 300];
        let text = report(1, &[b"OBJECT", b"HELP\xff", &long], "index out of bounds");
        assert!(text.contains("shard 1 panicked while running a command: index out of bounds"));
        assert!(text.contains("argv[0]: 'OBJECT'"));
        assert!(text.contains("argv[1]: 'HELP\\xff'"));
        assert!(text.contains("... (300 bytes)"));
        assert!(text.contains("argc: '3'"));
    }

    #[test]
    fn a_panic_outside_a_guarded_command_is_not_deferred() {
        assert!(!GUARDED.with(Cell::get));
    }
}
