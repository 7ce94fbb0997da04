//! Flushing a batch: the chunks of its files fetched once each in the store's order, decoded in
//! groups on rayon under a byte budget, written at their offsets, each file finished by the
//! thread that settles its last chunk; and the `--stdout` stream.

use super::pending::{Finisher, Pending, Plain};
use super::{Cause, Extractor, Run};
use crate::error::{Error, Result};
use crate::fetch::Budget;
use crate::format::item::ChunkRef;
use crate::id::ObjectId;
use crate::key::{Key, Sealed};
use crate::progress::Progress;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where chunks are decoded.
#[derive(Clone)]
pub(super) enum Workers {
    /// The global rayon pool.
    Global,
    /// The caller's pool, or one made for the restore.
    Pool(Arc<rayon::ThreadPool>),
}

impl Workers {
    /// Runs `op` on this thread, with what it spawns running on the pool.
    pub(super) fn scope<'s, R>(&self, op: impl FnOnce(&rayon::Scope<'s>) -> R) -> R {
        match self {
            Workers::Global => rayon::in_place_scope(op),
            Workers::Pool(p) => p.in_place_scope(op),
        }
    }

    /// Runs `op` in the pool (its parallel iterators use the pool's threads).
    pub(super) fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match self {
            Workers::Global => op(),
            Workers::Pool(p) => p.install(op),
        }
    }

    /// The pool, unless it is the global one.
    pub(super) fn pool(&self) -> Option<Arc<rayon::ThreadPool>> {
        match self {
            Workers::Global => None,
            Workers::Pool(p) => Some(p.clone()),
        }
    }

    /// The pool's number of threads.
    pub(super) fn threads(&self) -> usize {
        match self {
            Workers::Global => rayon::current_num_threads(),
            Workers::Pool(p) => p.current_num_threads(),
        }
    }
}

/// A decode group is sent to the workers once its stored plus plaintext bytes reach this.
const GROUP_BYTES: u64 = 32 << 20;

/// How many files a batch may hold open at once: every pending file keeps its descriptor (and
/// its directory's) until it is finalized. The soft `RLIMIT_NOFILE` is raised to the hard limit
/// first (it is often 1024 while the hard limit is far higher); a quarter of the descriptors
/// stays free for segments, the directory cache (an eighth) and the rest.
pub(super) fn open_file_budget() -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        // macOS refuses more than OPEN_MAX for the soft limit.
        let want = lim.maximum.map_or(1 << 20, |m| m.min(1 << 20));
        let raised = rustix::process::Rlimit {
            current: Some(want),
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            lim = getrlimit(Resource::Nofile);
        }
    }
    let soft = lim.current.unwrap_or(1 << 20).min(1 << 20) as usize;
    // (two descriptors per pending file at worst: the file's, and its directory's when the
    // directory cache has let it go)
    ((soft - soft / 4) / 2).saturating_sub(64).max(16)
}

fn is_zero(data: &[u8]) -> bool {
    let mut words = data.chunks_exact(16);
    words.all(|w| u128::from_ne_bytes(w.try_into().expect("16 bytes")) == 0)
        && words.remainder().iter().all(|b| *b == 0)
}

impl<'r> Extractor<'r> {
    /// Fetches, decodes and writes the chunks of the pending files, then finalizes them.
    pub(super) fn flush(&self, run: &mut Run<'_>) -> Result<()> {
        if run.batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let r = self.flush_batch(run);
        run.flush_time += started.elapsed();
        r
    }

    fn flush_batch(&self, run: &mut Run<'_>) -> Result<()> {
        let batch = std::mem::take(&mut run.batch);
        run.batch_bytes = 0;
        run.batch_gen += 1;
        // chunk id → [(file, offset, size)]
        let mut targets: HashMap<ObjectId, Vec<(usize, u64, u64)>> = HashMap::new();
        let mut order: Vec<ObjectId> = Vec::new();
        for (fi, p) in batch.iter().enumerate() {
            let mut off = 0u64;
            for c in &p.chunks {
                let t = targets.entry(c.id).or_insert_with(|| {
                    order.push(c.id);
                    Vec::new()
                });
                t.push((fi, off, c.size));
                off += c.size;
            }
        }
        let budget = Arc::new(Budget::new(self.opts.inflight_bytes));
        let chunks_done = AtomicU64::new(0);
        let (store, key, sparse) = (self.repo.store(), self.repo.key(), self.opts.sparse);
        // Files are finished (metadata, rename, links) by the thread that settles their last
        // chunk, in parallel with the rest of the batch.
        let fin = Finisher {
            ex: self,
            dest: run.dest.as_ref(),
            owners: &run.owners,
        };
        let archive = &run.archive;
        let fail_targets = |ts: &[(usize, u64, u64)], msg: &str, cause: Cause| {
            for (fi, _, _) in ts {
                let p = &batch[*fi];
                p.error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert_with(|| (format!("{msg} (archive {archive})"), cause));
                p.settle(&fin);
            }
        };
        // The fetch loop runs on this thread (in_place_scope), so every worker of the pool decodes and
        // a full byte budget never blocks a worker that a decode job needs.
        let (decode_ns, write_ns, read_bytes) =
            (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let fetch_start = std::time::Instant::now();
        let mut in_sink = std::time::Duration::ZERO;
        // Objects are decoded in groups (Key::GROUP objects, or fewer when they are big), so
        // that the MACs and ids of a group are hashed side by side and small objects do not
        // cost a task each.
        let decode_group = |group: Vec<(ObjectId, Vec<u8>)>| {
            let t0 = std::time::Instant::now();
            let mut sealed: Vec<Sealed> = group
                .into_iter()
                .map(|(id, data)| Sealed {
                    id: Some(id),
                    // (the archive's size, authenticated with the item stream: it sizes the
                    // plaintext buffer, whatever its size)
                    size_hint: usize::try_from(targets[&id][0].2).ok(),
                    data,
                })
                .collect();
            let stored: u64 = sealed.iter().map(|o| o.data.len() as u64).sum();
            let opened = key.open_objects(&mut sealed);
            // The stored bytes are gone; each plaintext holds its share until it is written.
            budget.give(stored);
            let t1 = std::time::Instant::now();
            decode_ns.fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
            for (o, opened) in sealed.iter().zip(opened) {
                let id = o.id.unwrap_or_default();
                let ts = &targets[&id];
                let expected = ts[0].2;
                match opened {
                    Ok(plain) if plain.len() as u64 != expected => {
                        budget.give(expected);
                        fail_targets(
                            ts,
                            &format!(
                                "chunk {} has {} bytes, the archive says {expected}",
                                hex::encode(id),
                                plain.len(),
                            ),
                            Cause::Damaged,
                        )
                    }
                    Ok(plain) => {
                        chunks_done.fetch_add(1, Ordering::Relaxed);
                        let skip = sparse && is_zero(&plain);
                        let plain = Arc::new(Plain {
                            data: plain,
                            cost: expected,
                            budget: budget.clone(),
                        });
                        for (fi, off, _) in ts {
                            batch[*fi].write(*off, plain.clone(), skip, &fin);
                        }
                    }
                    Err(e) => {
                        budget.give(expected);
                        fail_targets(ts, &e.located(), Cause::of_error(&e))
                    }
                }
            }
            write_ns.fetch_add(t1.elapsed().as_nanos() as u64, Ordering::Relaxed);
        };
        // (a group never takes more than a quarter of the budget, so fetching goes on while
        // groups are decoded)
        let group_bytes = GROUP_BYTES.min(self.opts.inflight_bytes / 4).max(1);
        let workers = run.workers.clone();
        let fetch_result = workers.scope(|s| {
            // The temporary files first, one task per directory: creating files in one directory
            // from several threads serializes on its lock (and the waiters spin), while
            // different directories proceed in parallel. Decode tasks queue behind these.
            let batch = &batch;
            let mut start = 0;
            while start < batch.len() {
                let same_dir = |p: &Pending| match (&p.dir, &batch[start].dir) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    _ => false,
                };
                let end = start
                    + batch[start..]
                        .iter()
                        .take_while(|p| same_dir(p))
                        .count()
                        .max(1);
                if batch[start].dir.is_some() {
                    s.spawn(move |_| {
                        for p in &batch[start..end] {
                            let _ = p.open();
                        }
                    });
                }
                start = end;
            }
            let mut group: Vec<(ObjectId, Vec<u8>)> = Vec::with_capacity(Key::GROUP);
            let mut group_cost = 0u64;
            let (budget, decode_group) = (&budget, &decode_group);
            let spawn = |group: Vec<(ObjectId, Vec<u8>)>, cost: u64| {
                budget.take(cost);
                s.spawn(move |_| decode_group(group));
            };
            let interrupt = &self.opts.interrupt;
            let fetched = store.get_many(&order, &mut |i, res| {
                if interrupt
                    .as_ref()
                    .is_some_and(|f| f.load(Ordering::Relaxed))
                {
                    // What is in flight is still written and finished; the rest is removed.
                    return Err(Error::Interrupted);
                }
                let sink_start = std::time::Instant::now();
                let id = order[i];
                match res {
                    Ok(obj) => {
                        read_bytes.fetch_add(obj.len() as u64, Ordering::Relaxed);
                        group_cost = group_cost
                            .saturating_add(obj.len() as u64)
                            .saturating_add(targets[&id][0].2);
                        group.push((id, obj));
                        if group.len() >= Key::GROUP || group_cost >= group_bytes {
                            let full =
                                std::mem::replace(&mut group, Vec::with_capacity(Key::GROUP));
                            spawn(full, std::mem::take(&mut group_cost));
                        }
                    }
                    Err(e) => fail_targets(
                        &targets[&id],
                        &format!("chunk {}: {e}", hex::encode(id)),
                        Cause::of_error(&e),
                    ),
                }
                in_sink += sink_start.elapsed();
                Ok(())
            });
            if !group.is_empty() {
                spawn(group, group_cost);
            }
            fetched
        });
        run.summary.chunks += chunks_done.load(Ordering::Relaxed);
        run.summary.read_bytes += read_bytes.load(Ordering::Relaxed);
        let st = &mut run.summary.stages;
        st.fetch += fetch_start.elapsed().saturating_sub(in_sink);
        st.decode += std::time::Duration::from_nanos(decode_ns.load(Ordering::Relaxed));
        st.write += std::time::Duration::from_nanos(write_ns.load(Ordering::Relaxed));
        let finalize_start = std::time::Instant::now();
        if let Err(e) = fetch_result {
            // The source is gone (e.g. the connection broke): what was finished is in place and
            // reported, the rest of the batch is removed.
            for p in &batch {
                let finished = p.notes.lock().unwrap_or_else(|e| e.into_inner()).is_some();
                if finished {
                    self.finalize(run, p);
                } else {
                    p.remove_temp();
                }
            }
            run.dir_after.clear();
            return Err(e);
        }
        let mut dirs = std::mem::take(&mut run.dir_after).into_iter().peekable();
        for (i, p) in batch.iter().enumerate() {
            while let Some((_, rel, item)) = dirs.next_if(|(n, _, _)| *n <= i) {
                self.dir_meta(run, &rel, &item);
            }
            self.finalize(run, p);
        }
        for (_, rel, item) in dirs {
            self.dir_meta(run, &rel, &item);
        }
        run.summary.stages.finalize += finalize_start.elapsed();
        Ok(())
    }

    /// Writes the content of one file to `out`, its chunks decoded in parallel a window ahead.
    pub(super) fn stream_to(
        &self,
        out: &mut dyn Write,
        chunks: &[ChunkRef],
        display: &str,
        run: &mut Run<'_>,
    ) -> Result<()> {
        use rayon::prelude::*;
        let total: u64 = chunks.iter().map(|c| c.size).sum();
        // Decoded a window ahead, in parallel: at most so many chunks and (but for a single
        // bigger one) the in-flight byte budget.
        let most = run.workers.threads().max(1) * 4;
        let mut start = 0;
        while start < chunks.len() {
            if run.interrupted() {
                return Err(Error::Interrupted);
            }
            let mut end = start;
            let mut bytes = 0u64;
            while end < chunks.len()
                && end - start < most
                && (end == start
                    || bytes.saturating_add(chunks[end].size) <= self.opts.inflight_bytes)
            {
                bytes = bytes.saturating_add(chunks[end].size);
                end += 1;
            }
            let window = &chunks[start..end];
            start = end;
            let decoded: Vec<Result<Vec<u8>>> = run.workers.install(|| {
                window
                    .par_iter()
                    .map(|c| {
                        let data = self.repo.get_object(&c.id, usize::try_from(c.size).ok())?;
                        if data.len() as u64 != c.size {
                            return Err(Error::Integrity(format!(
                                "chunk has {} bytes, the archive says {}",
                                data.len(),
                                c.size
                            )));
                        }
                        Ok(data)
                    })
                    .collect()
            });
            for (c, d) in window.iter().zip(decoded) {
                match d {
                    Ok(data) => {
                        run.summary.chunks += 1;
                        run.summary.bytes = run.summary.bytes.saturating_add(data.len() as u64);
                        Progress::count(self.opts.progress.as_deref(), 0, data.len() as u64);
                        out.write_all(&data)
                            .map_err(|e| Error::io(super::OUTPUT, e))?;
                    }
                    Err(e) => {
                        run.fail(
                            format!(
                                "{display}: chunk {}: {e} (archive {})",
                                hex::encode(c.id),
                                run.archive
                            ),
                            Cause::of_error(&e),
                            total,
                        );
                        return Ok(());
                    }
                }
            }
        }
        run.summary.files += 1;
        Progress::count(self.opts.progress.as_deref(), 1, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Workers;
    use std::sync::Arc;

    /// With a pool of its own, what the scope spawns and what `install` runs is on that pool's
    /// threads, while the scope's own closure stays on the calling thread.
    #[test]
    fn a_pool_of_its_own_runs_the_work() {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap(),
        );
        let w = Workers::Pool(pool.clone());
        assert_eq!(w.threads(), 2);
        let (tx, rx) = std::sync::mpsc::channel();
        let caller = w.scope(|s| {
            for _ in 0..8 {
                let tx = tx.clone();
                let pool = pool.clone();
                s.spawn(move |_| tx.send(pool.current_thread_index().is_some()).unwrap());
            }
            pool.current_thread_index()
        });
        drop(tx);
        assert_eq!(
            caller, None,
            "the scope's closure runs on the calling thread"
        );
        assert!(
            rx.iter().all(|on_pool| on_pool),
            "a spawned task ran elsewhere"
        );
        assert!(w.install(|| pool.current_thread_index().is_some()));
        assert_eq!(
            Workers::Global.install(|| pool.current_thread_index()),
            None
        );
    }
}
