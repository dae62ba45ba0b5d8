//! One graph run for several threads at once: the calls of the cameras whose frame is ready are
//! concatenated along the batch dimension and run as one, with a deadline so a slow or dead camera
//! never holds the others back for more than that.
//!
//! A [`BatchedRunner`] is a [`Runner`]; [`Runner::share`] gives each thread (camera) its own handle
//! on the same batcher thread, which owns the wrapped runner (one loaded copy of the graph, on any
//! back-end). The batcher waits after the first call of a round until every *active* handle has
//! called, `max_batch` calls are waiting, or the deadline has passed, then runs them as one batch
//! and hands each caller its rows. A handle that misses a deadline stops being waited for until it
//! calls again, so a dead camera costs the others one deadline, not one per frame.
//!
//! Batching pays where a larger batch costs less per frame (a GPU). On one CPU core it measured
//! slower than batch-1 calls and is not bit-identical to them (docs/deployment.md), so the edge
//! batches only when `model.max_batch` asks for it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Array, InferError, Runner};

/// How calls are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most calls in one run (>= 1).
    pub max_batch: usize,
    /// Longest wait, from a round's first call, for the other active handles' calls.
    pub deadline: Duration,
}

/// Counters of a batcher (shared by its handles).
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Calls answered.
    pub calls: AtomicU64,
    /// Runs of the wrapped graph (calls / runs = the mean batch).
    pub runs: AtomicU64,
    /// Rounds that ended on the deadline with an active handle missing.
    pub deadline_misses: AtomicU64,
    /// Largest batch run.
    pub largest: AtomicU64,
}

/// [`BatchStats`] read at one moment, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchCounts {
    pub calls: u64,
    pub runs: u64,
    pub largest: u64,
    pub deadline_misses: u64,
}

impl BatchStats {
    /// The counters now.
    pub fn counts(&self) -> BatchCounts {
        let (calls, runs, deadline_misses, largest) = self.snapshot();
        BatchCounts { calls, runs, largest, deadline_misses }
    }

    /// (calls, runs, deadline misses, largest batch).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        (l(&self.calls), l(&self.runs), l(&self.deadline_misses), l(&self.largest))
    }
}

type Inputs = Vec<(String, Vec<usize>, Vec<f32>)>;
type Reply = Result<Vec<Array>, InferError>;

enum Msg {
    Join(u64),
    Leave(u64),
    Call { id: u64, inputs: Inputs, reply: SyncSender<Reply> },
}

/// A handle on a batcher thread: a [`Runner`] whose calls may run together with other handles'.
pub struct BatchedRunner {
    id: u64,
    tx: Sender<Msg>,
    backend: String,
    next_id: Arc<AtomicU64>,
    stats: Arc<BatchStats>,
}

impl BatchedRunner {
    /// Starts a batcher thread owning `inner` and returns its first handle. The thread ends when
    /// the last handle is dropped.
    pub fn spawn(inner: Box<dyn Runner>, opts: BatchOptions) -> Result<Self, InferError> {
        if opts.max_batch == 0 {
            return Err(InferError::Input { name: "max_batch".into(), reason: "must be >= 1".into() });
        }
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(BatchStats::default());
        let backend = inner.backend();
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name(format!("batch-{backend}"))
            .spawn(move || serve(inner, opts, rx, &thread_stats))
            .map_err(|e| InferError::Backend { backend: backend.clone(), reason: format!("cannot start the batcher thread: {e}") })?;
        let first = BatchedRunner { id: 0, tx, backend, next_id: Arc::new(AtomicU64::new(1)), stats };
        let _ = first.tx.send(Msg::Join(0));
        Ok(first)
    }

    /// The batcher's counters.
    pub fn stats(&self) -> Arc<BatchStats> {
        self.stats.clone()
    }

    fn handle(&self) -> BatchedRunner {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Msg::Join(id));
        BatchedRunner { id, tx: self.tx.clone(), backend: self.backend.clone(), next_id: self.next_id.clone(), stats: self.stats.clone() }
    }
}

impl Drop for BatchedRunner {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Leave(self.id));
    }
}

impl Runner for BatchedRunner {
    fn backend(&self) -> String {
        format!("{} (batched)", self.backend)
    }

    fn share(&self) -> Option<Box<dyn Runner>> {
        Some(Box::new(self.handle()))
    }

    fn batch_stats(&self) -> Option<Arc<BatchStats>> {
        Some(self.stats.clone())
    }

    fn run(&mut self, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError> {
        let gone = || InferError::Run { backend: "batcher", graph: self.backend.clone(), reason: "the batcher thread has stopped".into() };
        let (reply, answer) = mpsc::sync_channel(1);
        let owned = inputs.iter().map(|(n, s, d)| (n.to_string(), s.to_vec(), d.to_vec())).collect();
        self.tx.send(Msg::Call { id: self.id, inputs: owned, reply }).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

/// One runner shared by several threads, one call at a time, none waiting for another's: for a graph
/// called irregularly and with a varying batch (the appearance cue's boxes).
#[derive(Clone)]
pub struct Serialized {
    inner: Arc<Mutex<Box<dyn Runner>>>,
    backend: String,
}

impl Serialized {
    pub fn new(inner: Box<dyn Runner>) -> Self {
        let backend = inner.backend();
        Serialized { inner: Arc::new(Mutex::new(inner)), backend }
    }
}

impl Runner for Serialized {
    fn backend(&self) -> String {
        format!("{} (shared)", self.backend)
    }

    fn share(&self) -> Option<Box<dyn Runner>> {
        Some(Box::new(self.clone()))
    }

    fn run(&mut self, inputs: &[(&str, &[usize], &[f32])]) -> Result<Vec<Array>, InferError> {
        // A call that panicked inside the runtime leaves the runner as it was between calls.
        let mut inner = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.run(inputs)
    }
}

struct Pending {
    id: u64,
    inputs: Inputs,
    reply: SyncSender<Reply>,
}

/// The batcher's loop: rounds of calls until every handle has left.
fn serve(inner: Box<dyn Runner>, opts: BatchOptions, rx: Receiver<Msg>, stats: &BatchStats) {
    let backend = inner.backend();
    serve_rounds(inner, opts, rx, stats);
    let (calls, runs, misses, largest) = stats.snapshot();
    tracing::info!(backend, calls, runs, mean_batch = calls as f64 / runs.max(1) as f64, largest, deadline_misses = misses, "batcher stopped");
}

fn serve_rounds(mut inner: Box<dyn Runner>, opts: BatchOptions, rx: Receiver<Msg>, stats: &BatchStats) {
    // Handles waited for: those that joined, less those that left or missed the last deadline (a
    // call makes a handle active again). The loop ends when every handle is gone (the channel closes).
    let mut active: BTreeSet<u64> = BTreeSet::new();
    loop {
        let mut pending: Vec<Pending> = Vec::new();
        // A round starts with its first call.
        let start = loop {
            let Ok(msg) = rx.recv() else { return };
            if let Some(p) = admit(msg, &mut active) {
                pending.push(p);
                break Instant::now();
            }
        };
        let waiting = |pending: &[Pending], active: &BTreeSet<u64>| pending.len() < opts.max_batch && active.iter().any(|a| !pending.iter().any(|p| p.id == *a));
        let mut missed = false;
        while waiting(&pending, &active) {
            let Some(left) = opts.deadline.checked_sub(start.elapsed()).filter(|d| !d.is_zero()) else {
                missed = true;
                break;
            };
            match rx.recv_timeout(left) {
                Ok(msg) => pending.extend(admit(msg, &mut active)),
                Err(RecvTimeoutError::Timeout) => {
                    missed = true;
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if missed {
            stats.deadline_misses.fetch_add(1, Ordering::Relaxed);
            active.retain(|a| pending.iter().any(|p| p.id == *a));
        }
        run_round(inner.as_mut(), pending, stats);
    }
}

/// Updates the handles waited for on a join or leave; a call comes back as pending (its handle active again).
fn admit(msg: Msg, active: &mut BTreeSet<u64>) -> Option<Pending> {
    match msg {
        Msg::Join(id) => {
            active.insert(id);
            None
        }
        Msg::Leave(id) => {
            active.remove(&id);
            None
        }
        Msg::Call { id, inputs, reply } => {
            active.insert(id);
            Some(Pending { id, inputs, reply })
        }
    }
}

/// Runs the round's calls: those with the same input names and per-sample shapes as one batch (in
/// arrival order), each caller answered with its rows; a batch that fails is retried call by call so
/// one caller's error stays its own.
fn run_round(inner: &mut dyn Runner, pending: Vec<Pending>, stats: &BatchStats) {
    let mut groups: Vec<Vec<Pending>> = Vec::new();
    for p in pending {
        match groups.iter_mut().find(|g| same_layout(&g[0].inputs, &p.inputs)) {
            Some(g) => g.push(p),
            None => groups.push(vec![p]),
        }
    }
    for group in groups {
        stats.runs.fetch_add(1, Ordering::Relaxed);
        stats.calls.fetch_add(group.len() as u64, Ordering::Relaxed);
        stats.largest.fetch_max(group.len() as u64, Ordering::Relaxed);
        if group.len() == 1 {
            let p = &group[0];
            let _ = p.reply.send(inner.run(&borrowed(&p.inputs)));
            continue;
        }
        match run_together(inner, &group) {
            Ok(split) => {
                for (p, out) in group.iter().zip(split) {
                    let _ = p.reply.send(Ok(out));
                }
            }
            Err(_) => {
                for p in &group {
                    let _ = p.reply.send(inner.run(&borrowed(&p.inputs)));
                }
            }
        }
    }
}

fn borrowed(inputs: &Inputs) -> Vec<(&str, &[usize], &[f32])> {
    inputs.iter().map(|(n, s, d)| (n.as_str(), s.as_slice(), d.as_slice())).collect()
}

fn same_layout(a: &Inputs, b: &Inputs) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((n, s, _), (m, t, _))| n == m && !s.is_empty() && s.len() == t.len() && s[1..] == t[1..])
}

/// The group's inputs concatenated along dimension 0, run once, and the outputs split back by each
/// call's batch.
fn run_together(inner: &mut dyn Runner, group: &[Pending]) -> Result<Vec<Vec<Array>>, InferError> {
    let sizes: Vec<usize> = group.iter().map(|p| p.inputs[0].1[0]).collect();
    let total: usize = sizes.iter().sum();
    let mut joined: Inputs = Vec::new();
    for (k, (name, shape, _)) in group[0].inputs.iter().enumerate() {
        let mut s = shape.clone();
        s[0] = group.iter().map(|p| p.inputs[k].1[0]).sum();
        let data: Vec<f32> = group.iter().flat_map(|p| p.inputs[k].2.iter().copied()).collect();
        joined.push((name.clone(), s, data));
    }
    let out = inner.run(&borrowed(&joined))?;
    let mut split: Vec<Vec<Array>> = vec![Vec::with_capacity(out.len()); group.len()];
    for a in out {
        if a.shape.first() != Some(&total) || a.data.len() % total != 0 {
            return Err(InferError::Run { backend: "batcher", graph: inner.backend(), reason: format!("an output of shape {:?} for a batch of {total}", a.shape) });
        }
        let row = a.data.len() / total;
        let mut at = 0;
        for (i, &n) in sizes.iter().enumerate() {
            let mut shape = a.shape.clone();
            shape[0] = n;
            split[i].push(Array { shape, data: a.data[at * row..(at + n) * row].to_vec() });
            at += n;
        }
    }
    Ok(split)
}
