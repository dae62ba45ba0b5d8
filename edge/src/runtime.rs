//! The run loop: source -> preprocess -> pipeline -> sinks / alarm pin, with the caption worker on the
//! side and periodic health. `sfn-edge run` and the host replay drive the same [`Runtime`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sfn_sources::{FrameSource, SourceError};

use crate::alarm::{AlarmEvent, AlarmState};
use crate::captions::{CaptionScheduler, CaptionStats, CaptionWorker, ClipJob, Decision};
use crate::health::{Health, Latency};
use crate::pipeline::{FrameOutput, Pipeline, PipelineError};
use crate::sink::{packet, AlarmJson, Sink};
use crate::snapshot::{SnapshotStats, Snapshots};

/// The caption stage of a runtime.
pub struct Captioning {
    pub worker: CaptionWorker,
    pub scheduler: CaptionScheduler,
    /// Frames handed to the provider: channels, height, width.
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// The last 4 source pictures (converted to caption size only when a refresh starts).
    ring: VecDeque<Arc<image::DynamicImage>>,
    last_good: Option<Instant>,
}

impl Captioning {
    pub fn new(worker: CaptionWorker, scheduler: CaptionScheduler, channels: usize, height: usize, width: usize) -> Self {
        Captioning { worker, scheduler, channels, height, width, ring: VecDeque::with_capacity(4), last_good: None }
    }
}

/// What a run did.
#[derive(Serialize, Clone, Debug, Default)]
pub struct RunSummary {
    pub frames_in: u64,
    pub frames_scored: u64,
    pub source_errors: u64,
    pub frame_errors: u64,
    /// Times a camera or stream was lost and reopened.
    pub source_reconnects: u64,
    pub alarms: u64,
    pub sink_errors: u64,
    pub captions: Option<CaptionStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<SnapshotStats>,
    /// The batchers shared by the cameras of the process, when their model calls are batched
    /// (counts over all cameras, as this camera's run ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batching: Option<crate::pipeline::BatchSummary>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub seconds: f64,
}

/// A callback on every scored frame.
pub type FrameHook = Box<dyn FnMut(&FrameOutput) + Send>;

/// Runtime state around a pipeline.
pub struct Runtime {
    pub pipeline: Pipeline,
    pub captions: Option<Captioning>,
    pub sinks: Vec<Box<dyn Sink>>,
    /// Alarm snapshots (JPEG on MQTT and in event folders), off when None.
    pub snapshots: Option<Snapshots>,
    /// Called with every scored frame's alarm state (the GPIO pin).
    pub on_alarm_state: Option<Box<dyn FnMut(AlarmState) + Send>>,
    pub device: String,
    pub health_period: Duration,
    /// Called with every scored frame (replay collects them).
    pub on_frame: Option<FrameHook>,
    /// Set (e.g. by SIGTERM) to end [`Runtime::run`] after the frame in flight.
    pub stop: Option<&'static std::sync::atomic::AtomicBool>,
    seq: u16,
    latency: Latency,
    summary: RunSummary,
    started: Instant,
    last_health: Instant,
    alarm_active: bool,
    /// The latest causal score, and the highest since the last status.
    last_score: Option<f32>,
    period_peak: Option<f32>,
}

impl Runtime {
    pub fn new(pipeline: Pipeline, device: &str) -> Self {
        let now = Instant::now();
        Runtime {
            pipeline,
            captions: None,
            sinks: vec![],
            snapshots: None,
            on_alarm_state: None,
            device: device.into(),
            health_period: Duration::from_secs(10),
            on_frame: None,
            stop: None,
            seq: 0,
            latency: Latency::new(4096),
            summary: RunSummary::default(),
            started: now,
            last_health: now,
            alarm_active: false,
            last_score: None,
            period_peak: None,
        }
    }

    fn ms_since_start(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The health snapshot.
    pub fn health(&self) -> Health {
        let s = &self.pipeline.stats;
        let up = self.started.elapsed().as_secs_f64();
        Health {
            uptime_s: up,
            frames_in: self.summary.frames_in,
            frames_scored: s.frames_scored,
            frames_dropped: self.summary.source_errors + self.summary.frame_errors,
            bad_frames: s.bad_frames,
            window_restarts: s.window_restarts,
            source_reconnects: self.summary.source_reconnects,
            latency_p50_ms: self.latency.quantile(0.5).map(|u| u as f64 / 1e3),
            latency_p99_ms: self.latency.quantile(0.99).map(|u| u as f64 / 1e3),
            fps: self.summary.frames_in as f64 / up.max(1e-9),
            alarms: self.summary.alarms,
            alarm_active: self.alarm_active,
            score: self.last_score,
            score_peak: self.period_peak,
            captions: self.captions.as_ref().map(|c| c.scheduler.stats.clone()),
            caption_age_s: self.captions.as_ref().and_then(|c| c.last_good.map(|t| t.elapsed().as_secs_f64())),
            sink_errors: self.summary.sink_errors,
            queue_depth: self.sinks.iter().map(|s| s.queue_depth()).sum(),
            snapshots: self.snapshots.as_ref().map(|s| s.stats()),
        }
    }

    fn each_sink(&mut self, f: &mut dyn FnMut(&mut dyn Sink) -> Result<(), crate::sink::SinkError>) {
        for s in self.sinks.iter_mut() {
            if let Err(e) = f(s.as_mut()) {
                self.summary.sink_errors += 1;
                tracing::warn!(error = %e, "sink failed");
            }
        }
    }

    /// Caption stage for one frame: poll a finished refresh, maybe start one. Never blocks.
    fn captions_step(&mut self, index: u64, image: &Arc<image::DynamicImage>) {
        let now = self.ms_since_start();
        let Some(c) = self.captions.as_mut() else { return };
        if c.ring.len() == 4 {
            c.ring.pop_front();
        }
        c.ring.push_back(image.clone());
        if let Some(res) = c.worker.poll() {
            let ok = res.is_ok();
            let usable = c.scheduler.finished(now, ok);
            match res {
                Ok(feature) if usable => {
                    c.last_good = Some(Instant::now());
                    if let Err(e) = self.pipeline.set_text(feature.embedding) {
                        tracing::warn!(error = %e, "caption feature refused");
                    }
                }
                Ok(_) => tracing::debug!("caption past its deadline: discarded"),
                Err(e) => tracing::warn!(error = %e, "caption failed; keeping the last good one"),
            }
        }
        if c.ring.len() == 4 && c.scheduler.offer(now) == Decision::Start {
            let small = |k: usize| sfn_infer::preprocess::to_model_input(&c.ring[k], c.channels, c.height, c.width);
            let job = ClipJob { clip: self.device.clone(), frame: index, frames: [small(0), small(1), small(2), small(3)], channels: c.channels, height: c.height, width: c.width };
            if !c.worker.offer(job) {
                // The worker is still on an earlier (discarded) call: give the slot back.
                c.scheduler.finished(now, false);
            }
        }
    }

    /// Processes one frame from a source.
    pub fn process(&mut self, frame: sfn_sources::Frame) -> Result<Option<FrameOutput>, PipelineError> {
        self.summary.frames_in += 1;
        let m = self.pipeline.manifest();
        let input = sfn_infer::preprocess::to_model_input(&frame.image, m.image.channels, m.image.height, m.image.width);
        self.pipeline.source_size = Some((frame.image.width(), frame.image.height()));
        let image = Arc::new(frame.image);
        self.captions_step(frame.index, &image);
        let out = match self.pipeline.push(frame.index, frame.timestamp_ms, input) {
            Ok(o) => o,
            Err(e @ PipelineError::Frame { .. }) => {
                self.summary.frame_errors += 1;
                tracing::warn!(error = %e, "frame skipped");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let Some(out) = out else { return Ok(None) };
        self.summary.frames_scored += 1;
        self.latency.push(out.infer_us);
        let p = packet(&out, self.seq, self.pipeline.model_id());
        self.seq = self.seq.wrapping_add(1);
        let (bytes, framed) = match (p.to_bytes(), p.to_frame()) {
            (Ok(b), Ok(f)) => (b, f),
            _ => unreachable!("every version-1 packet encodes"),
        };
        self.each_sink(&mut |s| s.score(&out, &bytes, &framed));
        let mut alarm_json = None;
        if let (Some(ev), AlarmState::Raised | AlarmState::Cleared) = (&out.event, out.alarm) {
            if out.alarm == AlarmState::Raised {
                self.summary.alarms += 1;
            }
            let json = serde_json::to_string(&AlarmJson { device: &self.device, state: out.alarm, event: ev }).unwrap_or_default();
            let ev: AlarmEvent = ev.clone();
            let state = out.alarm;
            self.each_sink(&mut |s| s.alarm(state, &ev, &bytes, &json));
            alarm_json = Some(json);
        }
        if let Some(s) = self.snapshots.as_mut() {
            s.observe(&out, &image, alarm_json.as_deref());
        }
        self.alarm_active = matches!(out.alarm, AlarmState::Raised | AlarmState::Active);
        if out.score.is_finite() {
            self.last_score = Some(out.score);
            self.period_peak = Some(self.period_peak.map_or(out.score, |p| p.max(out.score)));
        }
        if let Some(f) = self.on_alarm_state.as_mut() {
            f(out.alarm);
        }
        if let Some(f) = self.on_frame.as_mut() {
            f(&out);
        }
        if self.last_health.elapsed() >= self.health_period {
            self.last_health = Instant::now();
            let h = self.health();
            tracing::info!(fps = h.fps, p50_ms = ?h.latency_p50_ms, p99_ms = ?h.latency_p99_ms, frames = h.frames_in, alarms = h.alarms, "health");
            let json = serde_json::to_string(&h).unwrap_or_default();
            self.each_sink(&mut |s| s.status(&json));
            self.period_peak = None;
        }
        Ok(Some(out))
    }

    /// Runs until the source ends (or `max_frames`, or [`Runtime::stop`] is set). Source errors are
    /// counted and skipped; a source that keeps failing (`max_consecutive_errors` in a row) ends the run
    /// with its last error.
    pub fn run(&mut self, source: &mut dyn FrameSource, max_frames: Option<u64>, max_consecutive_errors: u32) -> Result<RunSummary, RunError> {
        let t0 = Instant::now();
        let mut consecutive = 0u32;
        loop {
            if max_frames.is_some_and(|m| self.summary.frames_in >= m) {
                break;
            }
            if self.stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
                tracing::info!(frames = self.summary.frames_in, "stop requested: ending the run");
                break;
            }
            let next = source.next_frame();
            self.summary.source_reconnects = source.reconnects();
            match next {
                Ok(Some(frame)) => {
                    consecutive = 0;
                    self.process(frame)?;
                }
                Ok(None) => break,
                Err(e) => {
                    self.summary.source_errors += 1;
                    consecutive += 1;
                    tracing::warn!(error = %e, consecutive, "source error");
                    if consecutive >= max_consecutive_errors.max(1) {
                        return Err(RunError::Source(e));
                    }
                }
            }
        }
        self.each_sink(&mut |s| s.flush());
        let mut s = self.summary.clone();
        s.captions = self.captions.as_ref().map(|c| c.scheduler.stats.clone());
        s.latency_p50_ms = self.latency.quantile(0.5).map(|u| u as f64 / 1e3);
        s.latency_p99_ms = self.latency.quantile(0.99).map(|u| u as f64 / 1e3);
        s.seconds = t0.elapsed().as_secs_f64();
        s.snapshots = self.snapshots.as_ref().map(|x| x.stats());
        s.batching = self.pipeline.batch_counts();
        Ok(s)
    }

    /// Ends the snapshot stage: lets its worker write what is queued (waiting at most `wait`);
    /// its final counters.
    pub fn close_snapshots(&mut self, wait: Duration) -> Option<SnapshotStats> {
        self.snapshots.take().map(|s| s.close(wait))
    }
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("source: {0}")]
    Source(SourceError),
}
