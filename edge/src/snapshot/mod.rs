//! Alarm snapshots: when an alarm is raised (and at each new peak of its score, at most once per
//! `min_interval_s`), the source frame with the region that set the score boxed and a caption line
//! (device, time, score, cue), JPEG-encoded on a worker thread; published retained on
//! `<prefix>/<device>/alarm/snapshot` (re-encoded smaller when over `mqtt_max_bytes`) and written
//! into a bounded event folder `<dir>/<start>-<device>/` with the event's JSON (`event.json`, again
//! when cleared), the snapshots (`snapshot-<frame>.jpg`) and the frames around the raise as a JPEG
//! sequence (`clip/<frame>.jpg`: `clip_before` frames before it, `clip_after` from it on).
//!
//! The scoring thread only hands over reference-counted frames on a bounded queue: it never waits
//! for the encoder or the disk. When the worker falls behind (a slow or blocked disk) the queue
//! fills and further jobs are dropped and counted; an unwritable folder or a full disk is counted
//! and logged once, and scoring goes on.

pub mod draw;
pub mod events;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::DynamicImage;
use serde::{Deserialize, Serialize};
use sfn_scoring::{Cue, Region};

use crate::alarm::AlarmState;
use crate::pipeline::FrameOutput;
use crate::sink::AlarmJson;
use events::{event_name, EventStore, Stored};

/// The `[snapshot]` section.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotConfig {
    /// Root of the event folders (relative paths: to the config file); absent: MQTT only.
    pub dir: Option<PathBuf>,
    /// Bound on all event folders together, MiB; the oldest events are deleted first.
    pub max_disk_mb: f64,
    /// Least time between two snapshots of one alarm, seconds of footage (the raise always gets one).
    pub min_interval_s: f64,
    /// JPEG quality of the files (1..=100).
    pub quality: u8,
    /// Publish on `<prefix>/<device>/alarm/snapshot` when MQTT is configured.
    pub mqtt: bool,
    /// Largest snapshot sent over MQTT, bytes; a larger one is re-encoded at lower quality, then size.
    pub mqtt_max_bytes: usize,
    /// Frames kept in the event's clip before the raise, and from the raise on.
    pub clip_before: usize,
    pub clip_after: usize,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig { dir: None, max_disk_mb: 512.0, min_interval_s: 10.0, quality: 85, mqtt: true, mqtt_max_bytes: 256 * 1024, clip_before: 8, clip_after: 16 }
    }
}

impl SnapshotConfig {
    /// The offending key (under `snapshot.`) and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(self.max_disk_mb.is_finite() && self.max_disk_mb > 0.0) {
            return Err(("snapshot.max_disk_mb", format!("{}: must be > 0", self.max_disk_mb)));
        }
        if !(self.min_interval_s.is_finite() && self.min_interval_s >= 0.0) {
            return Err(("snapshot.min_interval_s", format!("{}: must be >= 0", self.min_interval_s)));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(("snapshot.quality", format!("{}: must be in 1..=100", self.quality)));
        }
        if self.mqtt_max_bytes == 0 || self.mqtt_max_bytes > sfn_mqtt::MAX_SNAPSHOT_BYTES {
            return Err(("snapshot.mqtt_max_bytes", format!("{}: must be in 1..={}", self.mqtt_max_bytes, sfn_mqtt::MAX_SNAPSHOT_BYTES)));
        }
        Ok(())
    }

    fn max_disk_bytes(&self) -> u64 {
        (self.max_disk_mb * 1024.0 * 1024.0) as u64
    }
}

/// Counters of the snapshot stage (in health).
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Snapshots encoded.
    pub taken: u64,
    /// Snapshots handed to MQTT.
    pub published: u64,
    /// Files written into event folders (`event.json` counts at the raise and again when cleared).
    pub files: u64,
    /// Jobs dropped because the worker was behind (queue full): the scoring never waits.
    pub dropped: u64,
    /// Writes that failed (unwritable folder, full disk).
    pub disk_errors: u64,
    /// Snapshots MQTT refused, or that fit `mqtt_max_bytes` at no size.
    pub publish_errors: u64,
    /// Files not kept because their event alone would exceed the disk bound.
    pub over_bound: u64,
    /// Events deleted to stay within the bound.
    pub events_deleted: u64,
    /// Bytes in the event folders.
    pub disk_bytes: u64,
}

/// Where a snapshot goes besides the disk (the MQTT reporter's [`sfn_mqtt::SnapshotPublisher`]).
pub type Publish = Box<dyn FnMut(Vec<u8>) -> Result<(), String> + Send>;

/// A frame as the scoring saw it.
#[derive(Clone)]
struct Shot {
    index: u64,
    ms: u64,
    image: Arc<DynamicImage>,
    region: Option<Region>,
    score: f32,
    cue: Cue,
}

enum Job {
    /// A snapshot of `shot`; at the raise also the event JSON and the frames before it.
    Snapshot {
        event: String,
        shot: Shot,
        raised: Option<(String, Vec<Shot>)>,
    },
    Clip {
        event: String,
        shot: Shot,
    },
    Json {
        event: String,
        json: String,
    },
}

struct Ongoing {
    name: String,
    peak: f32,
    last_ms: u64,
    clip_left: usize,
}

/// The snapshot stage of one camera's runtime: decides on the scoring thread, encodes and writes on
/// its worker.
pub struct Snapshots {
    cfg: SnapshotConfig,
    device: String,
    tx: Option<SyncSender<Job>>,
    stats: Arc<Mutex<SnapshotStats>>,
    ring: VecDeque<Shot>,
    event: Option<Ongoing>,
    worker: Option<JoinHandle<()>>,
}

impl Snapshots {
    /// Starts the worker for `device`; `publish` (optional) receives each snapshot's bounded JPEG.
    pub fn start(cfg: SnapshotConfig, device: &str, publish: Option<Publish>) -> std::io::Result<Snapshots> {
        let stats = Arc::new(Mutex::new(SnapshotStats::default()));
        // Room for a whole clip plus a few snapshots; beyond, jobs are dropped, never waited for.
        let (tx, rx) = mpsc::sync_channel(cfg.clip_before + cfg.clip_after + 8);
        let w = Worker { cfg: cfg.clone(), device: device.into(), publish, stats: stats.clone(), store: None, warned_disk: false, warned_publish: false };
        let worker = std::thread::Builder::new().name(format!("sfn-snapshot-{device}")).spawn(move || w.run(rx))?;
        Ok(Snapshots { cfg, device: device.into(), tx: Some(tx), stats, ring: VecDeque::new(), event: None, worker: Some(worker) })
    }

    /// The counters so far.
    pub fn stats(&self) -> SnapshotStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn send(&mut self, job: Job) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => self.stats.lock().unwrap_or_else(|p| p.into_inner()).dropped += 1,
        }
    }

    /// One scored frame and its source picture; `alarm_json`: the JSON of the alarm it raised or
    /// cleared, as the sinks got it. Never blocks.
    pub fn observe(&mut self, out: &FrameOutput, image: &Arc<DynamicImage>, alarm_json: Option<&str>) {
        let shot = Shot { index: out.index, ms: out.timestamp_ms, image: image.clone(), region: out.region, score: out.score, cue: out.cue };
        match (out.alarm, &out.event) {
            (AlarmState::Raised, Some(ev)) => {
                let name = event_name(ev.start_ms, &self.device);
                let json = alarm_json.map_or_else(|| self.alarm_json(out.alarm, ev), str::to_string);
                let before: Vec<Shot> = self.ring.drain(..).collect();
                self.send(Job::Snapshot { event: name.clone(), shot, raised: Some((json, before)) });
                self.event = Some(Ongoing { name, peak: out.score, last_ms: out.timestamp_ms, clip_left: self.cfg.clip_after.saturating_sub(1) });
                return;
            }
            (AlarmState::Cleared, Some(ev)) => {
                if let Some(o) = self.event.take() {
                    if o.clip_left > 0 {
                        self.send(Job::Clip { event: o.name.clone(), shot: shot.clone() });
                    }
                    let json = alarm_json.map_or_else(|| self.alarm_json(out.alarm, ev), str::to_string);
                    self.send(Job::Json { event: o.name, json });
                }
            }
            (AlarmState::Active, _) => {
                let min_ms = self.cfg.min_interval_s * 1000.0;
                let mut jobs = Vec::new();
                if let Some(o) = self.event.as_mut() {
                    if o.clip_left > 0 {
                        o.clip_left -= 1;
                        jobs.push(Job::Clip { event: o.name.clone(), shot: shot.clone() });
                    }
                    if out.score > o.peak {
                        o.peak = out.score;
                        if out.timestamp_ms.saturating_sub(o.last_ms) as f64 >= min_ms {
                            o.last_ms = out.timestamp_ms;
                            jobs.push(Job::Snapshot { event: o.name.clone(), shot: shot.clone(), raised: None });
                        }
                    }
                }
                for j in jobs {
                    self.send(j);
                }
            }
            _ => {}
        }
        if self.cfg.clip_before > 0 {
            if self.ring.len() == self.cfg.clip_before {
                self.ring.pop_front();
            }
            self.ring.push_back(shot);
        }
    }

    fn alarm_json(&self, state: AlarmState, event: &crate::alarm::AlarmEvent) -> String {
        serde_json::to_string(&AlarmJson { device: &self.device, state, event }).unwrap_or_default()
    }

    /// Lets the worker finish what is queued, waiting at most `wait`; the final counters.
    pub fn close(mut self, wait: Duration) -> SnapshotStats {
        self.tx = None;
        if let Some(h) = self.worker.take() {
            let end = Instant::now() + wait;
            while !h.is_finished() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                tracing::warn!(device = %self.device, "snapshot writer still busy after {wait:?}; leaving it to finish");
            }
        }
        self.stats()
    }
}

struct Worker {
    cfg: SnapshotConfig,
    device: String,
    publish: Option<Publish>,
    stats: Arc<Mutex<SnapshotStats>>,
    store: Option<EventStore>,
    warned_disk: bool,
    warned_publish: bool,
}

fn cue_name(c: Cue) -> &'static str {
    match c {
        Cue::Prediction => "prediction",
        Cue::Speed => "speed",
    }
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        for job in rx {
            match job {
                Job::Snapshot { event, shot, raised } => {
                    let caption = format!("{} {} score {:.2} {}", self.device, crate::timefmt::iso8601_ms(shot.ms), shot.score, cue_name(shot.cue));
                    let img = draw::annotate(&shot.image, shot.region, &caption);
                    self.stat(|s| s.taken += 1);
                    if let Some((json, before)) = raised {
                        self.write(&event, "event.json", json.as_bytes());
                        for b in before.iter().chain([&shot]) {
                            self.clip(&event, b);
                        }
                    }
                    // One full-quality encode for the file and, when it fits, for MQTT too.
                    let full = match draw::jpeg(&img, self.cfg.quality) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            tracing::warn!(error = %e, "snapshot encode failed");
                            None
                        }
                    };
                    if let (Some(b), Some(_)) = (&full, &self.cfg.dir) {
                        self.write(&event, &format!("snapshot-{:06}.jpg", shot.index), b);
                    }
                    self.publish(&img, full);
                }
                Job::Clip { event, shot } => self.clip(&event, &shot),
                Job::Json { event, json } => self.write(&event, "event.json", json.as_bytes()),
            }
        }
    }

    fn stat(&self, f: impl FnOnce(&mut SnapshotStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn clip(&mut self, event: &str, shot: &Shot) {
        if self.cfg.dir.is_none() {
            return;
        }
        match draw::jpeg(&shot.image.to_rgb8(), self.cfg.quality) {
            Ok(b) => self.write(event, &format!("clip/{:06}.jpg", shot.index), &b),
            Err(e) => tracing::warn!(error = %e, "clip frame encode failed"),
        }
    }

    fn disk_error(&mut self, what: String) {
        self.stat(|s| s.disk_errors += 1);
        if !self.warned_disk {
            self.warned_disk = true;
            tracing::warn!("snapshots: {what} (counted in health; logged once; scoring goes on)");
        } else {
            tracing::debug!("snapshots: {what}");
        }
    }

    fn write(&mut self, event: &str, file: &str, bytes: &[u8]) {
        let Some(dir) = self.cfg.dir.clone() else { return };
        if self.store.is_none() {
            match EventStore::open(&dir, self.cfg.max_disk_bytes(), &self.device) {
                Ok(s) => self.store = Some(s),
                Err(e) => return self.disk_error(format!("{}: {e}", dir.display())),
            }
        }
        let store = self.store.as_mut().expect("opened above");
        let res = store.write(event, file, bytes);
        let (bytes_now, deleted) = (store.bytes(), store.deleted());
        let path = store.path(event).join(file);
        match res {
            Ok(Stored::Written) => self.stat(|s| s.files += 1),
            Ok(Stored::OverBound) => self.stat(|s| s.over_bound += 1),
            Err(e) => self.disk_error(format!("{}: {e}", path.display())),
        }
        self.stat(|s| (s.disk_bytes, s.events_deleted) = (bytes_now, deleted));
    }

    fn publish(&mut self, img: &image::RgbImage, full: Option<Vec<u8>>) {
        let Some(p) = self.publish.as_mut() else { return };
        let res = match draw::jpeg_within(img, self.cfg.quality, self.cfg.mqtt_max_bytes, full) {
            Ok(Some(b)) => p(b),
            Ok(None) => Err(format!("no JPEG of the frame fits in snapshot.mqtt_max_bytes = {}", self.cfg.mqtt_max_bytes)),
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => self.stat(|s| s.published += 1),
            Err(e) => {
                self.stat(|s| s.publish_errors += 1);
                if !std::mem::replace(&mut self.warned_publish, true) {
                    tracing::warn!("snapshots: not published: {e} (counted in health; logged once)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::AlarmEvent;

    const T0: u64 = 1_764_331_200_000;

    fn frame(w: u32, h: u32, k: u64) -> Arc<DynamicImage> {
        Arc::new(DynamicImage::ImageLuma8(image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x + y + k as u32) % 250) as u8]))))
    }

    fn out(index: u64, score: f32, alarm: AlarmState, start: u64) -> FrameOutput {
        let event = matches!(alarm, AlarmState::Raised | AlarmState::Cleared).then(|| AlarmEvent {
            start_frame: start,
            start_ms: T0 + start * 100,
            end_frame: (alarm == AlarmState::Cleared).then_some(index - 1),
            end_ms: None,
            peak_score: score,
            peak_cue: Some(Cue::Speed),
            peak_region: Some(Region { x: 10, y: 10, width: 20, height: 20 }),
        });
        FrameOutput {
            index,
            timestamp_ms: T0 + index * 100,
            visual_error: 0.0,
            appearance_error: None,
            semantic_error: None,
            visual_z: score,
            semantic_z: None,
            score,
            alarm,
            event,
            cue: Cue::Speed,
            region: Some(Region { x: 10, y: 10, width: 20, height: 20 }),
            infer_us: 1,
        }
    }

    /// Frames 0..40 at 10 frames/s: an alarm raised at 10 (run from 8), its score rising to a peak at
    /// 30, cleared at 35.
    fn alarm_run() -> Vec<FrameOutput> {
        (0..40u64)
            .map(|i| match i {
                0..=9 => out(i, 0.5, AlarmState::Idle, 0),
                10 => out(i, 4.0, AlarmState::Raised, 8),
                11..=34 => out(i, 4.0 + (i.min(30) - 10) as f32 * 0.1, AlarmState::Active, 8),
                35 => out(i, 0.1, AlarmState::Cleared, 8),
                _ => out(i, 0.1, AlarmState::Idle, 0),
            })
            .collect()
    }

    #[test]
    fn an_alarm_gets_its_folder_snapshots_clip_and_json() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SnapshotConfig { dir: Some(dir.path().into()), min_interval_s: 1.0, clip_before: 3, clip_after: 5, ..Default::default() };
        let sent = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let s2 = sent.clone();
        let mut s = Snapshots::start(
            cfg,
            "cam1",
            Some(Box::new(move |b| {
                s2.lock().unwrap().push(b);
                Ok(())
            })),
        )
        .unwrap();
        for o in alarm_run() {
            s.observe(&o, &frame(96, 64, o.index), None);
        }
        let st = s.close(Duration::from_secs(20));
        let ev = dir.path().join(event_name(T0 + 800, "cam1"));
        let mut files: Vec<String> = walk(&ev);
        files.sort();
        // Raised at 10 and new peaks at least 1 s (10 frames) apart: 20 and 30.
        let want = [
            "clip/000007.jpg",
            "clip/000008.jpg",
            "clip/000009.jpg",
            "clip/000010.jpg",
            "clip/000011.jpg",
            "clip/000012.jpg",
            "clip/000013.jpg",
            "clip/000014.jpg",
            "event.json",
            "snapshot-000010.jpg",
            "snapshot-000020.jpg",
            "snapshot-000030.jpg",
        ];
        assert_eq!(files, want);
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(ev.join("event.json")).unwrap()).unwrap();
        assert_eq!((json["state"].as_str(), json["device"].as_str(), json["end_frame"].as_u64()), (Some("cleared"), Some("cam1"), Some(34)));
        let snap = image::open(ev.join("snapshot-000030.jpg")).unwrap();
        assert_eq!((snap.width(), snap.height()), (96, 64));
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|b| image::load_from_memory(b).is_ok_and(|i| i.width() == 96)));
        assert_eq!((st.taken, st.published, st.files, st.dropped, st.disk_errors), (3, 3, 13, 0, 0), "event.json written at the raise and again when cleared");
    }

    fn walk(d: &std::path::Path) -> Vec<String> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                v.extend(walk(&e.path()).into_iter().map(|n| format!("{name}/{n}")));
            } else {
                v.push(name);
            }
        }
        v
    }

    #[test]
    fn a_blocked_disk_never_holds_up_the_scoring_thread() {
        let dir = tempfile::tempdir().unwrap();
        // The first file the worker writes for the event is a FIFO nobody reads: its open blocks
        // the worker, as a hung disk would.
        let ev = dir.path().join(event_name(T0 + 800, "cam1"));
        std::fs::create_dir_all(&ev).unwrap();
        let fifo = ev.join("event.part");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let cfg = SnapshotConfig { dir: Some(dir.path().into()), min_interval_s: 0.0, clip_before: 3, clip_after: 30, ..Default::default() };
        let mut s = Snapshots::start(cfg, "cam1", None).unwrap();
        // Every frame goes through observe while the worker is stuck on its first write.
        let run = alarm_run();
        for o in &run {
            s.observe(o, &frame(96, 64, o.index), None);
        }
        let st = s.stats();
        assert_eq!(st.files, 0, "the worker is blocked");
        assert!(st.dropped > 0, "the queue filled and jobs were dropped rather than waited for: {st:?}");
        // Unblock it: a reader drains the FIFO; the worker goes on with what was queued.
        let reader = std::thread::spawn(move || std::fs::read(&fifo).unwrap());
        let st = s.close(Duration::from_secs(20));
        reader.join().unwrap();
        assert!(st.files > 0, "{st:?}");
    }

    #[test]
    fn an_unwritable_folder_is_counted_and_scoring_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let cfg = SnapshotConfig { dir: Some(file.join("events")), ..Default::default() };
        let mut s = Snapshots::start(cfg, "cam1", None).unwrap();
        for o in alarm_run() {
            s.observe(&o, &frame(32, 32, o.index), None);
        }
        let st = s.close(Duration::from_secs(20));
        assert!(st.disk_errors > 0 && st.files == 0 && st.taken == 1, "{st:?}");
    }

    #[test]
    fn bad_settings_are_refused_with_the_key() {
        let bad = |f: fn(&mut SnapshotConfig)| {
            let mut c = SnapshotConfig::default();
            f(&mut c);
            c.validate().unwrap_err().0
        };
        assert_eq!(bad(|c| c.max_disk_mb = 0.0), "snapshot.max_disk_mb");
        assert_eq!(bad(|c| c.min_interval_s = -1.0), "snapshot.min_interval_s");
        assert_eq!(bad(|c| c.quality = 0), "snapshot.quality");
        assert_eq!(bad(|c| c.mqtt_max_bytes = 0), "snapshot.mqtt_max_bytes");
        SnapshotConfig::default().validate().unwrap();
    }
}
