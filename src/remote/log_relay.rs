//! The server's log lines (its stderr) relayed to the `log` facade, target `borg.remote`, the way
//! borg's client shows them: `Remote: …` at the line's own level. The last few lines are kept
//! ([`Tail`]): a server that exits before answering usually says why there.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest log line read at once.
const MAX_LINE: u64 = 64 << 10;
/// Lines [`Tail`] keeps.
const TAIL_LINES: usize = 8;
/// Characters of a line [`Tail`] keeps.
const TAIL_LINE_CHARS: usize = 400;

/// What a borg 2 `borg serve` (legacy mode) says to a borg 1.x client's first request, after
/// `Borg <version>: `.
const BORG2_REFUSAL: &str = "Got unexpected RPC data format from client";

/// Whether `line` is a borg 2 server refusing borg 1.x's RPC
/// (`Borg 2.0.0b25: Got unexpected RPC data format from client.`).
pub(super) fn is_borg2_refusal(line: &str) -> bool {
    line.contains(BORG2_REFUSAL) && line.contains("Borg 2.")
}

/// The server's last log lines, and whether its stderr closed.
pub(super) struct Tail {
    state: Mutex<(VecDeque<String>, bool)>,
    closed: Condvar,
}

impl Tail {
    /// An empty tail of a stderr that is still open.
    pub(super) fn new() -> Arc<Tail> {
        Arc::new(Tail {
            state: Mutex::new((VecDeque::new(), false)),
            closed: Condvar::new(),
        })
    }

    /// The tail of a session without a separate stderr: nothing, and closed.
    pub(super) fn none() -> Arc<Tail> {
        let t = Tail::new();
        t.close();
        t
    }

    fn push(&self, line: &str) {
        let line: String = line.chars().take(TAIL_LINE_CHARS).collect();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.0.len() == TAIL_LINES {
            s.0.pop_front();
        }
        s.0.push_back(line);
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.closed.notify_all();
    }

    /// The last lines the server wrote, once its stderr closed (waiting at most `limit` for
    /// that: a server that exits closes it at once).
    pub(super) fn last_words(&self, limit: Duration) -> Vec<String> {
        let end = Instant::now() + limit;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.1 {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            s = self
                .closed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        s.0.iter().cloned().collect()
    }
}

/// Prints one server log line the way borg's client shows it.
fn show_log_line(line: &str) {
    if line.is_empty() {
        return;
    }
    if is_borg2_refusal(line) {
        // Not news for the user: the caller sees it in the error, and may go on over REST.
        log::debug!(target: "borg.remote", "Remote: {line}");
        return;
    }
    if line.starts_with('{') {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(line) {
            let typ = o.get("type").and_then(|v| v.as_str()).unwrap_or("");
            let msg = o.get("message").and_then(|v| v.as_str()).unwrap_or("");
            match typ {
                "log_message" => {
                    let level = o.get("levelname").and_then(|v| v.as_str()).unwrap_or("");
                    log::log!(target: "borg.remote", remote_level(level), "Remote: {msg}");
                }
                "progress_percent" | "progress_message" => {}
                _ => log::warn!(target: "borg.remote", "Remote: {line}"),
            }
            return;
        }
    }
    if let Some(rest) = line.strip_prefix("$LOG ") {
        let msg = rest.split_once("Remote: ").map(|(_, m)| m).unwrap_or(rest);
        let level = rest.split(' ').next().unwrap_or("");
        log::log!(target: "borg.remote", remote_level(level), "Remote: {msg}");
        return;
    }
    log::warn!(target: "borg.remote", "Remote: {line}");
}

/// The level of a server log line by its level name (unknown names count as warnings;
/// CRITICAL is an error).
fn remote_level(name: &str) -> log::Level {
    use log::Level;
    match name {
        "DEBUG" => Level::Debug,
        "INFO" => Level::Info,
        "ERROR" | "CRITICAL" => Level::Error,
        _ => Level::Warn,
    }
}

/// Starts the thread that relays the server's log lines until its stderr closes, keeping the
/// last ones in `tail`.
pub(super) fn spawn(log: Box<dyn Read + Send>, tail: Arc<Tail>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(log);
        let mut line = Vec::new();
        // (a line longer than MAX_LINE comes in pieces: a server cannot make this grow)
        while matches!((&mut r).take(MAX_LINE).read_until(b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if !text.is_empty() {
                tail.push(text);
            }
            show_log_line(text);
            line.clear();
        }
        tail.close();
    })
}
