//! Ctrl-C: the first SIGINT sets a flag the load threads poll (so the run stops and prints
//! what it measured); the handler then resets itself, so a second Ctrl-C kills as usual.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT handler and returns the flag it sets.
#[expect(
    unsafe_code,
    reason = "sigaction with a handler that only stores to an atomic"
)]
pub fn install_sigint_flag() -> io::Result<&'static AtomicBool> {
    // SAFETY: `sigaction` is plain data, zeroed and then filled; the handler is an
    // `extern "C"` function that does nothing but an atomic store, which is
    // async-signal-safe. SA_RESETHAND restores the default action after the first signal.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
        libc::sigemptyset(&raw mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &raw const sa, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(&INTERRUPTED)
}
