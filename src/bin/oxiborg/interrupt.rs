//! SIGINT, SIGTERM and SIGHUP during a long command (`extract`, `export-tar`, `check`): the first
//! one sets the interrupt flag that the library honours (it stops cleanly and returns
//! [`oxiborg::Error::Interrupted`]); a second one ends the process at once, as the signal does by
//! default. Installed only around the work that checks the flag, so that a signal at a
//! passphrase prompt (or during a command that never looks) still ends the process.

use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The signals that stop a command cleanly.
const SIGNALS: [i32; 3] = [SIGINT, SIGTERM, SIGHUP];

/// The interrupt flag, set by the first of [`SIGNALS`], and which signal set it.
pub(super) struct Interrupt {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Installs the handlers. When that is impossible (it never is on Linux and macOS), the
    /// signals keep their default action and the flag is never set.
    pub(super) fn install() -> Interrupt {
        let flag = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
        for sig in SIGNALS {
            // The default action on the second signal ("armed" by the first, which runs the
            // actions registered after this one), then the flag; the signal's number first, so
            // that it is there once the flag is seen.
            let installed = signal_hook::flag::register_conditional_default(sig, flag.clone())
                .and_then(|_| signal_hook::flag::register_usize(sig, signal.clone(), sig as usize))
                .and_then(|_| signal_hook::flag::register(sig, flag.clone()));
            if let Err(e) = installed {
                crate::logger::debug(
                    "borg.archiver",
                    &format!("cannot install a handler for signal {sig}: {e}"),
                );
            }
        }
        Interrupt { flag, signal }
    }

    /// The flag to hand to the library.
    pub(super) fn flag(&self) -> Arc<AtomicBool> {
        self.flag.clone()
    }

    /// The exit code for the signal that came (borg's: 128 + its number; 130 for SIGINT).
    pub(super) fn exit_code(&self) -> i32 {
        match self.signal.load(Ordering::SeqCst) {
            0 => 128 + SIGINT,
            n => 128 + n as i32,
        }
    }

    /// Says on one line that the command was interrupted (and `what` it had done), and
    /// returns the exit code.
    pub(super) fn report(&self, what: Option<&str>) -> i32 {
        let line = match what {
            Some(w) => format!("Interrupted by {}: {w}", self.name()),
            None => format!("Interrupted by {}.", self.name()),
        };
        crate::logger::error("borg.archiver", &line);
        self.exit_code()
    }

    /// The signal's name, for the message.
    pub(super) fn name(&self) -> &'static str {
        match self.signal.load(Ordering::SeqCst) as i32 {
            SIGTERM => "SIGTERM",
            SIGHUP => "SIGHUP",
            _ => "SIGINT",
        }
    }
}
