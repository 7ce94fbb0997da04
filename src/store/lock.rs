//! borg's repository lock, as a reader sees it: is a writer holding `lock.exclusive`?
//!
//! oxiborg never takes or removes a lock. A lock whose every holder is a process of this host
//! that is gone (a `borg create` killed with SIGKILL, a crashed machine's reboot) is stale by
//! borg's own rule, and borg would remove it and go on; oxiborg reads as if it were not there
//! and leaves it for the next borg to remove.
//!
//! borg names each holder `HOSTID.PID-THREAD` inside `lock.exclusive/`, where `HOSTID` is
//! `BORG_HOST_ID` when set, else `FQDN@NODE` (the host's canonical name from the resolver and
//! `uuid.getnode()`: the 48-bit MAC address of one of its network interfaces, as an integer).
//! A holder is stale when its host id is this host's, its thread is 0 and no process has its
//! pid (borg 1.2–1.4 `platform.process_alive`). borg 1.1's `BORG_HOSTNAME_IS_UNIQUE=no`
//! (which borg 1.2 dropped) still says "never judge a lock stale".

use std::path::Path;

/// One holder of the exclusive lock, parsed from its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    /// The host id (`FQDN@NODE` or `BORG_HOST_ID`).
    pub host: String,
    /// The process id.
    pub pid: i32,
    /// The thread id (always 0 for borg).
    pub thread: u64,
}

impl Holder {
    /// Parses `HOSTID.PID-THREAD` (thread in hex), as borg's `kill_stale_lock` does.
    pub(crate) fn parse(name: &str) -> Option<Holder> {
        let (host_pid, thread) = name.rsplit_once('-')?;
        let (host, pid) = host_pid.rsplit_once('.')?;
        Some(Holder {
            host: host.to_string(),
            pid: pid.parse().ok()?,
            thread: u64::from_str_radix(thread, 16).ok()?,
        })
    }
}

/// Who this host is, for judging locks.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThisHost {
    /// `BORG_HOST_ID`, when set: then only this exact id is this host.
    host_id: Option<String>,
    /// The canonical host name (borg's `getfqdn`).
    fqdn: String,
    /// MAC addresses of the network interfaces, as borg's node numbers.
    nodes: Vec<u64>,
    /// `BORG_HOSTNAME_IS_UNIQUE=no`: never call a lock stale.
    never_stale: bool,
}

impl ThisHost {
    /// This host, from the environment and the system.
    pub(crate) fn detect() -> ThisHost {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let never_stale = var("BORG_HOSTNAME_IS_UNIQUE")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "no" | "0" | "false"));
        if let Some(id) = var("BORG_HOST_ID") {
            return ThisHost {
                host_id: Some(id),
                never_stale,
                ..ThisHost::default()
            };
        }
        ThisHost {
            host_id: None,
            fqdn: fqdn(),
            nodes: interface_nodes(),
            never_stale,
        }
    }

    /// Whether `host` (a lock's host id) names this host.
    fn is(&self, host: &str) -> bool {
        if let Some(id) = &self.host_id {
            return host == id;
        }
        let Some((fqdn, node)) = host.rsplit_once('@') else {
            return false;
        };
        fqdn == self.fqdn && node.parse::<u64>().is_ok_and(|n| self.nodes.contains(&n))
    }

    /// Whether `h` is a holder borg would remove: a process of this host that is gone.
    pub(crate) fn is_stale(&self, h: &Holder) -> bool {
        !self.never_stale && h.thread == 0 && self.is(&h.host) && !pid_alive(h.pid)
    }
}

/// What is in `lock.exclusive`: nothing (no lock, or only stale holders, which are named), or
/// the live holders' names.
pub(crate) enum LockState {
    /// No writer: the lock is absent, empty, or held only by the stale holders listed.
    Free(Vec<String>),
    /// Held by these (live, foreign or unparsable) holders.
    Held(Vec<String>),
}

/// Looks at the exclusive lock of the repository at `root`.
pub(crate) fn exclusive_lock(root: &Path, host: &ThisHost) -> LockState {
    let Ok(dir) = std::fs::read_dir(root.join("lock.exclusive")) else {
        return LockState::Free(Vec::new());
    };
    let (mut stale, mut live) = (Vec::new(), Vec::new());
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        match Holder::parse(&name) {
            Some(h) if host.is_stale(&h) => stale.push(name),
            _ => live.push(name),
        }
    }
    if live.is_empty() {
        LockState::Free(stale)
    } else {
        LockState::Held(live)
    }
}

/// Whether a process with `pid` exists (borg: `os.kill(pid, 0)`, any error but "no such
/// process" counts as alive).
fn pid_alive(pid: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return true; // pid 0 or negative: not a process borg would write; keep the lock
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// The canonical name of this host as borg's `getfqdn` finds it: the first canonical name
/// `getaddrinfo(gethostname(), AI_CANONNAME)` returns, else the host name itself.
fn fqdn() -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let Ok(cname) = std::ffi::CString::new(name.clone()) else {
        return name;
    };
    // SAFETY: a zeroed addrinfo is a valid hints value; getaddrinfo gets valid C strings and an
    // out pointer, and the list it returns is walked read-only and freed once.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_socktype = libc::SOCK_DGRAM;
        hints.ai_flags = libc::AI_CANONNAME;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(cname.as_ptr(), std::ptr::null(), &hints, &mut res) != 0 {
            return name;
        }
        let mut found = None;
        let mut p = res;
        while !p.is_null() {
            let c = (*p).ai_canonname;
            if !c.is_null() {
                let s = std::ffi::CStr::from_ptr(c).to_string_lossy().into_owned();
                if !s.is_empty() {
                    found = Some(s);
                    break;
                }
            }
            p = (*p).ai_next;
        }
        libc::freeaddrinfo(res);
        found.unwrap_or(name)
    }
}

/// The hardware addresses of this host's network interfaces as 48-bit numbers (what Python's
/// `uuid.getnode()` returns for the interface it picks), from `/sys/class/net`.
fn interface_nodes() -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("address")).ok())
        .filter_map(|a| parse_mac(a.trim()))
        .filter(|n| *n != 0)
        .collect()
}

/// `aa:bb:cc:dd:ee:ff` as a number.
fn parse_mac(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    parts.iter().try_fold(0u64, |n, p| {
        (p.len() == 2)
            .then(|| u8::from_str_radix(p, 16).ok())
            .flatten()
            .map(|b| (n << 8) | u64::from(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_names_as_borg_writes_them() {
        assert_eq!(
            Holder::parse("host.example@52236527466498.4242-0"),
            Some(Holder {
                host: "host.example@52236527466498".into(),
                pid: 4242,
                thread: 0
            })
        );
        assert_eq!(Holder::parse("h@1.12-1f").map(|h| h.thread), Some(0x1f));
        assert_eq!(Holder::parse("nonsense"), None);
        assert_eq!(Holder::parse("h@1.x-0"), None);
    }

    #[test]
    fn mac_addresses() {
        assert_eq!(parse_mac("52:54:00:12:34:56"), Some(0x5254_0012_3456));
        assert_eq!(parse_mac("52:54:00:12:34"), None);
        assert_eq!(parse_mac("52:54:00:12:34:5g"), None);
    }

    #[test]
    fn stale_means_this_host_and_dead() {
        let me = ThisHost {
            host_id: None,
            fqdn: "box.example".into(),
            nodes: vec![7],
            never_stale: false,
        };
        // a pid that cannot exist (above the kernel's pid_max limit of 2^22)
        let dead = |host: &str, thread| Holder {
            host: host.into(),
            pid: 99_999_999,
            thread,
        };
        assert!(me.is_stale(&dead("box.example@7", 0)));
        assert!(!me.is_stale(&dead("other.example@7", 0)));
        assert!(!me.is_stale(&dead("box.example@8", 0)));
        assert!(!me.is_stale(&dead("box.example@7", 1)));
        let alive = Holder {
            host: "box.example@7".into(),
            pid: std::process::id() as i32,
            thread: 0,
        };
        assert!(!me.is_stale(&alive));
        let unique_off = ThisHost {
            never_stale: true,
            ..me.clone()
        };
        assert!(!unique_off.is_stale(&dead("box.example@7", 0)));
        let by_id = ThisHost {
            host_id: Some("my-id".into()),
            ..ThisHost::default()
        };
        assert!(by_id.is_stale(&dead("my-id", 0)));
        assert!(!by_id.is_stale(&dead("box.example@7", 0)));
    }
}
