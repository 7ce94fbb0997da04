//! borgmatic configuration files: the repository and credentials a borgmatic setup already has.
//!
//! `oxiborg --borgmatic-config FILE list` reads a borgmatic YAML file — the 1.7 layout with its
//! `location:` and `storage:` sections, or the flat layout of 1.8 and later — and uses its
//! repository (chosen by path or label when there are several), `encryption_passphrase` or
//! `encryption_passcommand`, `ssh_command`, `remote_path`, `borg_base_directory`,
//! `borg_keys_directory`, `borg_key_file` and `borg_security_directory`, the way borgmatic
//! hands them to borg (as `BORG_*` variables). `constants:` (`{name}`) and environment
//! variables (`${VAR}`, `${VAR:-default}`) in values are expanded as borgmatic does.
//! With `--borgmatic` instead, borgmatic's own default places are searched:
//! `/etc/borgmatic/config.yaml`, `/etc/borgmatic.d/*.yaml`, `~/.config/borgmatic/config.yaml`
//! and `~/.config/borgmatic.d/*.yaml`.
//!
//! ```no_run
//! let configs = oxiborg::borgmatic::load_all(None)?;
//! let (config, repo) = oxiborg::borgmatic::select(&configs, Some("voile"))?;
//! println!("{} from {}", repo.path, config.file.display());
//! # Ok::<(), oxiborg::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::key::passphrase::{ConfiguredPassphrase, PassphraseSetting};
use crate::origin::Origin;
use crate::repository::OpenOptions;
use std::path::{Path, PathBuf};
use yaml_rust2::{Yaml, YamlLoader};

/// One repository of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BorgmaticRepository {
    /// Its location, as borg takes it.
    pub path: String,
    /// Its label (borgmatic 1.7.10+), if any.
    pub label: Option<String>,
}

/// What oxiborg takes from one borgmatic configuration file.
#[derive(Debug, Clone, Default)]
pub struct BorgmaticConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// `repositories`.
    pub repositories: Vec<BorgmaticRepository>,
    /// `encryption_passphrase`.
    pub encryption_passphrase: Option<String>,
    /// `encryption_passcommand`.
    pub encryption_passcommand: Option<String>,
    /// `ssh_command` (borg's `BORG_RSH`).
    pub ssh_command: Option<String>,
    /// `remote_path`.
    pub remote_path: Option<String>,
    /// `borg_base_directory`.
    pub borg_base_directory: Option<String>,
    /// `borg_keys_directory`.
    pub borg_keys_directory: Option<String>,
    /// `borg_key_file`.
    pub borg_key_file: Option<String>,
    /// `borg_security_directory`.
    pub borg_security_directory: Option<String>,
}

fn invalid(file: &Path, why: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("borgmatic configuration {}: {why}", file.display()))
}

/// `${VAR}` and `${VAR:-default}` from the environment; `\${` stays literal.
fn expand_env(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('\\') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match std::env::var(name) {
            Ok(v) => out.push_str(&v),
            Err(_) => out.push_str(default.unwrap_or(&rest[i..i + 3 + end])),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A string value with constants and environment variables expanded.
fn text(v: &Yaml, constants: &[(String, String)]) -> Option<String> {
    let s = match v {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        _ => return None,
    };
    let mut s = expand_env(&s);
    for (k, val) in constants {
        s = s.replace(&format!("{{{k}}}"), val);
    }
    Some(s)
}

impl BorgmaticConfig {
    /// Parses the text of a configuration file (`file` names it in errors).
    ///
    /// # Errors
    ///
    /// Text that is not YAML, or a setting of the wrong type (naming the file and the key).
    pub fn parse(yaml: &str, file: &Path) -> Result<BorgmaticConfig> {
        let docs = YamlLoader::load_from_str(yaml).map_err(|e| invalid(file, e))?;
        let root = docs.into_iter().next().unwrap_or(Yaml::Null);
        if !matches!(root, Yaml::Hash(_)) {
            return Err(invalid(file, "not a YAML mapping"));
        }
        let constants: Vec<(String, String)> = root["constants"]
            .as_hash()
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), text(v, &[])?)))
                    .collect()
            })
            .unwrap_or_default();
        // 1.8+: flat; 1.7: in the location / storage sections.
        let get = |key: &str| -> Option<&Yaml> {
            [&root[key], &root["location"][key], &root["storage"][key]]
                .into_iter()
                .find(|v| !matches!(v, Yaml::BadValue | Yaml::Null))
        };
        let s = |key: &str| get(key).and_then(|v| text(v, &constants));
        let mut repositories = Vec::new();
        if let Some(list) = get("repositories") {
            let Some(list) = list.as_vec() else {
                return Err(invalid(file, "repositories is not a list"));
            };
            for r in list {
                let repo = match r {
                    Yaml::Hash(_) => BorgmaticRepository {
                        path: text(&r["path"], &constants)
                            .ok_or_else(|| invalid(file, "a repository without a path"))?,
                        label: text(&r["label"], &constants),
                    },
                    other => BorgmaticRepository {
                        path: text(other, &constants)
                            .ok_or_else(|| invalid(file, "a repository that is not a path"))?,
                        label: None,
                    },
                };
                repositories.push(repo);
            }
        }
        Ok(BorgmaticConfig {
            file: file.to_path_buf(),
            repositories,
            encryption_passphrase: s("encryption_passphrase"),
            encryption_passcommand: s("encryption_passcommand"),
            ssh_command: s("ssh_command"),
            remote_path: s("remote_path"),
            borg_base_directory: s("borg_base_directory"),
            borg_keys_directory: s("borg_keys_directory"),
            borg_key_file: s("borg_key_file"),
            borg_security_directory: s("borg_security_directory"),
        })
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, or as [`BorgmaticConfig::parse`].
    pub fn load(file: &Path) -> Result<BorgmaticConfig> {
        let yaml = std::fs::read_to_string(file).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => invalid(
                file,
                "permission denied (borgmatic configurations are usually root's: run as root, \
                 e.g. with sudo)",
            ),
            _ => Error::io(file, e),
        })?;
        Self::parse(&yaml, file)
    }

    /// Where the setting `key` of this file is (for messages about it).
    pub fn origin(&self, key: &'static str) -> Origin {
        Origin::Borgmatic {
            file: self.file.clone(),
            key,
        }
    }

    /// The passphrase setting (`encryption_passphrase` wins over `encryption_passcommand`, as
    /// in borgmatic), with where it is set.
    pub fn passphrase(&self) -> Option<ConfiguredPassphrase> {
        if let Some(p) = &self.encryption_passphrase {
            return Some(ConfiguredPassphrase {
                setting: PassphraseSetting::Value(zeroize::Zeroizing::new(p.clone())),
                origin: self.origin("encryption_passphrase"),
            });
        }
        self.encryption_passcommand
            .as_ref()
            .map(|c| ConfiguredPassphrase {
                setting: PassphraseSetting::Command(c.clone()),
                origin: self.origin("encryption_passcommand"),
            })
    }

    /// Sets in `opts` what this configuration gives that messages need the origin of: the
    /// passphrase setting and `ssh_command` (as the `rsh` command). The rest reaches borg's code
    /// as the variables of [`BorgmaticConfig::environment`].
    pub fn apply(&self, opts: &mut OpenOptions) {
        if let Some(p) = self.passphrase() {
            opts.configured_passphrase = Some(p);
        }
        if let Some(c) = &self.ssh_command {
            opts.remote.rsh = Some(c.clone());
            opts.remote.rsh_origin = self.origin("ssh_command");
        }
    }

    /// The `BORG_*` variables borgmatic would give borg for `repo` (`None`: leave unset).
    pub fn environment(&self, repo: &BorgmaticRepository) -> Vec<(&'static str, String)> {
        let mut env = vec![("BORG_REPO", repo.path.clone())];
        let mut add = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                env.push((k, v.clone()));
            }
        };
        add("BORG_PASSPHRASE", &self.encryption_passphrase);
        if self.encryption_passphrase.is_none() {
            add("BORG_PASSCOMMAND", &self.encryption_passcommand);
        }
        add("BORG_RSH", &self.ssh_command);
        add("BORG_REMOTE_PATH", &self.remote_path);
        add("BORG_BASE_DIR", &self.borg_base_directory);
        add("BORG_KEYS_DIR", &self.borg_keys_directory);
        add("BORG_KEY_FILE", &self.borg_key_file);
        add("BORG_SECURITY_DIR", &self.borg_security_directory);
        env
    }
}

/// borgmatic's default configuration files, in its order (those that exist).
pub fn default_files() -> Vec<PathBuf> {
    let home = crate::key::blob::BorgDirs::home();
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    let mut out = Vec::new();
    for (file, dir) in [
        (
            PathBuf::from("/etc/borgmatic/config.yaml"),
            PathBuf::from("/etc/borgmatic.d"),
        ),
        (
            config.join("borgmatic/config.yaml"),
            config.join("borgmatic.d"),
        ),
    ] {
        if file.is_file() {
            out.push(file);
        }
        let mut in_dir: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                    .collect()
            })
            .unwrap_or_default();
        in_dir.sort();
        out.extend(in_dir);
    }
    out
}

/// The configuration `file`, or every default one (`None`).
///
/// # Errors
///
/// As [`BorgmaticConfig::load`] for any file; with `None`, no default file found.
pub fn load_all(file: Option<&Path>) -> Result<Vec<BorgmaticConfig>> {
    let files = match file {
        Some(f) => vec![f.to_path_buf()],
        None => default_files(),
    };
    if files.is_empty() {
        return Err(Error::InvalidInput(
            "No borgmatic configuration found (looked in /etc/borgmatic/config.yaml, /etc/borgmatic.d/, \
             ~/.config/borgmatic/config.yaml and ~/.config/borgmatic.d/); name one with --borgmatic-config FILE."
                .into(),
        ));
    }
    files.iter().map(|f| BorgmaticConfig::load(f)).collect()
}

/// The repository to use: the one `wanted` names (by path or label), or the only one.
///
/// # Errors
///
/// `wanted` names no configured repository, or there are several and none is named.
pub fn select<'a>(
    configs: &'a [BorgmaticConfig],
    wanted: Option<&str>,
) -> Result<(&'a BorgmaticConfig, &'a BorgmaticRepository)> {
    let all: Vec<(&BorgmaticConfig, &BorgmaticRepository)> = configs
        .iter()
        .flat_map(|c| c.repositories.iter().map(move |r| (c, r)))
        .collect();
    let describe = |v: &[(&BorgmaticConfig, &BorgmaticRepository)]| {
        v.iter()
            .map(|(c, r)| match &r.label {
                Some(l) => format!("{} (label {l}, in {})", r.path, c.file.display()),
                None => format!("{} (in {})", r.path, c.file.display()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let picked: Vec<_> = match wanted {
        Some(w) => all
            .iter()
            .copied()
            .filter(|(_, r)| r.path == w || r.label.as_deref() == Some(w))
            .collect(),
        None => all.clone(),
    };
    match (picked.len(), wanted) {
        (1, _) => Ok(picked[0]),
        (0, None) => Err(Error::InvalidInput(format!(
            "The borgmatic configuration ({}) lists no repository.",
            configs.iter().map(|c| c.file.display().to_string()).collect::<Vec<_>>().join(", ")
        ))),
        (0, Some(w)) => Err(Error::InvalidInput(format!(
            "No repository {w:?} in the borgmatic configuration; it has: {}",
            describe(&all)
        ))),
        _ => Err(Error::InvalidInput(format!(
            "The borgmatic configuration has several repositories: choose one with --repository PATH|LABEL: {}",
            describe(&picked)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_constants_and_environment() {
        std::env::set_var("OXIBORG_BM_TEST_HOST", "voile.example");
        let old = r#"
constants:
    id: 0a1b2c
location:
    source_directories: [/home]
    repositories:
        - ssh://borgwarehouse@${OXIBORG_BM_TEST_HOST}:22222/./{id}
storage:
    encryption_passcommand: cat /etc/borgmatic/pass
    ssh_command: ssh -i /etc/borgmatic/key
    lock_wait: 5
"#;
        let c = BorgmaticConfig::parse(old, Path::new("old.yaml")).unwrap();
        assert_eq!(
            c.repositories,
            vec![BorgmaticRepository {
                path: "ssh://borgwarehouse@voile.example:22222/./0a1b2c".into(),
                label: None
            }]
        );
        assert_eq!(
            c.encryption_passcommand.as_deref(),
            Some("cat /etc/borgmatic/pass")
        );
        assert_eq!(c.ssh_command.as_deref(), Some("ssh -i /etc/borgmatic/key"));
        let new = r#"
repositories:
    - path: /mnt/a
      label: local
    - path: ssh://h/./b
      label: "offsite"
encryption_passphrase: "s3cret"
borg_keys_directory: ${OXIBORG_BM_TEST_UNSET:-/etc/borgmatic/keys}
"#;
        let c = BorgmaticConfig::parse(new, Path::new("new.yaml")).unwrap();
        assert_eq!(c.repositories.len(), 2);
        assert_eq!(
            c.borg_keys_directory.as_deref(),
            Some("/etc/borgmatic/keys")
        );
        let cs = [c];
        assert_eq!(select(&cs, Some("offsite")).unwrap().1.path, "ssh://h/./b");
        assert_eq!(
            select(&cs, Some("/mnt/a")).unwrap().1.label.as_deref(),
            Some("local")
        );
        let e = select(&cs, None).unwrap_err().to_string();
        assert!(e.contains("several") && e.contains("offsite"), "{e}");
        assert!(select(&cs, Some("nope")).is_err());
        let env = cs[0].environment(&cs[0].repositories[0]);
        assert!(env.contains(&("BORG_PASSPHRASE", "s3cret".into())));
        let mut o = OpenOptions::default();
        cs[0].apply(&mut o);
        let p = o.configured_passphrase.expect("a passphrase");
        assert_eq!(p.origin.to_string(), "encryption_passphrase in new.yaml");
        assert!(o.remote.rsh.is_none());
        assert!(BorgmaticConfig::parse("- a list", Path::new("x")).is_err());
        assert!(BorgmaticConfig::parse("repositories: 3", Path::new("x")).is_err());
    }
}
