//! Caption refresh on its own worker, within a compute budget; scoring never waits on it.
//!
//! - [`CaptionScheduler`] (pure, clock injected): a refresh may start when the worker is idle, at least
//!   `period_ms` after the previous start, and when the time spent captioning so far stays within
//!   `max_share` of the wall time since the first offer (so a slow provider is called less often, not
//!   more). A result later than `deadline_ms` is discarded as stale (its time still counts).
//! - [`CaptionWorker`]: a thread that runs provider + sentence encoder on the clip it is handed;
//!   `offer` and `poll` never block (single-slot hand-over both ways).
//!
//! The text input of the decoder is the feature of the previous caption and the semantic error's
//! target the latest one — as in training, where the input caption is one step older than the target,
//! here one refresh older. Until two captions exist, both are the latest.

use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};
#[cfg(feature = "semantic")]
use sfn_captions::{CaptionProvider, Clip};

/// Caption refresh settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptionBudget {
    /// Minimum time between refresh starts.
    pub period_ms: u64,
    /// Largest share of wall time the caption stage may use (0 < share <= 1).
    pub max_share: f32,
    /// A refresh that takes longer is discarded as stale.
    pub deadline_ms: u64,
}

impl Default for CaptionBudget {
    fn default() -> Self {
        CaptionBudget { period_ms: 2000, max_share: 0.1, deadline_ms: 1500 }
    }
}

/// Counters of the caption stage.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptionStats {
    /// Refreshes started.
    pub started: u64,
    /// Results used.
    pub refreshed: u64,
    /// Offers not started because of the period, the budget, or a busy worker.
    pub skipped_period: u64,
    pub skipped_budget: u64,
    pub skipped_busy: u64,
    /// Results discarded: past the deadline, or failed.
    pub stale: u64,
    pub failed: u64,
    /// Total ms spent captioning.
    pub busy_ms: u64,
}

/// Why an offer did not start a refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Start,
    Busy,
    Period,
    Budget,
}

/// Pure refresh scheduling.
#[derive(Clone, Debug)]
pub struct CaptionScheduler {
    cfg: CaptionBudget,
    first_ms: Option<u64>,
    last_start: Option<u64>,
    in_flight: Option<u64>,
    pub stats: CaptionStats,
}

impl CaptionScheduler {
    pub fn new(cfg: CaptionBudget) -> Self {
        let max_share = if cfg.max_share.is_finite() { cfg.max_share.clamp(1e-4, 1.0) } else { 0.1 };
        CaptionScheduler { cfg: CaptionBudget { max_share, ..cfg }, first_ms: None, last_start: None, in_flight: None, stats: CaptionStats::default() }
    }

    /// Whether a refresh may start at `now` (ms); records the start when it may.
    pub fn offer(&mut self, now: u64) -> Decision {
        let first = *self.first_ms.get_or_insert(now);
        if self.in_flight.is_some() {
            self.stats.skipped_busy += 1;
            return Decision::Busy;
        }
        if self.last_start.is_some_and(|s| now < s + self.cfg.period_ms) {
            self.stats.skipped_period += 1;
            return Decision::Period;
        }
        // busy <= share * elapsed, counting the wall time the next call will at least take: none known,
        // so check the past only.
        let elapsed = now.saturating_sub(first) as f64;
        if self.stats.busy_ms as f64 > f64::from(self.cfg.max_share) * elapsed {
            self.stats.skipped_budget += 1;
            return Decision::Budget;
        }
        self.last_start = Some(now);
        self.in_flight = Some(now);
        self.stats.started += 1;
        Decision::Start
    }

    /// The refresh started at the last `Start` finished at `now`; true when its result may be used.
    pub fn finished(&mut self, now: u64, ok: bool) -> bool {
        let Some(start) = self.in_flight.take() else { return false };
        let took = now.saturating_sub(start);
        self.stats.busy_ms += took;
        if !ok {
            self.stats.failed += 1;
            false
        } else if took > self.cfg.deadline_ms {
            self.stats.stale += 1;
            false
        } else {
            self.stats.refreshed += 1;
            true
        }
    }

    /// Whether a refresh is running.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }
}

/// A caption embedded: what the decoder reads.
#[derive(Clone, Debug, PartialEq)]
pub struct TextFeature {
    pub caption: String,
    pub embedding: Vec<f32>,
    /// Last frame of the captioned clip.
    pub frame: u64,
}

/// Something that embeds captions (the MiniLM encoder; a test double in tests).
pub trait Embedder: Send {
    fn embed(&mut self, text: &str) -> Result<Vec<f32>, String>;
}

#[cfg(feature = "semantic")]
impl Embedder for sfn_text::SentenceEncoder {
    fn embed(&mut self, text: &str) -> Result<Vec<f32>, String> {
        sfn_text::SentenceEncoder::embed(self, &[text]).map_err(|e| e.to_string()).and_then(|mut v| v.pop().ok_or_else(|| "no embedding".into()))
    }
}

/// A clip handed to the worker (owned copies of the 4 frames).
pub struct ClipJob {
    pub clip: String,
    pub frame: u64,
    pub frames: [Vec<f32>; 4],
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// Caption + embedding thread.
pub struct CaptionWorker {
    jobs: Option<SyncSender<Box<ClipJob>>>,
    results: Receiver<Result<TextFeature, String>>,
    thread: Option<JoinHandle<()>>,
}

/// What the worker runs on each clip: caption it and embed the caption.
pub type CaptionFn = Box<dyn FnMut(&ClipJob) -> Result<TextFeature, String> + Send>;

impl CaptionWorker {
    /// A worker captioning with `provider` and embedding with `embedder` (the `semantic` feature).
    #[cfg(feature = "semantic")]
    pub fn spawn(mut provider: Box<dyn CaptionProvider>, mut embedder: Box<dyn Embedder>) -> Self {
        Self::spawn_with(Box::new(move |job: &ClipJob| {
            let clip = Clip {
                clip: &job.clip,
                frame: job.frame as usize,
                frames: [&job.frames[0], &job.frames[1], &job.frames[2], &job.frames[3]],
                channels: job.channels,
                height: job.height,
                width: job.width,
            };
            provider.caption(&clip).map_err(|e| e.to_string()).and_then(|caption| embedder.embed(&caption).map(|embedding| TextFeature { caption, embedding, frame: job.frame }))
        }))
    }

    /// A worker running `caption` on each clip handed over, on its own thread.
    pub fn spawn_with(mut caption: CaptionFn) -> Self {
        let (jtx, jrx) = mpsc::sync_channel::<Box<ClipJob>>(1);
        let (rtx, rrx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("sfn-captions".into())
            .spawn(move || {
                for job in jrx {
                    if rtx.send(caption(&job)).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning the caption thread");
        CaptionWorker { jobs: Some(jtx), results: rrx, thread: Some(thread) }
    }

    /// Hands a clip over without blocking; false if the worker is still busy (or gone).
    pub fn offer(&self, job: ClipJob) -> bool {
        match self.jobs.as_ref().map(|j| j.try_send(Box::new(job))) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_))) | Some(Err(TrySendError::Disconnected(_))) | None => false,
        }
    }

    /// A finished refresh, if any, without blocking.
    pub fn poll(&self) -> Option<Result<TextFeature, String>> {
        match self.results.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err("caption worker stopped".into())),
        }
    }
}

impl Drop for CaptionWorker {
    fn drop(&mut self) {
        self.jobs.take();
        // Do not join: a provider stuck in a long call must not hold up shutdown.
        self.thread.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_holds_under_a_slow_provider() {
        // Simulated clock: frames every 40 ms for 10 minutes; each caption takes 900 ms; 10% budget,
        // period 2 s, deadline 5 s.
        let mut s = CaptionScheduler::new(CaptionBudget { period_ms: 2000, max_share: 0.1, deadline_ms: 5000 });
        let (mut now, mut busy_until) = (0u64, None::<u64>);
        while now < 600_000 {
            if let Some(t) = busy_until.filter(|t| *t <= now) {
                assert!(s.finished(t, true));
                busy_until = None;
            }
            if s.offer(now) == Decision::Start {
                busy_until = Some(now + 900);
            }
            // The share of wall time spent captioning never exceeds the budget by more than one call.
            assert!(s.stats.busy_ms as f64 <= 0.1 * now as f64 + 900.0, "at {now}: {:?}", s.stats);
            now += 40;
        }
        let st = &s.stats;
        // ~ 60 s of budget / 0.9 s per call.
        assert!((60..=68).contains(&st.started), "{st:?}");
        assert!(st.skipped_budget > 0 && st.skipped_busy > 0 && st.skipped_period > 0, "{st:?}");
    }

    #[test]
    fn fast_provider_follows_the_period_and_late_results_are_stale() {
        let mut s = CaptionScheduler::new(CaptionBudget { period_ms: 1000, max_share: 0.5, deadline_ms: 100 });
        let mut started = vec![];
        for now in (0..10_000).step_by(10) {
            if s.offer(now) == Decision::Start {
                started.push(now);
                // Every third call misses the deadline.
                let took = if started.len() % 3 == 0 { 150 } else { 20 };
                let _ = s.finished(now + took, true);
            }
        }
        assert_eq!(started, (0..10).map(|k| k * 1000).collect::<Vec<_>>());
        assert_eq!(s.stats.stale, 3);
        assert_eq!(s.stats.refreshed, 7);
        assert!(!s.finished(5, true), "no refresh in flight");
    }
}
