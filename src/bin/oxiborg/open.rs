//! Opening the repository a command names: options from the environment, the flags and a
//! borgmatic configuration; the store's warnings.

use crate::args::GlobalArgs;
use oxiborg::error::{Error, Result};
use oxiborg::repository::{OpenOptions, Repository};

/// `--borgmatic-config`: the chosen repository and its settings become the `BORG_*` variables
/// borg would have had from borgmatic (before anything reads them; the process is still
/// single-threaded here) — but the passphrase and `ssh_command` go into the options with their
/// origin (see `open_options`), so that messages name the configuration, not the environment.
pub(crate) fn use_borgmatic(g: &mut GlobalArgs) -> Result<()> {
    if g.borgmatic_config.is_none() && !g.borgmatic {
        if g.repository.is_some() {
            return Err(Error::InvalidInput(
                "--repository chooses a repository of a borgmatic configuration: use it with --borgmatic-config FILE or --borgmatic"
                    .into(),
            ));
        }
        return Ok(());
    }
    let configs = oxiborg::borgmatic::load_all(g.borgmatic_config.as_deref())?;
    let (config, repo) = oxiborg::borgmatic::select(&configs, g.repository.as_deref())?;
    crate::logger::debug(
        "borg.borgmatic",
        &format!(
            "using repository {} of {}",
            repo.path,
            config.file.display()
        ),
    );
    for (k, v) in config.environment(repo) {
        if !matches!(k, "BORG_PASSPHRASE" | "BORG_PASSCOMMAND") {
            std::env::set_var(k, v);
        }
    }
    if config.passphrase().is_some() {
        std::env::remove_var("BORG_PASSPHRASE");
        std::env::remove_var("BORG_PASSCOMMAND");
    }
    g.borgmatic_in_use = Some(config.clone());
    Ok(())
}

pub(crate) fn open_options(g: &GlobalArgs) -> OpenOptions {
    use oxiborg::Origin;
    let mut o = OpenOptions::from_env();
    if let Some(config) = &g.borgmatic_in_use {
        config.apply(&mut o);
    }
    o.bypass_lock = g.bypass_lock;
    o.lock_wait = std::time::Duration::from_secs_f64(g.lock_wait.max(0.0));
    if let Some(r) = &g.rsh {
        o.remote.rsh = Some(r.clone());
        o.remote.rsh_origin = Origin::Flag("--rsh");
    }
    if let Some(f) = &g.ssh_identity {
        o.remote.identity = Some(f.clone());
        o.remote.identity_origin = Origin::Flag("--ssh-identity");
    }
    o.remote.host_key_prompt = Some(oxiborg::HostKeyPrompt::terminal());
    o.prompt = Some(std::sync::Arc::new(oxiborg::terminal_prompt));
    if let Some(r) = &g.remote_path {
        o.remote.remote_path = Some(r.clone());
    }
    if let Some(n) = g.connections {
        o.remote.connections = n;
    }
    o
}

pub(crate) fn warn_store(repo: &Repository) {
    for w in repo.warnings() {
        crate::logger::warning("borg.repository", &format!("Warning: {w}"));
    }
}
