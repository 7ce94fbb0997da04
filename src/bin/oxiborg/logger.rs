//! Messages for the person at the terminal, in borg's levels and logger names: the CLI's own
//! (errors, `--list` lines) and the library's, which arrive through the `log` facade (the
//! target is borg's logger name, e.g. `borg.remote`) and are bridged here by [`install`].
//!
//! A message at or above the threshold ([`Level::Warning`] unless [`set_threshold`] says
//! otherwise) is written to stderr as a plain line, or handed to the sink [`set_sink`] installs
//! (the progress display, borg's `--log-json`).

/// A message's id in `--log-json` output, for the errors borg names (see
/// [`super::exit::msgid`]); messages reported through [`emit`] have none.
pub type MsgId = Option<&'static str>;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::RwLock;

/// A message's importance, as Python's logging levels that borg uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `--debug`
    Debug = 10,
    /// `--info` / `-v`
    Info = 20,
    /// The default threshold.
    Warning = 30,
    /// `--error`
    Error = 40,
    /// `--critical`
    Critical = 50,
}

impl Level {
    /// borg's level name (`WARNING`, …).
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }
}

/// Receives every message that passes the threshold: level, logger name (e.g.
/// `borg.archiver`), text.
pub type Sink = Box<dyn Fn(Level, &str, &str) + Send + Sync>;

static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Warning as u8);
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Messages below `level` are dropped.
pub fn set_threshold(level: Level) {
    THRESHOLD.store(level as u8, Ordering::Relaxed);
}

/// Hands messages to `sink` instead of writing them to stderr.
pub fn set_sink(sink: Sink) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
}

/// Whether a message at `level` would be shown.
pub fn enabled(level: Level) -> bool {
    level as u8 >= THRESHOLD.load(Ordering::Relaxed)
}

/// Reports `msg` at `level` from `logger`, if the threshold lets it through.
pub fn emit(level: Level, logger: &str, msg: &str) {
    if enabled(level) {
        emit_always(level, logger, msg);
    }
}

/// Reports `msg` whatever the threshold (output the user asked for, such as `--list` lines).
pub fn emit_always(level: Level, logger: &str, msg: &str) {
    match SINK.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        Some(sink) => sink(level, logger, msg),
        None => crate::logger::stderr_line(msg),
    }
}

/// A debug message from `logger`.
pub fn debug(logger: &str, msg: &str) {
    emit(Level::Debug, logger, msg);
}

/// A warning from `logger`.
pub fn warning(logger: &str, msg: &str) {
    emit(Level::Warning, logger, msg);
}

/// An error from `logger`.
pub fn error(logger: &str, msg: &str) {
    emit(Level::Error, logger, msg);
}

/// Writes a line to stderr, ignoring failure (a closed pipe must not end the program the way
/// `eprintln!` would, with a panic).
pub fn stderr_line(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
}

impl From<log::Level> for Level {
    fn from(l: log::Level) -> Level {
        match l {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        }
    }
}

/// The library's messages (the `log` facade) into [`emit`].
struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        (m.target().starts_with("borg") || m.target().starts_with("oxiborg"))
            && enabled(m.level().into())
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            emit(
                record.level().into(),
                record.target(),
                &record.args().to_string(),
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the bridge from the `log` facade (once per process).
pub fn install() {
    if log::set_boxed_logger(Box::new(Bridge)).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}
