//! The server's log lines (its stderr) relayed to the `log` facade, target `borg.remote`, the way
//! borg's client shows them: `Remote: …` at the line's own level.

use std::io::{BufRead, BufReader, Read};

/// Prints one server log line the way borg's client shows it.
fn show_log_line(line: &str) {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
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

/// Starts the thread that relays the server's log lines until its stderr closes.
pub(super) fn spawn(log: Box<dyn Read + Send>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(log);
        let mut line = Vec::new();
        while matches!(r.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            show_log_line(&String::from_utf8_lossy(&line));
            line.clear();
        }
    })
}
