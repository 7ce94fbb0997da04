//! Support for `tests/remote.rs`: a real OpenSSH server on 127.0.0.1 in front of real borg.
//!
//! * [`SshServer`]: `sshd -D -e -f CONFIG` on a free loopback port, its config, ed25519 and RSA
//!   host keys, `authorized_keys` and log in its own temporary directory (cipher / MAC lists as a
//!   hardened BorgWarehouse-like server has them). Every process of its sessions carries the
//!   variable `OXIBORG_TEST_SSHD=<that directory>` (sshd `SetEnv`); dropping the server
//!   SIGKILLs the listener, its descendants and every process carrying that marker, so nothing
//!   outlives the test.
//! * [`Remote`]: one server, a client `$HOME` (a [`TestEnv`]) with `.ssh/known_hosts` and
//!   `.ssh/config`, a repository pool, client keys: `forced` (ed25519, BorgWarehouse-style
//!   forced `borg serve --restrict-to-repository POOL/repo-rk`), `forced_rsa` (RSA, forced to
//!   `POOL/repo-kf`), `plain` (ed25519, no forced command) and `unknown` (not authorized).
//! * [`SlowLink`]: a TCP relay on 127.0.0.1 in front of the server that passes the server's bytes
//!   on at a fixed, slow rate (a trickle that never stops).
//! * [`run_limited`]: runs a command with a deadline (killed and reported when it passes).
//! * [`tree_diff`]: a recursive compare of two trees (type, content, mode, mtime in ns,
//!   symlink target).
//!
//! `sshd`, `ssh-keygen` and `ssh` are looked up at `OXIBORG_SSHD` (default `/usr/sbin/sshd`),
//! `ssh-keygen` and `ssh` on PATH. When one is missing the tests print a note and pass, unless
//! `OXIBORG_REQUIRE_BORG=1`: then they fail (the same rule as for a missing borg).
#![allow(dead_code)]

use crate::common::{self, Borg, Output, TestEnv};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const HOST: &str = "127.0.0.1";
/// The repokey repository the `forced` key is restricted to.
pub const REPO_RK: &str = "repo-rk";
/// The keyfile repository the `forced_rsa` key is restricted to.
pub const REPO_KF: &str = "repo-kf";
/// Upper bound for one oxiborg / borg run in these tests.
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------
// running programs with a deadline
// ---------------------------------------------------------------------------------------

pub fn cmdline(cmd: &Command) -> String {
    let mut v: Vec<String> = Vec::new();
    for (k, val) in cmd.get_envs() {
        let ks = k.to_string_lossy();
        if ks.starts_with("OXIBORG_") || ks == "BORG_RSH" || ks == "BORG_REMOTE_PATH" {
            if let Some(val) = val {
                v.push(format!("{ks}={}", common::quote(val)));
            }
        }
    }
    v.push(common::quote(cmd.get_program()));
    v.extend(cmd.get_args().map(common::quote));
    v.join(" ")
}

/// The result of [`run_limited`].
pub struct Run {
    pub out: Output,
    pub elapsed: Duration,
}

impl Run {
    pub fn describe(&self) -> String {
        format!(
            "{}\n(ran {:.2} s)",
            self.out.describe(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Runs `cmd` (stdin /dev/null, stdout and stderr captured through files so that grandchildren
/// holding them cannot block us) and kills it — failing the test — after `limit`.
pub fn run_limited(mut cmd: Command, limit: Duration) -> Run {
    let line = cmdline(&cmd);
    let mut so = tempfile::tempfile().expect("tempfile");
    let mut se = tempfile::tempfile().expect("tempfile");
    cmd.stdin(Stdio::null())
        .stdout(so.try_clone().unwrap())
        .stderr(se.try_clone().unwrap());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    drop(cmd);
    let read = |f: &mut fs::File| {
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    };
    let stdout = read(&mut so);
    let stderr = String::from_utf8_lossy(&read(&mut se)).into_owned();
    let out = Output {
        cmdline: line,
        stdout,
        stderr,
        code: status.and_then(|s| s.code()).unwrap_or(-1),
    };
    let run = Run { out, elapsed };
    if status.is_none() {
        panic!(
            "did not finish within {} s (killed)\n{}",
            limit.as_secs(),
            run.describe()
        );
    }
    run
}

/// [`run_limited`] that also requires exit code 0.
pub fn run_ok(cmd: Command, limit: Duration) -> Output {
    let r = run_limited(cmd, limit);
    assert_eq!(r.out.code, 0, "command failed\n{}", r.describe());
    r.out
}

// ---------------------------------------------------------------------------------------
// tools
// ---------------------------------------------------------------------------------------

pub struct Tools {
    pub sshd: PathBuf,
    pub ssh_keygen: PathBuf,
    pub ssh: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// sshd, ssh-keygen and ssh, or `None` after a note (a panic with `OXIBORG_REQUIRE_BORG=1`).
pub fn tools() -> Option<Tools> {
    let sshd = std::env::var_os("OXIBORG_SSHD")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/sshd"));
    let mut missing = Vec::new();
    if !sshd.is_file() {
        missing.push(format!(
            "sshd not found at {} (set OXIBORG_SSHD)",
            sshd.display()
        ));
    }
    let ssh_keygen = on_path("ssh-keygen");
    if ssh_keygen.is_none() {
        missing.push("ssh-keygen not found on PATH".into());
    }
    let ssh = on_path("ssh");
    if ssh.is_none() {
        missing.push("ssh not found on PATH".into());
    }
    if !missing.is_empty() {
        let msg = format!(
            "{} (install openssh-server and openssh-client)",
            missing.join("; ")
        );
        if common::require_borg() {
            panic!("OXIBORG_REQUIRE_BORG=1 but {msg}");
        }
        eprintln!("note: skipping: {msg}");
        return None;
    }
    Some(Tools {
        sshd,
        ssh_keygen: ssh_keygen.unwrap(),
        ssh: ssh.unwrap(),
    })
}

/// The Python interpreter that runs `borg` (its `#!` line), for the server-side wrappers.
pub fn python_for(borg: &Borg) -> PathBuf {
    let head = fs::read(&borg.path).unwrap_or_default();
    if head.starts_with(b"#!") {
        let line = head[2..].split(|&b| b == b'\n').next().unwrap_or(b"");
        let line = String::from_utf8_lossy(line);
        if let Some(first) = line.split_whitespace().next() {
            let p = PathBuf::from(first);
            if p.is_file() && !first.ends_with("/env") {
                return p;
            }
        }
    }
    on_path("python3").unwrap_or_else(|| PathBuf::from("/usr/bin/python3"))
}

// ---------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct KeyPair {
    pub private: PathBuf,
    /// "ssh-ed25519 AAAA..." (type and base64, no comment)
    pub public: String,
    /// "SHA256:..." as ssh-keygen -l prints it
    pub fingerprint: String,
}

/// `ssh-keygen -t KIND` without passphrase (RSA: 2048 bits, to be quick).
pub fn keygen(tools: &Tools, dir: &Path, name: &str, kind: &str) -> KeyPair {
    let private = dir.join(name);
    let mut c = Command::new(&tools.ssh_keygen);
    c.args(["-q", "-t", kind]);
    if kind == "rsa" {
        c.args(["-b", "2048"]);
    }
    c.args(["-N", "", "-C", name, "-f"]).arg(&private);
    run_ok(c, Duration::from_secs(60));
    let pub_path = dir.join(format!("{name}.pub"));
    let text = fs::read_to_string(&pub_path).unwrap();
    let public = text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new(&tools.ssh_keygen);
    c.args(["-l", "-E", "sha256", "-f"]).arg(&pub_path);
    let out = run_ok(c, Duration::from_secs(30)).stdout_str();
    let fingerprint = out
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("cannot parse ssh-keygen -l output {out:?}"))
        .to_string();
    assert!(fingerprint.starts_with("SHA256:"), "{out}");
    KeyPair {
        private,
        public,
        fingerprint,
    }
}

// ---------------------------------------------------------------------------------------
// processes
// ---------------------------------------------------------------------------------------

fn proc_pids() -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn ppid_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// All descendants of `root` (children first found, breadth-first).
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for pid in proc_pids() {
        if let Some(pp) = ppid_of(pid) {
            children.entry(pp).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).map(|v| v.as_slice()).unwrap_or(&[]) {
            out.push(c);
            queue.push(c);
        }
    }
    out
}

/// Processes whose environment holds `OXIBORG_TEST_SSHD=<marker>` (sessions of one server).
pub fn marked_processes(marker: &str) -> Vec<i32> {
    let needle = format!("OXIBORG_TEST_SSHD={marker}");
    let me = std::process::id() as i32;
    proc_pids()
        .into_iter()
        .filter(|&p| p != me)
        .filter(|p| {
            fs::read(format!("/proc/{p}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// `/proc/PID/cmdline` as one line, for messages.
pub fn cmdline_of(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_else(|_| "?".into())
}

fn sigkill(pid: i32) {
    if pid > 1 && pid != std::process::id() as i32 {
        // SAFETY: plain kill(2) on a pid this test started (directly or through sshd).
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

// ---------------------------------------------------------------------------------------
// sshd
// ---------------------------------------------------------------------------------------

pub struct SshServer {
    child: Option<Child>,
    pub port: u16,
    /// ed25519 host key (what an unconfigured client negotiates)
    pub host_key: KeyPair,
    /// RSA host key (offered too, as on many older servers)
    pub host_key_rsa: KeyPair,
    /// the server's directory (config, host key, authorized_keys, log, wrappers)
    pub dir: PathBuf,
    pub authorized_keys: PathBuf,
    pub log: PathBuf,
    /// value of OXIBORG_TEST_SSHD in every session's environment
    pub marker: String,
    _tmp: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind((HOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

fn banner_ok(port: u16) -> bool {
    let addr: SocketAddr = format!("{HOST}:{port}").parse().unwrap();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < 8 && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got.starts_with(b"SSH-2.0-")
}

impl SshServer {
    /// Starts sshd on a free port of 127.0.0.1 and waits (at most ~10 s per try, 4 tries)
    /// until it sends its banner. `server_env` is added to every session (sshd `SetEnv`).
    pub fn start(tools: &Tools, server_env: &[(&str, &Path)]) -> SshServer {
        // privilege separation directory (absent in containers where sshd never ran)
        let _ = fs::create_dir_all("/run/sshd");
        let _ = fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755));
        let tmp = tempfile::Builder::new()
            .prefix("oxiborg-sshd.")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let host_key = keygen(tools, &dir, "ssh_host_ed25519_key", "ed25519");
        let host_key_rsa = keygen(tools, &dir, "ssh_host_rsa_key", "rsa");
        let authorized_keys = dir.join("authorized_keys");
        fs::write(&authorized_keys, "").unwrap();
        let log = dir.join("sshd.log");
        let marker = dir.display().to_string();
        let mut setenv = format!("OXIBORG_TEST_SSHD={marker} LANG=C.UTF-8 LC_ALL=C.UTF-8");
        for (k, v) in server_env {
            setenv.push_str(&format!(" {k}={}", v.display()));
        }
        let mut last_log = String::new();
        for _attempt in 0..4 {
            let port = free_port();
            let config = format!(
                "ListenAddress {HOST}\n\
                 Port {port}\n\
                 HostKey {hk}\n\
                 HostKey {hk_rsa}\n\
                 AuthorizedKeysFile {ak}\n\
                 PidFile {pid}\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 Ciphers aes128-ctr,aes192-ctr,aes256-ctr\n\
                 MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 PermitRootLogin yes\n\
                 UseDNS no\n\
                 PrintMotd no\n\
                 PrintLastLog no\n\
                 X11Forwarding no\n\
                 AllowTcpForwarding no\n\
                 MaxStartups 64\n\
                 MaxSessions 64\n\
                 LoginGraceTime 30\n\
                 LogLevel VERBOSE\n\
                 SetEnv {setenv}\n",
                hk = host_key.private.display(),
                hk_rsa = host_key_rsa.private.display(),
                ak = authorized_keys.display(),
                pid = dir.join("sshd.pid").display(),
            );
            let cfg = dir.join("sshd_config");
            fs::write(&cfg, config).unwrap();
            let logf = fs::File::create(&log).unwrap();
            let mut cmd = Command::new(&tools.sshd);
            cmd.arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(logf);
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.sshd.display()));
            let start = Instant::now();
            let mut ready = false;
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if banner_ok(port) {
                    ready = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if ready {
                return SshServer {
                    child: Some(child),
                    port,
                    host_key,
                    host_key_rsa,
                    dir,
                    authorized_keys,
                    log,
                    marker,
                    _tmp: tmp,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("sshd did not come up on {HOST}; its log:\n{last_log}");
    }

    pub fn set_authorized_keys(&self, text: &str) {
        fs::write(&self.authorized_keys, text).unwrap();
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA...`
    pub fn known_hosts_line(&self) -> String {
        format!("[{HOST}]:{} {}\n", self.port, self.host_key.public)
    }

    /// `[127.0.0.1]:PORT ssh-rsa AAAA...`
    pub fn known_hosts_line_rsa(&self) -> String {
        format!("[{HOST}]:{} {}\n", self.port, self.host_key_rsa.public)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Processes of this server's sessions (shells, borg serve, wrappers) still alive.
    pub fn session_processes(&self) -> Vec<i32> {
        let mut v = marked_processes(&self.marker);
        // zombies (already exited, not yet reaped by sshd) do not count
        v.retain(|p| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .map(|s| {
                    s.rfind(')')
                        .map(|i| !s[i + 1..].trim_start().starts_with('Z'))
                        .unwrap_or(false)
                })
                .unwrap_or(false)
        });
        v
    }

    /// Waits (bounded) until no session process is left; returns those still alive.
    pub fn wait_sessions_gone(&self, limit: Duration) -> Vec<(i32, String)> {
        let start = Instant::now();
        loop {
            let v = self.session_processes();
            if v.is_empty() {
                return Vec::new();
            }
            if start.elapsed() > limit {
                return v.into_iter().map(|p| (p, cmdline_of(p))).collect();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            for p in descendants(pid) {
                sigkill(p);
            }
            let _ = child.kill();
            // SIGKILL: the wait returns at once
            let _ = child.wait();
        }
        // orphans of killed session processes (reparented away from sshd)
        for _ in 0..3 {
            let left = marked_processes(&self.marker);
            if left.is_empty() {
                break;
            }
            for p in left {
                sigkill(p);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ---------------------------------------------------------------------------------------
// a slow link
// ---------------------------------------------------------------------------------------

/// A TCP relay on 127.0.0.1 to `127.0.0.1:target`: what the client sends goes through at once,
/// what the server sends is passed on `chunk` bytes every `tick` (a steady trickle, never a
/// pause longer than `tick`). Its threads end when it is dropped.
pub struct SlowLink {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowLink {
    pub fn start(target: u16, chunk: usize, tick: Duration) -> SlowLink {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind((HOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_accept = stop.clone();
        std::thread::spawn(move || {
            while !stop_accept.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect((HOST, target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                // client -> server: as fast as it comes
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let stop_up = stop_accept.clone();
                std::thread::spawn(move || {
                    let _ = c_in.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut buf = vec![0u8; 64 * 1024];
                    while !stop_up.load(Ordering::SeqCst) {
                        match c_in.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if std::io::Write::write_all(&mut s_out, &buf[..n]).is_err() {
                                    break;
                                }
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Write);
                });
                // server -> client: `chunk` bytes per `tick`
                let (mut s_in, mut c_out) = (server, client);
                let stop_down = stop_accept.clone();
                std::thread::spawn(move || {
                    let _ = s_in.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut buf = vec![0u8; chunk];
                    while !stop_down.load(Ordering::SeqCst) {
                        match s_in.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if std::io::Write::write_all(&mut c_out, &buf[..n]).is_err() {
                                    break;
                                }
                                std::thread::sleep(tick);
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowLink { port, stop }
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------
// the whole set-up
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// libssh2; `ssh://root@127.0.0.1:PORT/./REPO`, identity from OXIBORG_SSH_IDENTITY
    Native,
    /// libssh2; `ALIAS:REPO` (scp style), host/port/user/IdentityFile from `~/.ssh/config`
    NativeConfig,
    /// `BORG_RSH="ssh -i KEY ..."`; `ssh://root@127.0.0.1:PORT/./REPO`
    Command,
}

/// The user the tests log in as: the current one (root in CI; sshd has PermitRootLogin yes).
pub fn login_user() -> String {
    static USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        Command::new("id")
            .arg("-un")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".into())
    })
    .clone()
}

pub const ALL_TRANSPORTS: [Transport; 3] = [
    Transport::Native,
    Transport::NativeConfig,
    Transport::Command,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// ed25519, forced `borg serve --restrict-to-repository POOL/repo-rk`
    Forced,
    /// RSA, forced `borg serve --restrict-to-repository POOL/repo-kf`
    ForcedRsa,
    /// ed25519, no forced command
    Plain,
    /// ed25519, not in authorized_keys
    Unknown,
}

impl Key {
    pub fn alias(self) -> &'static str {
        match self {
            Key::Forced => "oxitest-forced",
            Key::ForcedRsa => "oxitest-rsa",
            Key::Plain => "oxitest-plain",
            Key::Unknown => "oxitest-unknown",
        }
    }
}

pub struct Remote {
    /// declared first: dropped (killed) before the directories go away
    pub server: SshServer,
    pub env: TestEnv,
    pub borg: Borg,
    pub tools: Tools,
    /// the repositories (server side: `cd POOL` in the forced command)
    pub pool: PathBuf,
    pub forced: KeyPair,
    pub forced_rsa: KeyPair,
    pub plain: KeyPair,
    pub unknown: KeyPair,
    /// the client's `$HOME/.ssh/known_hosts`
    pub known_hosts: PathBuf,
}

impl Remote {
    /// Server + client for `borg` as the server's borg. `None` (after a note) when the ssh
    /// tools are missing and `OXIBORG_REQUIRE_BORG` is not 1.
    pub fn new(borg: Borg) -> Option<Remote> {
        let tools = tools()?;
        let mut env = TestEnv::new();
        // the client environment: no agent, no identity/known-hosts overrides from outside
        for k in [
            "SSH_AUTH_SOCK",
            "SSH_AGENT_PID",
            "OXIBORG_SSH_IDENTITY",
            "OXIBORG_SSH_KNOWN_HOSTS",
            "OXIBORG_SSH_KEY_PASSPHRASE",
        ] {
            env.unset(k);
        }
        env.set("OXIBORG_REMOTE_TIMEOUT", "60");
        let pool = env.path().join("pool");
        fs::create_dir_all(&pool).unwrap();
        let server_base = env.path().join("server-base");
        fs::create_dir_all(&server_base).unwrap();
        let server = SshServer::start(&tools, &[("BORG_BASE_DIR", &server_base)]);
        let keydir = env.path().join("client-keys");
        fs::create_dir_all(&keydir).unwrap();
        let forced = keygen(&tools, &keydir, "forced_ed25519", "ed25519");
        let forced_rsa = keygen(&tools, &keydir, "forced_rsa", "rsa");
        let plain = keygen(&tools, &keydir, "plain_ed25519", "ed25519");
        let unknown = keygen(&tools, &keydir, "unknown_ed25519", "ed25519");
        let ssh_dir = env.base.join(".ssh");
        fs::create_dir_all(&ssh_dir).unwrap();
        fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700)).unwrap();
        let known_hosts = ssh_dir.join("known_hosts");
        fs::write(&known_hosts, server.known_hosts_line()).unwrap();
        let mut config = String::new();
        for (key, kp) in [
            (Key::Forced, &forced),
            (Key::ForcedRsa, &forced_rsa),
            (Key::Plain, &plain),
            (Key::Unknown, &unknown),
        ] {
            config.push_str(&format!(
                "Host {}\n    HostName {HOST}\n    Port {}\n    User {}\n    IdentityFile {}\n\n",
                key.alias(),
                server.port,
                login_user(),
                kp.private.display()
            ));
        }
        fs::write(ssh_dir.join("config"), config).unwrap();
        let r = Remote {
            server,
            env,
            borg,
            tools,
            pool,
            forced,
            forced_rsa,
            plain,
            unknown,
            known_hosts,
        };
        r.server.set_authorized_keys(&r.authorized_keys_text());
        Some(r)
    }

    /// BorgWarehouse's line: `command="cd POOL;borg serve --restrict-to-repository POOL/REPO
    /// --storage-quota Q",restrict KEY`, one per repository, plus the plain key.
    pub fn authorized_keys_text(&self) -> String {
        let pool = self.pool.display();
        let borg = self.borg.path.display();
        format!(
            "command=\"cd {pool};{borg} serve --restrict-to-repository {pool}/{REPO_RK} --storage-quota 10G\",restrict {} forced-rk\n\
             command=\"cd {pool};{borg} serve --restrict-to-repository {pool}/{REPO_KF} --storage-quota 10G\",restrict {} forced-kf\n\
             {} plain\n",
            self.forced.public, self.forced_rsa.public, self.plain.public
        )
    }

    pub fn key(&self, k: Key) -> &KeyPair {
        match k {
            Key::Forced => &self.forced,
            Key::ForcedRsa => &self.forced_rsa,
            Key::Plain => &self.plain,
            Key::Unknown => &self.unknown,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `ssh://root@127.0.0.1:PORT/./REPO` (REPO relative to the forced command's cwd)
    pub fn url(&self, repo: &str) -> String {
        format!("ssh://{}@{HOST}:{}/./{repo}", login_user(), self.port())
    }

    /// `ssh://root@127.0.0.1:PORT/ABS/PATH` (for the plain key)
    pub fn url_abs(&self, path: &Path) -> String {
        format!(
            "ssh://{}@{HOST}:{}{}",
            login_user(),
            self.port(),
            path.display()
        )
    }

    /// The repository location for `t`: the URL, or `ALIAS:REPO` for [`Transport::NativeConfig`].
    pub fn loc(&self, t: Transport, key: Key, repo: &str) -> String {
        match t {
            Transport::NativeConfig => format!("{}:{repo}", key.alias()),
            _ => self.url(repo),
        }
    }

    /// BORG_RSH for `key`: OpenSSH with only that key, our known_hosts, strict checking.
    pub fn rsh(&self, key: Key) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
             -o ConnectTimeout=10 -o LogLevel=ERROR",
            self.key(key).private.display(),
            self.known_hosts.display()
        )
    }

    /// An oxiborg command for transport `t` with `key` (arguments: the caller's, the location
    /// included).
    pub fn oxiborg_cmd<S: AsRef<OsStr>>(&self, t: Transport, key: Key, args: &[S]) -> Command {
        let mut cmd = self.env.oxiborg_cmd(args);
        match t {
            Transport::Native => {
                cmd.env("OXIBORG_SSH_IDENTITY", &self.key(key).private);
                cmd.env_remove("BORG_RSH");
            }
            Transport::NativeConfig => {
                cmd.env_remove("OXIBORG_SSH_IDENTITY");
                cmd.env_remove("BORG_RSH");
            }
            Transport::Command => {
                cmd.env_remove("OXIBORG_SSH_IDENTITY");
                cmd.env("BORG_RSH", self.rsh(key));
            }
        }
        cmd
    }

    pub fn oxiborg<S: AsRef<OsStr>>(&self, t: Transport, key: Key, args: &[S]) -> Run {
        run_limited(self.oxiborg_cmd(t, key, args), RUN_LIMIT)
    }

    /// Local borg (the server's version) with the client environment, cwd = `cwd` or the
    /// temp dir; bounded, must exit 0.
    pub fn borg_ok<S: AsRef<OsStr>>(&self, args: &[S], cwd: Option<&Path>) -> Output {
        let mut cmd = self.env.borg_cmd(&self.borg, args);
        if let Some(c) = cwd {
            cmd.current_dir(c);
        }
        run_ok(cmd, Duration::from_secs(180))
    }

    /// `borg init -e MODE POOL/NAME`; returns the path.
    pub fn init_repo(&self, name: &str, mode: &str) -> PathBuf {
        let repo = self.pool.join(name);
        self.borg_ok(
            &[
                OsStr::new("init"),
                OsStr::new("-e"),
                OsStr::new(mode),
                repo.as_os_str(),
            ],
            None,
        );
        repo
    }

    /// `borg create [extra] REPO::ARCHIVE PATHS` in `cwd`.
    pub fn create(&self, repo: &Path, archive: &str, cwd: &Path, paths: &[&str], extra: &[&str]) {
        let mut args: Vec<OsString> = vec!["create".into()];
        args.extend(extra.iter().map(OsString::from));
        args.push(common::repo_archive(repo, archive));
        args.extend(paths.iter().map(OsString::from));
        self.borg_ok(&args, Some(cwd));
    }

    /// Writes an executable Python wrapper to use as `--remote-path`: it runs
    /// `BORG serve ...`, forwards its responses, and once `limit` response bytes went out does
    /// `mode`: "kill-serve" (SIGKILL borg serve and exit), "kill-sshd" (SIGKILL the sshd session
    /// process above it, then borg), "stall" (stop forwarding; exit after 30 s). The trigger flag
    /// file `<wrapper>.triggered` counts the sessions it misbehaved in. Plain `<mode>`: the
    /// first session after `limit` bytes, every later one at once (before borg answers
    /// anything); `<mode>-once`: the first session only; `<mode>-times-N`: each of the first N
    /// sessions after `limit` bytes, then never. Returns (wrapper, trigger flag).
    pub fn write_wrapper(&self, mode: &str, limit: u64) -> (PathBuf, PathBuf) {
        let path = self.server.dir.join(format!("borg-{mode}.py"));
        let flag = self.server.dir.join(format!("borg-{mode}.py.triggered"));
        // The count must start at zero.
        let _ = fs::remove_file(&flag);
        let py = python_for(&self.borg);
        let script = format!(
            r#"#!{py}
import os, re, signal, subprocess, sys, time
BORG = {borg:?}
MODE = {mode:?}
LIMIT = {limit}
FLAG = {flag:?}
TIMES = None
if MODE.endswith("-once"):
    MODE, TIMES = MODE[:-5], 1
m = re.match(r"(.*)-times-([0-9]+)$", MODE)
if m:
    MODE, TIMES = m.group(1), int(m.group(2))
done = int(open(FLAG).read() or "0") if os.path.exists(FLAG) else 0
if TIMES is not None and done >= TIMES:
    os.execv(BORG, [BORG] + sys.argv[1:])

def act(p):
    with open(FLAG, "w") as f:
        f.write(str(done + 1))
    if MODE == "kill-serve":
        if p:
            p.kill()
        os._exit(1)
    if MODE == "kill-sshd":
        pid = os.getppid()
        while pid > 1:
            with open("/proc/%d/comm" % pid) as f:
                comm = f.read().strip()
            if comm.startswith("sshd"):
                os.kill(pid, signal.SIGKILL)
                break
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        if p:
            p.kill()
        os._exit(1)
    if MODE == "stall":
        time.sleep(30)
        if p:
            p.kill()
        os._exit(1)

# plain mode, a later session: misbehave before borg says anything
if TIMES is None and done > 0:
    act(None)
p = subprocess.Popen([BORG] + sys.argv[1:], stdout=subprocess.PIPE)
src = p.stdout.fileno()
n = 0
while True:
    b = os.read(src, 65536)
    if not b:
        break
    mv = memoryview(b)
    while mv:
        k = os.write(1, mv)
        mv = mv[k:]
    n += len(b)
    if n >= LIMIT:
        act(p)
p.wait()
sys.exit(p.returncode)
"#,
            py = py.display(),
            borg = self.borg.path.display().to_string(),
            flag = flag.display().to_string(),
        );
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        (path, flag)
    }
}

// ---------------------------------------------------------------------------------------
// tree comparison
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub mtime_ns: i128,
    pub size: u64,
    pub link: Option<Vec<u8>>,
}

fn node(p: &Path) -> Node {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        'f'
    } else if ft.is_fifo() {
        'p'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        's'
    };
    Node {
        kind,
        mode: m.mode(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        size: if kind == 'f' { m.len() } else { 0 },
        link: (kind == 'l').then(|| fs::read_link(p).unwrap().as_os_str().as_bytes().to_vec()),
    }
}

/// Every path below `root` (relative, root itself excluded) with its [`Node`].
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let dir = root.join(rel);
        let Ok(rd) = fs::read_dir(&dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let n = node(&root.join(&r));
            let is_dir = n.kind == 'd';
            out.insert(r.clone(), n);
            if is_dir {
                walk(root, &r, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn show(p: &Path) -> String {
    String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned()
}

/// Differences between the trees `expected` and `actual`: presence, type, content, mode,
/// mtime (ns), symlink target.
pub fn tree_diff(expected: &Path, actual: &Path) -> Vec<String> {
    tree_diff_fresh(expected, actual, &[])
}

/// [`tree_diff`], but the mtimes of `fresh` (directories both extractors create implicitly,
/// as parents of a PATH selection, with the current time) are not compared.
pub fn tree_diff_fresh(expected: &Path, actual: &Path, fresh: &[&str]) -> Vec<String> {
    let e = snapshot(expected);
    let a = snapshot(actual);
    let mut out = Vec::new();
    if e.is_empty() {
        out.push(format!("expected tree {} is empty", expected.display()));
    }
    for (p, en) in &e {
        let Some(an) = a.get(p) else {
            out.push(format!("{}: missing", show(p)));
            continue;
        };
        if en.kind != an.kind {
            out.push(format!(
                "{}: type {} expected, got {}",
                show(p),
                en.kind,
                an.kind
            ));
            continue;
        }
        if en.mode != an.mode {
            out.push(format!(
                "{}: mode {:o} expected, got {:o}",
                show(p),
                en.mode,
                an.mode
            ));
        }
        if en.mtime_ns != an.mtime_ns && !fresh.iter().any(|f| show(p) == *f) {
            out.push(format!(
                "{}: mtime {} ns expected, got {}",
                show(p),
                en.mtime_ns,
                an.mtime_ns
            ));
        }
        if en.link != an.link {
            out.push(format!(
                "{}: symlink target {:?} expected, got {:?}",
                show(p),
                en.link
                    .as_ref()
                    .map(|l| String::from_utf8_lossy(l).into_owned()),
                an.link
                    .as_ref()
                    .map(|l| String::from_utf8_lossy(l).into_owned())
            ));
        }
        if en.kind == 'f' {
            if en.size != an.size {
                out.push(format!(
                    "{}: size {} expected, got {}",
                    show(p),
                    en.size,
                    an.size
                ));
            } else if fs::read(expected.join(p)).unwrap() != fs::read(actual.join(p)).unwrap() {
                out.push(format!("{}: content differs", show(p)));
            }
        }
    }
    for p in a.keys() {
        if !e.contains_key(p) {
            out.push(format!("{}: unexpected", show(p)));
        }
    }
    out
}

/// True for oxiborg's temporary names `.oxiborg-*.tmp`.
pub fn is_temp_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b".oxiborg-") && b.ends_with(b".tmp")
}
