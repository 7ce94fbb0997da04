//! The progress display of `extract` (and `check`): an indicatif bar on stderr with bytes, files,
//! rate and ETA, redrawn from the library's live counters ([`Progress`]) by a thread of its own.
//!
//! It is shown with `--progress`, or by default when stderr is a terminal; it never draws when
//! stderr is not a terminal, so redirected output, `--stdout` data and JSON stay clean. Messages
//! printed while it is shown go through [`print_line`], which clears the bar first.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use oxiborg::progress::Progress;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether a command shows progress: `--progress` asks for it, but it is also the default on a
/// terminal, and it is never drawn when stderr is not a terminal — so this is the terminal test.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// The bar being shown, if any: [`print_line`] clears it around a message.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Prints a line on stderr without garbling the bar being shown.
pub fn print_line(line: &str) {
    let bar = SHOWN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(b) => b.suspend(|| crate::logger::stderr_line(line)),
        None => crate::logger::stderr_line(line),
    }
}

/// A running progress display.
pub struct Display {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Display {
    /// Starts a bar of bytes (and files) done out of the totals `progress` has when it starts
    /// (a restore's, set by `Extractor::totals`).
    pub fn start(verb: &'static str, progress: Arc<Progress>) -> Display {
        let total_files = progress.total_items().unwrap_or(0);
        let total_bytes = progress.total_bytes().unwrap_or(0);
        Self::launch(
            verb,
            total_bytes,
            "{prefix} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            move |b| {
                b.set_position(progress.bytes().min(total_bytes));
                b.set_message(format!("{}/{total_files} files", progress.items()));
            },
        )
    }

    /// Starts a bar counting the items (objects) of `progress` up to its total, which may
    /// become known later.
    pub fn start_count(verb: &'static str, progress: Arc<Progress>) -> Display {
        Self::launch(
            verb,
            0,
            "{prefix} {wide_bar} {pos}/{len} objects {per_sec} ETA {eta}",
            move |b| {
                b.set_length(progress.total_items().unwrap_or(0));
                b.set_position(progress.items());
            },
        )
    }

    /// Shows a bar in `template`, updated by `update` ten times a second on its own thread.
    fn launch(
        verb: &'static str,
        len: u64,
        template: &str,
        update: impl Fn(&ProgressBar) + Send + 'static,
    ) -> Display {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(verb);
        let stop = Arc::new(AtomicBool::new(false));
        let (b, st) = (bar.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                update(&b);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        Display {
            bar,
            stop,
            thread: Some(thread),
        }
    }

    /// Removes the bar.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        SHOWN.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.end();
    }
}
