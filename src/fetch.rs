//! The fetch/decode engine every reader shares (extract, check, export-tar, the item stream,
//! file reading): objects fetched in the store's preferred order (segment order locally,
//! pipelined remotely), decoded in groups on rayon (MACs and ids of a group hashed side by side,
//! decryption in place, decompression, id check), with a byte budget bounding what is in flight.

use crate::error::{Error, Result};
use crate::id::{ObjectId, MANIFEST_ID};
use crate::key::{Key, Sealed};
use crate::store::Store;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Fetches and verifies many objects in parallel: they are read in the store's preferred
/// order, decoded in groups on rayon (MAC, decryption, decompression, id check; the manifest's
/// all-zero id is not checked), and `f` gets each object's index in `ids` with what became of
/// it, on whichever thread has it. At most `budget` stored bytes are in flight.
///
/// # Errors
/// The store failing as a whole (a dropped connection that cannot be reopened); single
/// objects that fail are handed to `f` as [`Opened::Unreadable`] or [`Opened::Damaged`].
pub(crate) fn open_many(
    store: &dyn Store,
    key: &Key,
    ids: &[ObjectId],
    budget: u64,
    f: &(dyn Fn(usize, Opened) + Sync),
) -> Result<()> {
    open_many_with(store, key, ids, &[], budget, None, f)
}

/// [`open_many`] with the expected plaintext size of each object where known (`sizes[i]` for
/// `ids[i]`; an empty slice for none), stopping with [`Error::Interrupted`] (what is in flight is
/// still handed to `f`) once `interrupt` is set.
///
/// # Errors
/// As [`open_many`], and [`Error::Interrupted`].
pub(crate) fn open_many_with(
    store: &dyn Store,
    key: &Key,
    ids: &[ObjectId],
    sizes: &[Option<usize>],
    budget: u64,
    interrupt: Option<&AtomicBool>,
    f: &(dyn Fn(usize, Opened) + Sync),
) -> Result<()> {
    let budget = Budget::new(budget);
    let decode = |group: Vec<(usize, Vec<u8>)>| {
        let index: Vec<usize> = group.iter().map(|(i, _)| *i).collect();
        let mut sealed: Vec<Sealed> = group
            .into_iter()
            .map(|(i, data)| Sealed {
                id: Some(ids[i]).filter(|id| *id != MANIFEST_ID),
                data,
                size_hint: sizes.get(i).copied().flatten(),
            })
            .collect();
        for (i, r) in index.into_iter().zip(key.open_objects(&mut sealed)) {
            f(i, r.map_or_else(Opened::Damaged, Opened::Plain));
        }
    };
    rayon::in_place_scope(|s| {
        let (budget, decode) = (&budget, &decode);
        let spawn = |group: Vec<(usize, Vec<u8>)>, cost: u64| {
            budget.take(cost);
            s.spawn(move |_| {
                decode(group);
                budget.give(cost);
            });
        };
        let mut group = Vec::with_capacity(Key::GROUP);
        let mut cost = 0u64;
        let fetched = store.get_many(ids, &mut |i, r| {
            if interrupt.is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
                return Err(Error::Interrupted);
            }
            match r {
                Ok(obj) => {
                    cost += obj.len() as u64;
                    group.push((i, obj));
                    if group.len() >= Key::GROUP || cost >= budget.limit / 4 {
                        spawn(std::mem::take(&mut group), std::mem::take(&mut cost));
                    }
                }
                Err(e) => f(i, Opened::Unreadable(e)),
            }
            Ok(())
        });
        if !group.is_empty() {
            spawn(group, cost);
        }
        fetched
    })
}

/// What became of one object of [`open_many`].
#[derive(Debug)]
pub enum Opened {
    /// Its verified plaintext.
    Plain(Vec<u8>),
    /// The store could not deliver it (missing, unreadable, failing its segment CRC).
    Unreadable(Error),
    /// It was delivered but failed verification (MAC, envelope, decompression, id).
    Damaged(Error),
}

/// Bytes in flight between a fetch loop and the threads that consume what it fetched: the
/// fetch loop waits while taking more would pass the limit (a single grant larger than the
/// limit is let through when nothing else is in flight).
pub(crate) struct Budget {
    used: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
    /// The limit.
    pub(crate) limit: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: u64) -> Budget {
        Budget {
            used: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
            limit: limit.max(1),
        }
    }

    /// Takes `n` bytes, waiting for room.
    pub(crate) fn take(&self, n: u64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && used.saturating_add(n) > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used = used.saturating_add(n);
    }

    /// Gives `n` bytes back.
    pub(crate) fn give(&self, n: u64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(n);
        self.freed.notify_all();
    }
}

/// Fetches and decodes item-stream chunks ahead of the parser.
pub(crate) struct ChunkPrefetcher<'a> {
    store: &'a dyn Store,
    key: &'a Key,
    ids: Vec<ObjectId>,
    next: usize,
    ready: VecDeque<Result<Vec<u8>>>,
    window: usize,
    /// `(id, plaintext length, stored length)` of every chunk fetched, when recording.
    pub(crate) record: Option<Vec<(ObjectId, usize, usize)>>,
    /// Where chunks are decoded: this pool, or the global one.
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl<'a> ChunkPrefetcher<'a> {
    pub(crate) fn new(store: &'a dyn Store, key: &'a Key, ids: Vec<ObjectId>) -> Self {
        let window = (rayon::current_num_threads() * 4).clamp(4, 64);
        ChunkPrefetcher {
            store,
            key,
            ids,
            next: 0,
            ready: VecDeque::new(),
            window,
            record: None,
            pool: None,
        }
    }

    /// Decodes on `pool` (when given) instead of the global rayon pool.
    pub(crate) fn on_pool(mut self, pool: Option<Arc<rayon::ThreadPool>>) -> Self {
        if let Some(p) = &pool {
            self.window = (p.current_num_threads() * 4).clamp(4, 64);
        }
        self.pool = pool;
        self
    }

    fn fill(&mut self) {
        let end = (self.next + self.window).min(self.ids.len());
        let batch = &self.ids[self.next..end];
        let (store, key) = (self.store, self.key);
        // Fetch through get_many (pipelined on remote stores), then decode in parallel.
        let mut raw: Vec<Option<Result<Vec<u8>>>> = (0..batch.len()).map(|_| None).collect();
        let fetched = store.get_many(batch, &mut |i, r| {
            raw[i] = Some(r);
            Ok(())
        });
        let raw: Vec<Result<Sealed>> = batch
            .iter()
            .zip(raw)
            .map(|(id, obj)| match (obj, &fetched) {
                (Some(r), _) => r.map(|data| Sealed {
                    id: Some(*id),
                    data,
                    size_hint: None,
                }),
                (None, Err(e)) => Err(Error::Other(e.to_string())),
                (None, Ok(())) => Err(Error::Other("object not delivered".into())),
            })
            .collect();
        // Decode in groups (MACs and ids hashed side by side), the groups in parallel.
        let mut groups: Vec<Vec<Result<Sealed>>> = Vec::new();
        for r in raw {
            match groups.last_mut() {
                Some(g) if g.len() < Key::GROUP => g.push(r),
                _ => groups.push(vec![r]),
            }
        }
        let decode = || -> Vec<Result<(Vec<u8>, usize)>> {
            groups
                .into_par_iter()
                .flat_map_iter(|group| {
                    let mut sealed = Vec::with_capacity(group.len());
                    let mut slots = Vec::with_capacity(group.len());
                    for r in group {
                        match r {
                            Ok(s) => {
                                slots.push(Ok(s.data.len()));
                                sealed.push(s);
                            }
                            Err(e) => slots.push(Err(e)),
                        }
                    }
                    let mut opened = key.open_objects(&mut sealed).into_iter();
                    slots
                        .into_iter()
                        .map(|slot| {
                            let stored = slot?;
                            let plain = opened.next().unwrap_or_else(|| {
                                Err(Error::Other("object not decoded".into()))
                            })?;
                            Ok((plain, stored))
                        })
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let decoded = match &self.pool {
            Some(pool) => pool.install(decode),
            None => decode(),
        };
        for (id, d) in batch.iter().zip(decoded) {
            if let (Some(rec), Ok((plain, stored))) = (self.record.as_mut(), &d) {
                rec.push((*id, plain.len(), *stored));
            }
            self.ready.push_back(d.map(|(plain, _)| plain));
        }
        self.next = end;
    }

    /// The next chunk's plaintext, or `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Option<Result<Vec<u8>>> {
        if self.ready.is_empty() && self.next < self.ids.len() {
            self.fill();
        }
        self.ready.pop_front()
    }
}
