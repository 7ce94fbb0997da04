//! The channel bridged to pipes: one thread runs libssh2 non-blocking and moves bytes between
//! the channel and the request, response and log pipes, so the RPC layer reads and writes
//! concurrently.

use super::super::Connection;
use crate::error::{Error, RemoteErrorKind, Result};
use rustix::event::{poll, PollFd, PollFlags};
use ssh2::Session;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

/// Moves bytes between the channel and three pipes on one thread, libssh2 non-blocking.
pub(super) fn bridge(
    sess: Session,
    mut channel: ssh2::Channel,
    tcp: TcpStream,
) -> Result<Connection> {
    let pipe = |what: &str| {
        rustix::pipe::pipe().map_err(|e| {
            Error::remote(
                RemoteErrorKind::Connect,
                format!("cannot create {what} pipe: {e}"),
            )
        })
    };
    let (req_r, req_w) = pipe("request")?;
    let (resp_r, resp_w) = pipe("response")?;
    let (log_r, log_w) = pipe("log")?;
    rustix::fs::fcntl_setfl(&req_r, rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| Error::remote(RemoteErrorKind::Connect, e.to_string()))?;
    sess.set_blocking(false);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_bridge = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut req_r = std::fs::File::from(req_r);
        let mut resp_w = std::fs::File::from(resp_w);
        let mut log_w = std::fs::File::from(log_w);
        let mut out: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let (mut req_eof, mut sent_eof) = (false, false);
        let mut eof_since: Option<Instant> = None;
        loop {
            let mut progress = false;
            if !req_eof && out.len() < (1 << 20) {
                match req_r.read(&mut buf) {
                    Ok(0) => req_eof = true,
                    Ok(n) => {
                        out.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => req_eof = true,
                }
            }
            if !out.is_empty() {
                match channel.write(&out) {
                    Ok(n) => {
                        out.drain(..n);
                        progress = progress || n > 0;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
            if req_eof && out.is_empty() && !sent_eof {
                match channel.send_eof() {
                    Ok(()) => {
                        sent_eof = true;
                        eof_since = Some(Instant::now());
                    }
                    Err(e) if e.code() == ssh2::ErrorCode::Session(-37) => {}
                    Err(_) => break,
                }
            }
            match channel.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    progress = true;
                    if resp_w.write_all(&buf[..n]).is_err() && sent_eof {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            match channel.stderr().read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    progress = true;
                    let _ = log_w.write_all(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {}
            }
            if channel.eof() && !progress {
                break;
            }
            if eof_since.is_some_and(|t| t.elapsed() > Duration::from_secs(10))
                || stop_bridge.load(std::sync::atomic::Ordering::SeqCst)
            {
                break;
            }
            if !progress {
                let mut sock_flags = PollFlags::IN;
                if !out.is_empty() {
                    sock_flags |= PollFlags::OUT;
                }
                let mut fds = vec![PollFd::new(&tcp, sock_flags)];
                if !req_eof && out.len() < (1 << 20) {
                    fds.push(PollFd::new(&req_r, PollFlags::IN));
                }
                let _ = poll(
                    &mut fds,
                    Some(&rustix::event::Timespec {
                        tv_sec: 0,
                        tv_nsec: 10_000_000,
                    }),
                );
            }
        }
        drop(resp_w);
        drop(log_w);
        let _ = channel.close();
        drop(sess);
        let _ = tcp.as_fd().as_raw_fd();
    });
    Ok(Connection {
        requests: Box::new(std::fs::File::from(req_w)),
        responses: Box::new(std::fs::File::from(resp_r)),
        log: Some(Box::new(std::fs::File::from(log_r))),
        finish: Box::new(move |dead| {
            if dead {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = handle.join();
        }),
    })
}
