//! SIGTERM and SIGINT end the run gracefully: the handler only sets a flag, which the run loop reads
//! before each frame; the frame in flight is scored, then the runtime is dropped, which flushes the
//! sinks (MQTT publishes `offline`, unsent alarms stay in the spool).

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handlers (once is enough) and returns the flag they set.
pub fn install() -> &'static AtomicBool {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe; `sigaction` with
    // SA_RESTART keeps interrupted reads and sleeps going, and the loop sees the flag at the next frame.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in [libc::SIGTERM, libc::SIGINT] {
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                tracing::warn!(signal = sig, "could not install the signal handler");
            }
        }
    }
    &STOP
}
