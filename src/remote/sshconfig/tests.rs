//! The configuration reader against OpenSSH's rules.

use super::matcher::{glob_match, wild_steps};
use super::parser::{split_args, split_keyword};
use super::*;
use sha1::Digest;
use std::os::unix::fs::PermissionsExt;

fn query(host: &str, home: &Path) -> Query {
    Query {
        host: host.into(),
        user: None,
        port: None,
        command: "borg serve --umask=077".into(),
        local_user: "me".into(),
        uid: 1000,
        home: home.into(),
        local_host: "box.example.org".into(),
    }
}

fn get(text: &str, host: &str) -> HostConfig {
    resolve_text(
        text,
        Path::new("config"),
        &query(host, Path::new("/home/me")),
    )
    .unwrap()
}

fn ids(c: &HostConfig) -> Vec<String> {
    c.identity_files
        .iter()
        .map(|f| f.path.to_string_lossy().into_owned())
        .collect()
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn first_value_wins_and_globs() {
    let text = "Host voile*\n  HostName voile.example\n  Port 22222\n  IdentityFile ~/.ssh/borg\n  StrictHostKeyChecking accept-new\nHost *\n  User me2\n  Port 22\n  IdentityFile ~/.ssh/id_ed25519\n  StrictHostKeyChecking=yes\n  BatchMode yes\n";
    let c = get(text, "voile");
    assert_eq!(c.hostname, "voile.example");
    assert_eq!(c.port, 22222);
    assert_eq!(c.user, "me2");
    assert_eq!(ids(&c), ["/home/me/.ssh/borg", "/home/me/.ssh/id_ed25519"]);
    assert_eq!(
        c.strict_host_key_checking,
        Some(StrictHostKeyChecking::AcceptNew)
    );
    let c = get(text, "other");
    assert_eq!((c.hostname.as_str(), c.port), ("other", 22));
    assert_eq!(
        (c.strict_host_key_checking, c.batch_mode),
        (Some(StrictHostKeyChecking::Yes), Some(true))
    );
    // nothing set: the host as given, port 22, the local user
    let c = get("", "plain");
    assert_eq!(
        (c.hostname.as_str(), c.port, c.user.as_str()),
        ("plain", 22, "me")
    );
}

#[test]
fn the_location_wins_over_the_config() {
    let mut q = query("h", Path::new("/home/me"));
    q.user = Some("loc".into());
    q.port = Some(2200);
    let c = resolve_text(
        "Host h\n User cfg\n Port 1\n IdentityFile /k/%r-%p\nMatch user loc\n HostName matched\n",
        Path::new("config"),
        &q,
    )
    .unwrap();
    assert_eq!((c.user.as_str(), c.port), ("loc", 2200));
    assert_eq!(ids(&c), ["/k/loc-2200"]);
    assert_eq!(c.hostname, "matched");
}

#[test]
fn host_patterns_negation_and_lists() {
    let text = "Host *.example.org !bad.example.org other\n  Port 1\nHost *\n  Port 2\n";
    assert_eq!(get(text, "good.example.org").port, 1);
    assert_eq!(get(text, "bad.example.org").port, 2);
    assert_eq!(get(text, "other").port, 1);
    // only negated patterns never match
    assert_eq!(get("Host !x\n Port 3\n", "y").port, 22);
    // `?` is one character; Host patterns are case-sensitive, as in OpenSSH
    assert_eq!(get("Host h?st\n Port 4\n", "host").port, 4);
    assert_eq!(get("Host h?st\n Port 4\n", "hoost").port, 22);
    assert_eq!(get("Host HOST\n Port 4\n", "host").port, 22);
    // a comma is not a separator on a Host line (ssh matches the host against "a,b")
    assert_eq!(get("Host a,b\n Port 5\n", "a").port, 22);
    // quoted patterns, `=` and comments
    assert_eq!(get("Host=\"x y\" z # c\n Port 6\n", "z").port, 6);
    assert_eq!(get("Host=\"x y\" z # c\n Port 6\n", "y").port, 22);
}

#[test]
fn match_criteria() {
    let text = "Match host real.example.org\n  Port 1\n\
                Host alias\n  HostName real.example.org\n\
                Match host real.example.org\n  User r\n\
                Match originalhost ALIAS,other !localuser root\n  IdentityFile /k/orig\n\
                Match user r localuser me\n  IdentityFile /k/user\n\
                Match !host *.org\n  IdentityFile /k/not-org\n\
                Match host=*.org user=x\n  IdentityFile /k/x\n\
                Match sessiontype exec tagged \"\" command \"borg serve*\"\n  IdentityFile /k/exec\n\
                Match all\n  Port 2\n";
    let c = get(text, "alias");
    // the first Match host saw "alias" (no HostName yet); the second the HostName
    assert_eq!((c.port, c.user.as_str()), (2, "r"));
    assert_eq!(ids(&c), ["/k/orig", "/k/user", "/k/exec"]);
    let c = get(text, "other");
    assert_eq!(ids(&c), ["/k/orig", "/k/not-org", "/k/exec"]);
    assert_eq!(c.user, "me");
    // Match host is case-insensitive; a negated pattern decides
    assert_eq!(get("Match host REAL\n Port 7\n", "real").port, 7);
    assert_eq!(get("Match host *,!real\n Port 7\n", "real").port, 22);
    // Tag
    assert_eq!(get("Tag t1\nMatch tagged t?\n Port 8\n", "h").port, 8);
    assert_eq!(get("Match tagged t1\n Port 8\n", "h").port, 22);
    // `!all` never matches
    assert_eq!(get("Match !all\n Port 9\n", "h").port, 22);
}

#[test]
fn match_exec_and_friends_do_not_match_and_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let text = format!(
        "Match exec \"touch {m}\"\n  Port 1\nMatch host h !exec \"touch {m}\"\n  Port 2\n\
         Match localnetwork 10.0.0.0/8\n  Port 3\nMatch version OpenSSH_*\n  Port 4\n\
         Match host h\n  Port 5\n",
        m = marker.display()
    );
    assert_eq!(get(&text, "h").port, 5);
    assert!(!marker.exists(), "a Match exec command was run");
}

#[test]
fn match_final_makes_a_second_pass() {
    // in the final pass Host and Match host see the HostName
    let text = "Host a\n  HostName Real.Example\nMatch final host real.example\n  Port 3\n\
                Host real.example\n  User fin\nMatch canonical\n  IdentityFile /k/c\n\
                Match !final\n  IdentityFile /k/first\n";
    let c = get(text, "a");
    assert_eq!((c.port, c.user.as_str()), (3, "fin"));
    assert_eq!(ids(&c), ["/k/first", "/k/c"]);
    // without a positive `final`, no second pass: `canonical` never matches
    let c = get("Match canonical\n Port 4\n", "a");
    assert_eq!(c.port, 22);
}

#[test]
fn bad_match_lines_are_errors_naming_the_line() {
    for (text, needle) in [
        ("\n\nMatch\n", "line 3: no argument"),
        ("Match host\n", "line 1: missing argument for Match 'host'"),
        ("Match all host x\n", "cannot be combined"),
        (
            "Match frobnicate x\n",
            "unsupported Match attribute frobnicate",
        ),
        ("Port 0\n", "bad port '0'"),
        ("Port http\n", "bad port"),
        ("BatchMode maybe\n", "BatchMode value 'maybe'"),
        (
            "StrictHostKeyChecking perhaps\n",
            "StrictHostKeyChecking value",
        ),
        ("HostName \"unterminated\n", "invalid quotes"),
        ("UserKnownHostsFile none /x\n", "must appear alone"),
    ] {
        let e = resolve_text(text, Path::new("cfg"), &query("h", Path::new("/h")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ssh config cfg") && e.contains(needle),
            "{text:?}: {e}"
        );
    }
}

#[test]
fn tokens_are_expanded_once_the_settings_are_known() {
    let text = "Host alias\n  HostName %h.Example.ORG\n  IdentityFile ~/.ssh/%h_%p_%r\n\
                IdentityFile %d/k/%u-%l-%L-%n-%i-%%-%k\n  IdentityFile ${OXIBORG_TEST_SSHCFG_VAR}/k\n\
                UserKnownHostsFile ~/.ssh/kh_%h %d/kh2\n  Port 2022\n  User bob\n";
    std::env::set_var("OXIBORG_TEST_SSHCFG_VAR", "/from/env");
    let c = get(text, "alias");
    assert_eq!(c.hostname, "alias.Example.ORG");
    assert_eq!(
        ids(&c),
        [
            "/home/me/.ssh/alias.example.org_2022_bob",
            "/home/me/k/me-box.example.org-box-alias-1000-%-alias",
            "/from/env/k",
        ]
    );
    assert_eq!(
        c.known_hosts,
        Some(vec![
            PathBuf::from("/home/me/.ssh/kh_alias.example.org"),
            PathBuf::from("/home/me/kh2")
        ])
    );
    // %C: sha1 of %l%h%p%r%j, as ssh computes it
    let c = get("IdentityFile /k/%C\n", "h");
    let mut h = sha1::Sha1::new();
    h.update(b"box.example.orgh22me");
    assert_eq!(ids(&c), [format!("/k/{}", hex::encode(h.finalize()))]);
    // ~user
    let c = get("IdentityFile ~root/k\n", "h");
    let root = crate::users::user_by_uid(0).unwrap().unwrap().home;
    assert_eq!(ids(&c), [root.join("k").to_string_lossy().into_owned()]);
    // HostName takes only %h; errors name the line
    for (text, needle) in [
        ("HostName %p\n", "line 1: unknown token %p"),
        ("IdentityFile /k/%z\n", "unknown token %z"),
        ("IdentityFile /k/%\n", "lone %"),
        (
            "\nIdentityFile ${OXIBORG_TEST_SSHCFG_UNSET_VAR}\n",
            "line 2: environment variable ${OXIBORG_TEST_SSHCFG_UNSET_VAR}",
        ),
        (
            "IdentityFile ~oxiborg-no-such-user-9f3a/k\n",
            "no such user",
        ),
    ] {
        let e = resolve_text(text, Path::new("cfg"), &query("h", Path::new("/h")))
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
    assert_eq!(
        get("UserKnownHostsFile none\n", "h").known_hosts,
        Some(vec![PathBuf::from("/dev/null")])
    );
}

#[test]
fn include_relative_globbed_conditional_and_nested() {
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    write(
        &ssh.join("config"),
        "Include conf.d/*.conf\n\
         Host cond\n  Include cond.conf\n  User after-include\n\
         Host *\n  Port 9\n  User default\n",
    );
    // sorted: 10 before 20; a Host block in one file does not leak into the next
    write(
        &ssh.join("conf.d/10-a.conf"),
        "Host a\n  HostName a.example\nMatch host a.example\n  Port 1\n",
    );
    write(&ssh.join("conf.d/20-b.conf"), "Port 2\nHost b\n  Port 3\n");
    write(&ssh.join("conf.d/.hidden.conf"), "Port 77\n");
    write(&ssh.join("conf.d/not-matching.txt"), "Port 78\n");
    write(
        &ssh.join("cond.conf"),
        "IdentityFile /k/cond\nHost *\n  IdentityFile /k/cond-any\n",
    );
    let files = ConfigFiles {
        user: Some(ssh.join("config")),
        explicit: false,
        system: None,
    };
    let r = |host: &str| resolve(&files, &query(host, home.path())).unwrap();
    assert_eq!((r("a").hostname.as_str(), r("a").port), ("a.example", 1));
    assert_eq!(r("b").port, 2);
    let c = r("cond");
    assert_eq!(ids(&c), ["/k/cond", "/k/cond-any"]);
    // the includer's block is active again after the include
    assert_eq!(c.user, "after-include");
    // inside an inactive block the included file does not apply, even its Host *
    let c = r("x");
    assert!(ids(&c).is_empty(), "{c:?}");
    assert_eq!((c.port, c.user.as_str()), (2, "default"));

    // nesting: 16 deep is read, a 17th is an error; a file including itself too
    let deep = home.path().join("deep");
    for i in 0..=17 {
        write(
            &deep.join(format!("{i}")),
            &format!("Include {}/{}\n", deep.display(), i + 1),
        );
    }
    write(&deep.join("16"), "Port 16\n");
    let one = |f: &Path| {
        resolve(
            &ConfigFiles {
                user: Some(f.to_path_buf()),
                explicit: true,
                system: None,
            },
            &query("h", home.path()),
        )
    };
    assert_eq!(one(&deep.join("0")).unwrap().port, 16);
    write(
        &deep.join("16"),
        &format!("Include {}/17\n", deep.display()),
    );
    write(&deep.join("17"), "Port 17\n");
    let e = one(&deep.join("0")).unwrap_err().to_string();
    assert!(e.contains("too many nested Includes"), "{e}");
    let selfish = home.path().join("self");
    write(&selfish, &format!("Include {}\n", selfish.display()));
    assert!(one(&selfish)
        .unwrap_err()
        .to_string()
        .contains("too many nested"));

    // an explicit file (-F) must exist; ~/.ssh/config need not
    assert!(one(&home.path().join("missing"))
        .unwrap_err()
        .to_string()
        .contains("no such file"));
    let none = ConfigFiles::openssh(home.path(), Some(Path::new("none")));
    assert_eq!(resolve(&none, &query("h", home.path())).unwrap().port, 22);
}

#[test]
fn included_files_writable_by_others_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    write(&ssh.join("config"), "Include extra\n");
    write(&ssh.join("extra"), "Port 5\n");
    let files = ConfigFiles::openssh(home.path(), None);
    let files = ConfigFiles {
        system: None,
        ..files
    };
    assert_eq!(resolve(&files, &query("h", home.path())).unwrap().port, 5);
    std::fs::set_permissions(ssh.join("extra"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = resolve(&files, &query("h", home.path()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad owner or permissions") && e.contains("extra"),
        "{e}"
    );
}

#[test]
fn wildcards_take_polynomial_time() {
    // The recursive matcher took exponential time here (it tries every way of splitting
    // the a's among the stars: C(60, 9) ≈ 1.5e10 ways before failing on the missing b).
    let pat: Vec<char> = "*a*a*a*a*a*a*a*a*a*b".chars().collect();
    let s: Vec<char> = "a".repeat(60).chars().collect();
    let (m, steps) = wild_steps(&pat, &s, true, false);
    assert!(!m);
    assert!(
        steps <= (pat.len() + 1) * (s.len() + 1),
        "{steps} steps for a {}-character pattern and a {}-character string",
        pat.len(),
        s.len()
    );
    assert!(!glob_match(
        b"*a*a*a*a*a*a*a*a*a*b",
        "a".repeat(60).as_bytes()
    ));
    // and still right
    for (p, s, want) in [
        ("*", "", true),
        ("", "", true),
        ("", "a", false),
        ("a*", "a", true),
        ("*a", "ba", true),
        ("*a", "ab", false),
        ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false),
        ("?", "", false),
        ("??", "ab", true),
        ("*.example.org", "x.EXAMPLE.org", true),
        (
            "*a*a*a*a*a*a*a*a*a*b",
            &format!("{}b", "a".repeat(60)),
            true,
        ),
    ] {
        assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), want, "{p:?} {s:?}");
    }
    let cls = |p: &str, s: &str| {
        let p: Vec<char> = p.chars().collect();
        let s: Vec<char> = s.chars().collect();
        wild_steps(&p, &s, false, true).0
    };
    assert!(cls("[0-9]*.conf", "10-a.conf"));
    assert!(!cls("[!0-9]*.conf", "10-a.conf"));
    assert!(cls("[]x]", "]"));
    assert!(cls("a\\*", "a*") && !cls("a\\*", "ab"));
    assert!(cls("[ab", "[ab"));
}

#[test]
fn arguments_split_as_openssh_does() {
    assert_eq!(
        split_args(r#"a "b c" 'd e' f\ g h\"i # comment"#).unwrap(),
        ["a", "b c", "d e", "f g", "h\"i"]
    );
    assert_eq!(split_keyword("  Port=22"), Some(("Port", "22")));
    assert_eq!(split_keyword("Port = 22"), Some(("Port", "22")));
    assert_eq!(split_keyword("# Port 22"), None);
    assert!(split_args("\"open").is_err());
}
