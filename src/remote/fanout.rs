//! One batch of reads spread over several sessions: each session reads a contiguous share of
//! the items on its own thread (so each server reads its files in order), and the caller's sink
//! gets every result on the caller's thread.

use super::reconnect::Sink;
use crate::error::{Error, Result};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

/// `n` items in at most `parts` contiguous shares of nearly equal count.
pub(super) fn even_shares(n: usize, parts: usize) -> Vec<Range<usize>> {
    let share = n.div_ceil(parts.max(1)).max(1);
    (0..n)
        .step_by(share)
        .map(|start| start..(start + share).min(n))
        .collect()
}

/// Runs `run` for each share on its session (`shares[k]` on `sessions[k]`) in parallel and
/// hands every result to `sink` (with its index among all items). When `sink` fails, the
/// sessions stop at their next result and its error is returned; otherwise the first
/// session's error, if any.
pub(super) fn fan_out<S: Sync>(
    sessions: &[S],
    shares: &[Range<usize>],
    sink: &mut Sink<'_>,
    run: impl Fn(&S, Range<usize>, &mut Sink<'_>) -> Result<()> + Sync,
) -> Result<()> {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<(usize, Result<Vec<u8>>)>(64);
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for (session, share) in sessions.iter().zip(shares) {
            let (tx, stop, run) = (tx.clone(), stop.clone(), &run);
            let start = share.start;
            let share = share.clone();
            workers.push(s.spawn(move || {
                run(session, share, &mut |i, r| {
                    if stop.load(Ordering::Relaxed) || tx.send((start + i, r)).is_err() {
                        // (the caller's sink failed: its error is the result)
                        return Err(Error::Interrupted);
                    }
                    Ok(())
                })
            }));
        }
        drop(tx);
        let mut result = Ok(());
        for (i, r) in rx.iter() {
            if let Err(e) = sink(i, r) {
                stop.store(true, Ordering::Relaxed);
                result = Err(e);
                break;
            }
        }
        drop(rx);
        for w in workers {
            match w.join() {
                Ok(Err(e)) if result.is_ok() => result = Err(e),
                _ => {}
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_item_once() {
        assert_eq!(even_shares(10, 3), [0..4, 4..8, 8..10]);
        assert_eq!(even_shares(2, 4), [0..1, 1..2]);
        assert!(even_shares(0, 2).is_empty());
        let seen = std::sync::Mutex::new(Vec::new());
        let mut got = Vec::new();
        fan_out(
            &["a", "b", "c"],
            &even_shares(7, 3),
            &mut |i, r| {
                got.push((i, r.unwrap()));
                Ok(())
            },
            |s, share, sink| {
                seen.lock().unwrap().push((*s, share.clone()));
                for k in 0..share.len() {
                    sink(k, Ok(vec![(share.start + k) as u8]))?;
                }
                Ok(())
            },
        )
        .unwrap();
        got.sort();
        assert_eq!(got, (0..7).map(|i| (i, vec![i as u8])).collect::<Vec<_>>());
        assert_eq!(seen.lock().unwrap().len(), 3);
    }
}
