//! Where a setting came from, so that a message about it can say where to change it.
//!
//! A key file named by `BORG_RSH` is fixed by exporting another `BORG_RSH`; the same key named by
//! a borgmatic configuration's `ssh_command` is not (the configuration wins over the
//! environment), so the messages need to know which it was.

use std::path::PathBuf;

/// The source of a setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    /// Set by the program using the library (no file or variable to name).
    #[default]
    Caller,
    /// An environment variable, e.g. `BORG_RSH`.
    Env(&'static str),
    /// A command-line option, e.g. `--rsh`.
    Flag(&'static str),
    /// A setting of a borgmatic configuration file, e.g. `ssh_command`.
    Borgmatic {
        /// The configuration file.
        file: PathBuf,
        /// The setting's name.
        key: &'static str,
    },
    /// A setting of an OpenSSH configuration file (`IdentityFile` in `~/.ssh/config`).
    SshConfig {
        /// The configuration file.
        file: PathBuf,
        /// The setting's name.
        key: &'static str,
    },
    /// An option inside another setting: the `-i` of `BORG_RSH`.
    Within(&'static str, Box<Origin>),
}

impl Origin {
    /// The outermost setting (for `Within`, the one that holds the option).
    pub fn root(&self) -> &Origin {
        match self {
            Origin::Within(_, o) => o.root(),
            o => o,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Caller => f.write_str("the options given"),
            Origin::Env(v) | Origin::Flag(v) => f.write_str(v),
            Origin::Borgmatic { file, key } | Origin::SshConfig { file, key } => {
                write!(f, "{key} in {}", file.display())
            }
            Origin::Within(opt, o) => write!(f, "the {opt} of {o}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_as_a_user_names_it() {
        let cfg = Origin::Borgmatic {
            file: "/etc/borgmatic/config.yaml".into(),
            key: "ssh_command",
        };
        let i = Origin::Within("-i", Box::new(cfg.clone()));
        assert_eq!(
            i.to_string(),
            "the -i of ssh_command in /etc/borgmatic/config.yaml"
        );
        assert_eq!(i.root(), &cfg);
        assert_eq!(Origin::Env("BORG_RSH").to_string(), "BORG_RSH");
    }
}
