//! The documentation the CLI generates from its own definition: `--help` of every command,
//! shell completions (the bash script loads and registers, the others name every command) and
//! the man pages.

mod common;

use common::*;
use std::process::Command;

const COMMANDS: &[&str] = &["list", "info", "extract", "completion", "man"];

fn commands() -> Vec<String> {
    let out = TestEnv::new().oxiborg(["--help"]);
    out.assert_ok();
    let text = out.stdout_str();
    let mut found: Vec<String> = COMMANDS
        .iter()
        .filter(|c| text.lines().any(|l| l.trim_start().starts_with(*c)))
        .map(|c| c.to_string())
        .collect();
    // Commands added later show up in --help; every one listed there is checked below.
    let mut in_section = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            in_section = true;
            continue;
        }
        if in_section {
            if line.trim().is_empty() {
                break;
            }
            let name = line.split_whitespace().next().unwrap_or("").to_string();
            if name != "help" && !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn every_command_has_help() {
    let env = TestEnv::new();
    let cmds = commands();
    for c in COMMANDS {
        assert!(cmds.contains(&c.to_string()), "{c} missing from --help");
    }
    for c in &cmds {
        let out = env.oxiborg([c.as_str(), "--help"]);
        out.assert_ok();
        let text = out.stdout_str();
        assert!(
            text.contains("Usage: oxiborg") && text.contains(c.as_str()),
            "{c} --help:\n{text}"
        );
    }
    let extract = env.oxiborg(["extract", "--help"]).stdout_str();
    for opt in [
        "--strip-components",
        "--continue",
        "--progress",
        "--dry-run",
    ] {
        assert!(extract.contains(opt), "extract --help lacks {opt}");
    }
}

#[test]
fn completions_cover_every_command() {
    let env = TestEnv::new();
    let cmds = commands();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = env.oxiborg(["completion", shell]);
        out.assert_ok();
        let script = out.stdout_str();
        for c in &cmds {
            assert!(script.contains(c.as_str()), "{shell} completion lacks {c}");
        }
        assert!(
            script.contains("strip-components"),
            "{shell} completion lacks extract's options"
        );
    }
    // The bash script loads and registers a completion for oxiborg.
    let script = env.path().join("oxiborg.bash");
    std::fs::write(&script, env.oxiborg(["completion", "bash"]).stdout).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p oxiborg",
            quote(script.as_os_str())
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("oxiborg"),
        "bash could not load the completion: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown shell is a usage error, not a panic.
    let bad = env.oxiborg(["completion", "tcsh"]);
    bad.assert_no_panic();
    assert_eq!(bad.code, 2, "{}", bad.describe());
}

#[test]
fn man_pages_are_generated() {
    let env = TestEnv::new();
    let page = env.oxiborg(["man"]);
    page.assert_ok();
    let text = page.stdout_str();
    assert!(text.contains(".TH oxiborg 1"), "no roff title:\n{text}");
    for c in commands() {
        // roff escapes hyphens
        assert!(
            text.contains(&c) || text.contains(&c.replace('-', "\\-")),
            "man page lacks {c}"
        );
    }
    let dir = env.path().join("man1");
    env.oxiborg(["man".into(), "--dir".into(), dir.clone().into_os_string()])
        .assert_ok();
    for c in commands() {
        let p = dir.join(format!("oxiborg-{c}.1"));
        let body = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            body.contains(&format!(".TH oxiborg-{c} 1")),
            "{}",
            p.display()
        );
    }
    let extract = std::fs::read_to_string(dir.join("oxiborg-extract.1")).unwrap();
    assert!(extract.contains("strip\\-components"));
    // Rendered by man(1) where the machine has it.
    if Command::new("man").arg("--version").output().is_ok() {
        let out = Command::new("man")
            .arg("-l")
            .arg(dir.join("oxiborg-extract.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && shown.contains("oxiborg-extract"),
            "man -l failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The environment variables the source reads (`var("X")` / `var_os("X")`), borg's and ours.
fn variables_read() -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![manifest_dir().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            // (fuzz entry points and test modules kept in their own `tests.rs` read nothing at
            // run time)
            if p.extension().is_none_or(|x| x != "rs")
                || p.ends_with("fuzzing.rs")
                || p.ends_with("tests.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap_or("");
            for pat in ["var(\"", "var_os(\""] {
                for (i, _) in text.match_indices(pat) {
                    let rest = &text[i + pat.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    if rest[name.len()..].starts_with('"') && !found.contains(&name) {
                        found.push(name);
                    }
                }
            }
        }
    }
    assert!(found.len() > 20, "the scan found too little: {found:?}");
    found
}

#[test]
fn help_and_man_pages_have_environment_exit_status_and_examples() {
    let env = TestEnv::new();
    let help = env.oxiborg(["--help"]).stdout_str();
    let dir = env.path().join("man1");
    env.oxiborg(["man".into(), "--dir".into(), dir.clone().into_os_string()])
        .assert_ok();
    let man = std::fs::read_to_string(dir.join("oxiborg.1")).unwrap();
    for section in ["ENVIRONMENT", "EXIT STATUS", "EXAMPLES"] {
        assert!(
            help.contains(&format!("{section}:")),
            "--help lacks {section}"
        );
        assert!(
            man.contains(&format!(".SH \"{section}\"")) || man.contains(&format!(".SH {section}")),
            "oxiborg.1 lacks {section}"
        );
    }
    for var in variables_read() {
        assert!(help.contains(&var), "--help's ENVIRONMENT lacks {var}");
        assert!(man.contains(&var), "oxiborg.1 lacks {var}");
    }
    // every modern exit code the errors map to, and the legacy ones
    let exit_rs = exit_codes_source();
    let modern = exit_rs
        .split("fn modern_exit_code")
        .nth(1)
        .and_then(|s| s.split("\n}\n").next())
        .unwrap();
    for code in modern
        .split("=> ")
        .skip(1)
        .filter_map(|s| s.split(',').next())
        .filter_map(|c| c.trim().parse::<u32>().ok())
    {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "EXIT STATUS lacks the modern code {code}"
        );
    }
    for code in ["129", "130", "143"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "EXIT STATUS lacks the signal code {code}"
        );
    }
    // the runbook's steps
    for step in [
        "oxiborg list",
        "extract --latest",
        "--dry-run",
        "--continue",
        "--borgmatic",
    ] {
        assert!(help.contains(step), "EXAMPLES lack {step}");
    }
    // a command's help: its own options first, then the global ones; defaults said once
    let extract = env.oxiborg(["extract", "--help"]).stdout_str();
    let own = extract.find("--strip-components").unwrap();
    let global_heading = extract
        .find("Global options:")
        .expect("a Global options heading");
    assert!(own < global_heading && global_heading < extract.find("--bypass-lock").unwrap());
    assert!(extract.contains("EXAMPLES:"));
    let lock_wait = extract.lines().find(|l| l.contains("--lock-wait")).unwrap();
    assert_eq!(lock_wait.matches("default").count(), 1, "{lock_wait}");
    // SEE ALSO and COMMANDS name only pages that were written
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let body = std::fs::read_to_string(e.path()).unwrap();
        for rest in body.split("oxiborg\\-").skip(1) {
            let Some((name, after)) = rest.split_once('(') else {
                continue;
            };
            if after.starts_with("1)") {
                let name = format!("oxiborg-{}", name.replace("\\-", "-"));
                assert!(
                    dir.join(format!("{name}.1")).exists(),
                    "{} names {name}(1), which was not written",
                    e.path().display()
                );
            }
        }
        assert!(!body.contains("oxiborg\\-help"), "{}", e.path().display());
    }
    let extract_page = std::fs::read_to_string(dir.join("oxiborg-extract.1")).unwrap();
    assert!(extract_page.contains("EXAMPLES") && extract_page.contains("oxiborg(1)"));
}

/// The source of the CLI's exit-code mapping.
fn exit_codes_source() -> String {
    std::fs::read_to_string(manifest_dir().join("src/bin/oxiborg/exit.rs"))
        .expect("the CLI's exit.rs")
}
