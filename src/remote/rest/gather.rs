//! Many byte ranges in few requests: `POST /?cmd=gather` with the body
//! `[[name, offset, size], …]` answers the ranges concatenated in order. Ranges go in
//! consecutive batches of at most [`GATHER_BYTES`] and [`GATHER_COUNT`] ranges (a larger range
//! alone), with [`IN_FLIGHT`] batches pipelined on the session so the link stays busy while
//! one is being answered. Every response must be exactly as long as its ranges together; a
//! batch that meets a missing or truncated file (`404`, `416`) is read again range by range,
//! so that only the objects in that file fail, as borg does.

use super::http::{request, Expect, Method};
use super::ops::{load_range, refused, target};
use super::session::{Reply, RestSession};
use crate::error::{Error, Result};
use crate::remote::reconnect::Sink;
use crate::store::files::Range;
use std::collections::VecDeque;
use std::sync::mpsc::Receiver;

/// Bytes one gather request asks for at most (unless one range is larger).
pub(super) const GATHER_BYTES: u64 = 32 << 20;
/// Ranges one gather request asks for at most (borg's client: 1000).
pub(super) const GATHER_COUNT: usize = 1000;
/// Gather requests in flight on one session.
const IN_FLIGHT: usize = 2;

/// Consecutive batches of `ranges` within the limits.
pub(super) fn batches<R: std::borrow::Borrow<Range>>(ranges: &[R]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, r) in ranges.iter().enumerate() {
        let len = r.borrow().len;
        if i > start && (i - start == GATHER_COUNT || bytes.saturating_add(len) > GATHER_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes = bytes.saturating_add(len);
    }
    if start < ranges.len() {
        out.push(start..ranges.len());
    }
    out
}

/// `ranges` in at most `parts` contiguous shares of nearly equal bytes (each share at least one
/// range), for as many sessions.
pub(super) fn byte_shares(ranges: &[Range], parts: usize) -> Vec<std::ops::Range<usize>> {
    let total: u64 = ranges.iter().map(|r| r.len).fold(0, u64::saturating_add);
    let per = total.div_ceil(parts.max(1) as u64).max(1);
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, r) in ranges.iter().enumerate() {
        bytes = bytes.saturating_add(r.len);
        if bytes >= per && out.len() + 1 < parts {
            out.push(start..i + 1);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < ranges.len() {
        out.push(start..ranges.len());
    }
    out
}

/// Sends the gather request for `batch`; returns its receiver and how many bytes it must
/// answer.
fn send(s: &RestSession, batch: &[&Range]) -> Result<(Receiver<Reply>, u64)> {
    let mut sources = Vec::with_capacity(batch.len());
    let mut want = 0u64;
    for r in batch {
        target(&r.name, false)?;
        sources.push((r.name.as_str(), r.offset, r.len));
        want = want
            .checked_add(r.len)
            .ok_or_else(|| Error::InvalidInput("gather: ranges past 2^64 bytes".into()))?;
    }
    let body = serde_json::to_vec(&sources)
        .map_err(|e| Error::Other(format!("gather: cannot write the request: {e}")))?;
    let rx = s.send(
        &request(Method::Post, "/?cmd=gather", None, Some(&body)),
        Expect {
            head: false,
            limit: want,
        },
    )?;
    Ok((rx, want))
}

/// Every range of `ranges`, each handed to `sink` with its index, in order.
pub(super) fn load_ranges(s: &RestSession, ranges: &[&Range], sink: &mut Sink<'_>) -> Result<()> {
    let batches = batches(ranges);
    let mut inflight = VecDeque::with_capacity(IN_FLIGHT);
    let mut next = 0;
    loop {
        while inflight.len() < IN_FLIGHT && next < batches.len() {
            let b = batches[next].clone();
            let (rx, want) = send(s, &ranges[b.clone()])?;
            inflight.push_back((b, rx, want));
            next += 1;
        }
        let Some((b, rx, want)) = inflight.pop_front() else {
            return Ok(());
        };
        let resp = s.wait(&rx, "gather")?;
        match resp.status {
            200 if resp.body.len() as u64 == want => {
                let mut at = 0usize;
                for i in b {
                    let len = ranges[i].len as usize;
                    sink(i, Ok(resp.body[at..at + len].to_vec()))?;
                    at += len;
                }
            }
            // (a body longer than asked for was refused while it was read)
            200 => {
                return Err(s.violation(format!(
                "The server answered a gather of {want} bytes ({} ranges from {}) with {} bytes",
                b.len(),
                ranges[b.start].name,
                resp.body.len()
            )))
            }
            404 | 416 => {
                for i in b {
                    sink(i, load_range(s, ranges[i]))?;
                }
            }
            _ => return Err(refused(s, &resp, "packs (gather)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(len: u64) -> Range {
        Range {
            name: "p".into(),
            offset: 0,
            len,
        }
    }

    #[test]
    fn batches_bounded_by_bytes_and_count() {
        let mb = 1 << 20;
        let rs: Vec<Range> = [10 * mb, 10 * mb, 10 * mb, 10 * mb, 40 * mb, 1]
            .into_iter()
            .map(r)
            .collect();
        assert_eq!(batches(&rs), [0..3, 3..4, 4..5, 5..6]);
        let many: Vec<Range> = (0..2500).map(|_| r(1)).collect();
        assert_eq!(batches(&many), [0..1000, 1000..2000, 2000..2500]);
        assert!(batches::<Range>(&[]).is_empty());
        assert_eq!(byte_shares(&rs, 2), [0..5, 5..6]);
        let one = byte_shares(&rs[..1], 3);
        assert_eq!((one.len(), one[0].start, one[0].end), (1, 0, 1));
        assert_eq!(byte_shares(&many, 4).len(), 4);
    }
}
