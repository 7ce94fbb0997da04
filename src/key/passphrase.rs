//! Where the passphrase comes from, in borg's order: `BORG_PASSPHRASE`, `BORG_PASSCOMMAND`,
//! `BORG_PASSPHRASE_FD`, then an interactive prompt on the terminal.
//!
//! The first variable that is *set* wins, even when empty (an empty `BORG_PASSPHRASE` means the
//! empty passphrase). A passphrase is held in [`Zeroizing`] memory and never printed.
//!
//! A passphrase setting of a configuration file ([`ConfiguredPassphrase`], from borgmatic's
//! `encryption_passphrase` / `encryption_passcommand`) replaces those variables, and is what a
//! wrong-passphrase error names.

use crate::error::{Error, Result};
use crate::origin::Origin;
use std::io::Read;
use zeroize::Zeroizing;

/// A passphrase setting of a configuration file: used instead of borg's environment variables,
/// and named (with its file) when it is wrong.
#[derive(Clone)]
pub struct ConfiguredPassphrase {
    /// The passphrase, or the command that prints it.
    pub setting: PassphraseSetting,
    /// Where it is set.
    pub origin: Origin,
}

/// The two ways a configuration gives the passphrase.
#[derive(Clone)]
pub enum PassphraseSetting {
    /// The passphrase itself (borgmatic's `encryption_passphrase`).
    Value(Zeroizing<String>),
    /// A command that prints it, run when a key needs it (borgmatic's `encryption_passcommand`).
    Command(String),
}

impl std::fmt::Debug for ConfiguredPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.setting {
            PassphraseSetting::Value(_) => write!(f, "ConfiguredPassphrase(from {})", self.origin),
            PassphraseSetting::Command(c) => {
                write!(
                    f,
                    "ConfiguredPassphrase(command {c:?} from {})",
                    self.origin
                )
            }
        }
    }
}

/// Asks for a passphrase when none is given (e.g. on the terminal); the argument names the key
/// (its file, or the repository).
pub type Prompt = std::sync::Arc<dyn Fn(&str) -> Result<Passphrase> + Send + Sync>;

/// Where the key's passphrase may come from, in the order they are tried.
#[derive(Clone, Default)]
pub struct PassphraseSources<'a> {
    /// The caller's passphrase.
    pub given: Option<&'a Passphrase>,
    /// A configuration file's setting.
    pub configured: Option<&'a ConfiguredPassphrase>,
    /// borg's variables (`BORG_PASSPHRASE`, `BORG_PASSCOMMAND`, `BORG_PASSPHRASE_FD`), read now.
    pub environment: bool,
    /// Asked when none of the above gives one.
    pub prompt: Option<&'a Prompt>,
}

impl PassphraseSources<'_> {
    /// Asks the prompt, or says why there is no passphrase.
    pub(crate) fn ask(&self, for_what: &str) -> Result<Zeroizing<String>> {
        match self.prompt {
            Some(p) => p(for_what).map(|p| p.secret),
            None if self.environment => Err(Error::NoPassphrase(
                "BORG_PASSPHRASE is not set. BORG_PASSCOMMAND is not set. Interactive password query failed. \
                 Set one of them (e.g. BORG_PASSCOMMAND=\"cat /etc/borgmatic/pass\"; is that file there \
                 and readable?), or take the passphrase from a borgmatic configuration with \
                 --borgmatic-config FILE."
                    .into(),
            )),
            None => Err(Error::NoPassphrase(
                "the key needs a passphrase and none was given (OpenOptions::passphrase; \
                 OpenOptions::from_env reads borg's variables)"
                    .into(),
            )),
        }
    }
}

/// The passphrase to try before asking: the caller's, else the configured one, else borg's
/// environment variables (when `sources.environment`); with the origin a wrong-passphrase
/// error names (`None`: the caller or borg's variables). `Ok(None)`: none is given.
pub fn obtain(
    sources: &PassphraseSources<'_>,
) -> Result<Option<(Zeroizing<String>, Option<Origin>)>> {
    let (given, configured) = (sources.given, sources.configured);
    if let Some(p) = given {
        return Ok(Some((p.secret.clone(), None)));
    }
    if let Some(c) = configured {
        let secret = match &c.setting {
            PassphraseSetting::Value(v) => v.clone(),
            PassphraseSetting::Command(cmd) => run_passcommand(cmd).map_err(|e| match e {
                Error::PasscommandFailure { command, reason } => Error::PasscommandFailure {
                    command,
                    reason: format!("{reason} (set as {})", c.origin),
                },
                e => e,
            })?,
        };
        return Ok(Some((secret, Some(c.origin.clone()))));
    }
    if !sources.environment {
        return Ok(None);
    }
    Ok(from_environment()?.map(|p| (p.secret, None)))
}

/// A passphrase (held in memory that is zeroed when dropped, never printed).
///
/// ```
/// let p = oxiborg::Passphrase::new("correct horse");
/// assert_eq!(format!("{p:?}"), "Passphrase(from the caller)");
/// let p: oxiborg::Passphrase = String::from("battery staple").into();
/// ```
#[derive(Clone)]
pub struct Passphrase {
    pub(crate) secret: Zeroizing<String>,
    /// Which source supplied it (for messages; never the secret).
    pub(crate) source: &'static str,
}

impl Passphrase {
    /// A passphrase given by the caller.
    pub fn new(secret: impl Into<String>) -> Passphrase {
        Passphrase {
            secret: Zeroizing::new(secret.into()),
            source: "the caller",
        }
    }
}

impl From<String> for Passphrase {
    fn from(s: String) -> Passphrase {
        Passphrase::new(s)
    }
}

impl From<&str> for Passphrase {
    fn from(s: &str) -> Passphrase {
        Passphrase::new(s)
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Passphrase(from {})", self.source)
    }
}

/// Reads the passphrase from the environment sources, or `None` when none is set.
pub fn from_environment() -> Result<Option<Passphrase>> {
    if let Some(v) = std::env::var_os("BORG_PASSPHRASE") {
        let secret = Zeroizing::new(v.to_string_lossy().into_owned());
        return Ok(Some(Passphrase {
            secret,
            source: "BORG_PASSPHRASE",
        }));
    }
    if let Ok(cmd) = std::env::var("BORG_PASSCOMMAND") {
        return run_passcommand(&cmd).map(|secret| {
            Some(Passphrase {
                secret,
                source: "BORG_PASSCOMMAND",
            })
        });
    }
    if let Ok(fd) = std::env::var("BORG_PASSPHRASE_FD") {
        return read_fd(&fd).map(|secret| {
            Some(Passphrase {
                secret,
                source: "BORG_PASSPHRASE_FD",
            })
        });
    }
    Ok(None)
}

fn strip_newlines(mut s: String) -> Zeroizing<String> {
    while s.ends_with('\n') {
        s.pop();
    }
    Zeroizing::new(s)
}

/// Runs `BORG_PASSCOMMAND` (split shell-like, no shell) and takes its stdout.
pub fn run_passcommand(command: &str) -> Result<Zeroizing<String>> {
    let fail = |reason: String| Error::PasscommandFailure {
        command: command.to_string(),
        reason,
    };
    let words = shell_words::split(command).map_err(|e| fail(e.to_string()))?;
    let (prog, args) = words
        .split_first()
        .ok_or_else(|| fail("empty command".into()))?;
    let out = std::process::Command::new(prog)
        .args(args)
        .env_remove("BORG_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "it exited with {} (if it reads a file such as /etc/borgmatic/pass: is it there, and \
             readable by this user?)",
            out.status
        )));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| fail("output is not UTF-8".into()))?;
    Ok(strip_newlines(text))
}

/// Reads the whole of an inherited file descriptor (`BORG_PASSPHRASE_FD`).
fn read_fd(fd: &str) -> Result<Zeroizing<String>> {
    let n: i32 = fd.trim().parse().map_err(|_| {
        Error::NoPassphrase(format!(
            "BORG_PASSPHRASE_FD={fd:?} is not a file descriptor number"
        ))
    })?;
    let path = format!("/dev/fd/{n}");
    let mut f = std::fs::File::open(&path)
        .map_err(|e| Error::NoPassphrase(format!("cannot read BORG_PASSPHRASE_FD {n}: {e}")))?;
    let mut s = String::new();
    f.read_to_string(&mut s)
        .map_err(|e| Error::NoPassphrase(format!("cannot read BORG_PASSPHRASE_FD {n}: {e}")))?;
    Ok(strip_newlines(s))
}

/// Asks on the controlling terminal, without echo (borg's prompt; the CLI's [`Prompt`]).
///
/// # Errors
/// [`Error::NoPassphrase`] when there is no terminal to ask on.
pub fn terminal_prompt(for_what: &str) -> Result<Passphrase> {
    rpassword::prompt_password(format!("Enter passphrase for key {for_what}: "))
        .map(|s| Passphrase {
            secret: Zeroizing::new(s),
            source: "the terminal",
        })
        .map_err(|_| {
            Error::NoPassphrase(
                "BORG_PASSPHRASE is not set. BORG_PASSCOMMAND is not set. Interactive password query failed. \
                 Set one of them (e.g. BORG_PASSCOMMAND=\"cat /etc/borgmatic/pass\"; is that file there \
                 and readable?), or take the passphrase from a borgmatic configuration with \
                 --borgmatic-config FILE."
                    .into(),
            )
        })
}
