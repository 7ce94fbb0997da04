//! The documentation that travels in the binary: the ENVIRONMENT, EXIT STATUS and EXAMPLES
//! sections of `--help` and of the man pages (on a freshly wiped machine the binary is the
//! only manual there is), and the man pages themselves.

use crate::args::{Cli, CompletionArgs, ManArgs};
use clap::Command;
use clap::CommandFactory;
use oxiborg::error::{Error, Result};
use roff::{bold, roman, Roff};
use std::io::Write;

/// Every variable oxiborg reads, with what it does.
pub(super) const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "BORG_REPO",
        "the repository when none is given (and for the ::ARCHIVE shorthand)",
    ),
    ("BORG_PASSPHRASE", "the passphrase of the key"),
    (
        "BORG_PASSCOMMAND",
        "a command that prints the passphrase (e.g. \"cat /etc/borgmatic/pass\")",
    ),
    (
        "BORG_PASSPHRASE_FD",
        "a file descriptor to read the passphrase from",
    ),
    ("BORG_KEY_FILE", "the key file of a keyfile-mode repository"),
    (
        "BORG_KEYS_DIR",
        "where key files are looked for (default: BORG_CONFIG_DIR/keys)",
    ),
    (
        "BORG_BASE_DIR",
        "the base of borg's directories instead of HOME",
    ),
    (
        "BORG_CONFIG_DIR",
        "borg's configuration directory (default: XDG_CONFIG_HOME/borg)",
    ),
    (
        "BORG_SECURITY_DIR",
        "where borg records each repository's key type and manifest time",
    ),
    (
        "BORG_DATA_DIR",
        "borg 2: the data directory holding security/ (default ~/.local/share/borg)",
    ),
    (
        "XDG_DATA_HOME",
        "default ~/.local/share (borg 2's data directory)",
    ),
    (
        "BORG_REPO_LIST_FORMAT",
        "borg 2 repositories: the format of list REPO / repo-list",
    ),
    ("BORG_CACHE_DIR", "shown by info (oxiborg keeps no cache)"),
    ("XDG_CONFIG_HOME", "default ~/.config"),
    ("XDG_CACHE_HOME", "default ~/.cache"),
    (
        "BORG_RSH",
        "use this command instead of the built-in SSH client (\"ssh -i /etc/borgmatic/key\")",
    ),
    (
        "BORG_REMOTE_PATH",
        "the borg command on the server (default: borg)",
    ),
    ("BORG_HOSTNAME", "the host name for {hostname} placeholders"),
    ("BORG_USERNAME", "the user name for {user} placeholders"),
    (
        "BORG_HOST_ID",
        "this host's id in borg's lock files (judging stale locks)",
    ),
    (
        "BORG_HOSTNAME_IS_UNIQUE",
        "\"no\": never treat a lock as stale (borg 1.1)",
    ),
    (
        "BORG_EXIT_CODES",
        "\"modern\": borg 1.4's specific exit codes (see EXIT STATUS)",
    ),
    (
        "BORG_WORKAROUNDS",
        "\"ignore_invalid_archive_tam\": read archives whose TAM does not verify",
    ),
    (
        "OXIBORG_SSH_IDENTITY",
        "the built-in SSH client's key file (e.g. /etc/borgmatic/key)",
    ),
    (
        "OXIBORG_SSH_KEY_PASSPHRASE",
        "the passphrase of that key, if it has one",
    ),
    (
        "OXIBORG_SSH_KNOWN_HOSTS",
        "the known_hosts file of the built-in client (default ~/.ssh/known_hosts)",
    ),
    (
        "OXIBORG_REMOTE_TIMEOUT",
        "seconds without a byte from the server before a session is dropped (default 120)",
    ),
    (
        "OXIBORG_REMOTE_RETRIES",
        "reconnections after a dropped session (default 3)",
    ),
    (
        "OXIBORG_CONNECTIONS",
        "borg serve sessions per remote repository (as --connections)",
    ),
    (
        "OXIBORG_BATCH_FILES",
        "restore pipeline: files per batch (default 2048)",
    ),
    (
        "OXIBORG_BATCH_MB",
        "restore pipeline: content per batch in MB (default 256)",
    ),
    (
        "OXIBORG_INFLIGHT_MB",
        "restore pipeline: decoded data in flight in MB (default 128)",
    ),
    ("HOME", "home directory (~/.ssh, ~/.config/borg)"),
    (
        "USER",
        "the SSH login name when neither the location nor ~/.ssh/config names one",
    ),
    (
        "SSH_AUTH_SOCK",
        "the SSH agent the built-in client asks for keys",
    ),
];

/// Exit codes: borg's legacy ones, then those `BORG_EXIT_CODES=modern` gives errors.
pub(super) const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "success"),
    ("1", "warning: something was left out or restored only in part (an item refused for safety, metadata that could not be set, an include pattern that never matched); everything else is restored"),
    ("2", "error: the command failed, or a file could not be restored (damaged or missing data); with BORG_EXIT_CODES=modern, errors that borg 1.4 numbers get its codes:"),
    ("13", "the repository does not exist"),
    ("15", "not a valid repository"),
    ("16", "the repository config is invalid"),
    ("17", "an object is missing from the repository"),
    ("25", "the repository needs features this client lacks"),
    ("27", "unsupported manifest envelope"),
    ("31", "the archive does not exist"),
    ("40", "the key file is invalid"),
    ("41", "the key file belongs to another repository"),
    ("42", "no key file found"),
    ("44", "no key in the repository config"),
    ("48", "unsupported payload type"),
    ("50", "no passphrase could be obtained"),
    ("51", "BORG_PASSCOMMAND failed"),
    ("52", "the passphrase is wrong"),
    ("53", "too many wrong passphrases at the prompt"),
    ("61", "the key type changed since the last access"),
    ("63", "an unencrypted repository is older than seen before"),
    ("64", "the manifest is older than seen before (replay)"),
    ("73", "a writer holds the repository lock"),
    ("90", "data integrity error"),
    ("92", "decompression error"),
    ("95", "an archive's TAM does not verify"),
    ("97", "the manifest's TAM does not verify"),
    ("98", "the manifest has no TAM but the key requires one"),
    ("99", "unsupported TAM suite"),
    ("129", "interrupted by SIGHUP (a restore: run the same command with --continue to resume)"),
    ("130", "interrupted by SIGINT (Ctrl-C), likewise"),
    ("143", "interrupted by SIGTERM, likewise"),
];

/// The restore runbook, step by step, with oxiborg.
const EXAMPLES: &[(&str, &str)] = &[
    ("Where the repository is and how to open it (borg's variables):", "export BORG_REPO='ssh://borgwarehouse@backup.example:22222/./REPO-ID'\nexport BORG_RSH='ssh -i /etc/borgmatic/key'    # or: export OXIBORG_SSH_IDENTITY=/etc/borgmatic/key\nexport BORG_PASSCOMMAND='cat /etc/borgmatic/pass'"),
    ("List the archives:", "oxiborg list"),
    ("One file out of the newest archive, into /tmp:", "cd /tmp && oxiborg extract --latest :: home/me/.config/sops/age/keys.txt"),
    ("Preview, then restore /home from an archive:", "cd / && oxiborg extract --dry-run --list ::host-2025-01-15T03:00:00 home\ncd / && oxiborg extract --progress ::host-2025-01-15T03:00:00 home"),
    ("Resume an interrupted restore:", "cd / && oxiborg extract --continue ::host-2025-01-15T03:00:00 home"),
    ("Everything from a borgmatic configuration:", "sudo oxiborg --borgmatic-config /etc/borgmatic.d/voile.yaml list\ncd /tmp && sudo oxiborg --borgmatic extract --archive latest --path home/me/.config/sops/age/keys.txt"),
    ("Verify every object, export a tar:", "oxiborg check --verify-data\noxiborg export-tar ::host-2025-01-15T03:00:00 home.tar.gz home"),
];

/// Examples per command, for its own `--help` and man page.
fn command_examples(name: &str) -> &'static [(&'static str, &'static str)] {
    match name {
        "list" => &[
            ("The archives, newest last; the newest as JSON:", "oxiborg list REPO\noxiborg list --json --last 1 REPO"),
            ("The contents of an archive under a path:", "oxiborg list REPO::ARCHIVE home/me/.config"),
        ],
        "info" => &[("Sizes of the newest archive:", "oxiborg info --latest REPO")],
        "extract" => &[
            ("One file from the newest archive into the current directory:", "oxiborg extract --latest REPO home/me/.bashrc"),
            ("Restore /home, showing progress; resume after an interruption:", "cd / && oxiborg extract --progress REPO::ARCHIVE home\ncd / && oxiborg extract --continue REPO::ARCHIVE home"),
            ("A file's content to stdout:", "oxiborg extract --stdout REPO::ARCHIVE etc/hostname"),
        ],
        "check" => &[("Every object fetched and verified:", "oxiborg check --verify-data REPO")],
        "export-tar" => &[("/home as a gzipped tar:", "oxiborg export-tar REPO::ARCHIVE home.tar.gz home")],
        "completion" => &[("Install the bash completion:", "oxiborg completion bash > /etc/bash_completion.d/oxiborg")],
        "man" => &[("Install the man pages:", "oxiborg man --dir /usr/local/share/man/man1")],
        _ => &[],
    }
}

fn text_section(out: &mut String, title: &str, rows: &[(&str, &str)], width: usize) {
    out.push_str(title);
    out.push_str(":\n");
    for (k, v) in rows {
        out.push_str(&format!("  {k:<width$}  {v}\n"));
    }
}

fn text_examples(out: &mut String, rows: &[(&str, &str)]) {
    out.push_str("EXAMPLES:\n");
    for (what, cmds) in rows {
        out.push_str(&format!("  {what}\n"));
        for line in cmds.lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
}

/// The top-level `--help` epilogue: ENVIRONMENT, EXIT STATUS, EXAMPLES.
fn top_help() -> String {
    let mut s = String::new();
    text_section(&mut s, "ENVIRONMENT", ENVIRONMENT, 26);
    s.push('\n');
    text_section(&mut s, "EXIT STATUS", EXIT_STATUS, 8);
    s.push('\n');
    text_examples(&mut s, EXAMPLES);
    s
}

/// A command's `--help` epilogue: its EXAMPLES, and where the rest is.
fn command_help(name: &str) -> String {
    let mut s = String::new();
    let ex = command_examples(name);
    if !ex.is_empty() {
        text_examples(&mut s, ex);
        s.push('\n');
    }
    s.push_str("ENVIRONMENT and EXIT STATUS: see `oxiborg --help` (borg's variables and codes).\n");
    s
}

/// The CLI's clap command with the documentation sections added.
pub(super) fn command(cmd: Command) -> Command {
    cmd.after_help(top_help()).mut_subcommands(|sub| {
        let name = sub.get_name().to_string();
        if name == "help" {
            sub
        } else {
            sub.after_help(command_help(&name))
        }
    })
}

fn roff_rows(roff: &mut Roff, rows: &[(&str, &str)]) {
    for (k, v) in rows {
        roff.control("TP", []);
        roff.text([bold(*k)]);
        roff.text([roman(*v)]);
    }
}

fn roff_examples(roff: &mut Roff, rows: &[(&str, &str)]) {
    roff.control("SH", ["EXAMPLES"]);
    for (what, cmds) in rows {
        roff.control("PP", []);
        roff.text([roman(*what)]);
        roff.control("IP", []);
        roff.control("nf", []);
        for line in cmds.lines() {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
    }
}

/// The man page of `cmd` (built): clap_mangen's sections, then EXIT STATUS, ENVIRONMENT,
/// EXAMPLES and SEE ALSO (naming only pages that are written).
fn page(cmd: &Command, top: Option<&Command>) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    let mut roff = Roff::default();
    let subs: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    if !subs.is_empty() {
        roff.control("SH", ["COMMANDS"]);
        for s in &subs {
            roff.control("TP", []);
            roff.text([bold(format!("oxiborg-{}(1)", s.get_name()))]);
            roff.text([roman(
                s.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )]);
        }
    }
    match top {
        None => {
            roff.control("SH", ["EXIT STATUS"]);
            roff_rows(&mut roff, EXIT_STATUS);
            roff.control("SH", ["ENVIRONMENT"]);
            roff_rows(&mut roff, ENVIRONMENT);
            roff_examples(&mut roff, EXAMPLES);
            roff.control("SH", ["SEE ALSO"]);
            let pages: Vec<String> = subs
                .iter()
                .map(|s| format!("oxiborg-{}(1)", s.get_name()))
                .chain(["borg(1)".to_string()])
                .collect();
            roff.text([roman(pages.join(", "))]);
        }
        Some(_) => {
            roff.control("SH", ["EXIT STATUS"]);
            roff.text([roman(
                "0 success, 1 warning, 2 error (borg's legacy codes); BORG_EXIT_CODES=modern \
                 gives borg 1.4's codes, and an interrupted command exits 129, 130 or 143 \
                 (SIGHUP, SIGINT, SIGTERM): see oxiborg(1).",
            )]);
            let ex = command_examples(cmd.get_name());
            if !ex.is_empty() {
                roff_examples(&mut roff, ex);
            }
            roff.control("SH", ["SEE ALSO"]);
            roff.text([roman(
                "oxiborg(1) (ENVIRONMENT, EXIT STATUS, EXAMPLES), borg(1)",
            )]);
        }
    }
    roff.to_writer(&mut out)?;
    Ok(out)
}

/// Every man page: `(file name, roff)`, `oxiborg.1` first, then `oxiborg-COMMAND.1`.
pub(super) fn man_pages(cmd: Command) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd;
    cmd.build();
    let mut pages = vec![("oxiborg.1".to_string(), page(&cmd, None)?)];
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        pages.push((
            format!("oxiborg-{}.1", sub.get_name()),
            page(sub, Some(&cmd))?,
        ));
    }
    Ok(pages)
}

/// `completion SHELL`: the shell completion script.
pub(crate) fn completion(args: CompletionArgs) -> Result<i32> {
    let mut cmd = command(Cli::command());
    // Into memory first: the generator panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "oxiborg", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))?;
    Ok(0)
}

/// `man [--dir DIR]`: the man pages.
pub(crate) fn man(args: ManArgs) -> Result<i32> {
    let pages = man_pages(command(Cli::command())).map_err(|e| Error::io("<man page>", e))?;
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            for (name, page) in pages {
                let path = dir.join(name);
                std::fs::write(&path, page).map_err(|e| Error::io(&path, e))?;
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&pages[0].1)
                .and_then(|_| out.flush())
                .map_err(|e| Error::io("<stdout>", e))?;
        }
    }
    Ok(0)
}
