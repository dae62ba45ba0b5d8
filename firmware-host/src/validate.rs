//! Validation of a device's output (replayed, or decoded from its packets) against frame labels:
//! frame-level ROC AUC of the causal scores (what the device sends) and, for comparison, of the offline
//! scoring (per-clip min-max + centred Gaussian over the same z-scored errors: min-max makes the z-score
//! affine map irrelevant); alarm-level precision and recall, mean detection delay, false alarms per hour.
//!
//! Alarm-level definitions: an *event* is a maximal run of abnormal frames; an *alarm* is a run from a
//! Raised packet to the next Cleared packet (or the clip's end). An alarm that overlaps an event is true,
//! else false. Recall = events overlapped by some alarm / events; precision = true alarms / alarms;
//! detection delay = first alarm frame overlapping the event - event start (frames); false alarms per
//! hour = false alarms / hours of normal footage (normal frames / fps).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sfn_edge::alarm::AlarmState;
use sfn_edge::pipeline::FrameOutput;
use sfn_scoring::{offline_scores, score_set, OfflineScoring, ScoreSet};

/// One clip's output, frame by frame (scored frames only).
#[derive(Clone, Debug)]
pub struct ClipTrace {
    pub name: String,
    pub frames: Vec<u64>,
    pub scores: Vec<f32>,
    pub visual_z: Vec<f32>,
    pub semantic_z: Vec<Option<f32>>,
    pub alarm: Vec<AlarmState>,
    /// Label of each scored frame, when known.
    pub labels: Option<Vec<u8>>,
}

fn align(name: &str, frames: &[u64], labels: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
    let Some(l) = labels else { return Ok(None) };
    let last = frames.last().copied().unwrap_or(0) as usize;
    if frames.is_empty() || l.len() != last + 1 {
        return Err(format!("clip {name}: labels for {} frames, the clip has {}", l.len(), if frames.is_empty() { 0 } else { last + 1 }));
    }
    Ok(Some(frames.iter().map(|&f| l[f as usize]).collect()))
}

impl ClipTrace {
    /// From the runtime's outputs.
    pub fn from_outputs(name: &str, outs: &[FrameOutput], labels: Option<&[u8]>) -> Result<Self, String> {
        let frames: Vec<u64> = outs.iter().map(|o| o.index).collect();
        Ok(ClipTrace {
            name: name.into(),
            labels: align(name, &frames, labels)?,
            frames,
            scores: outs.iter().map(|o| o.score).collect(),
            visual_z: outs.iter().map(|o| o.visual_z).collect(),
            semantic_z: outs.iter().map(|o| o.semantic_z).collect(),
            alarm: outs.iter().map(|o| o.alarm).collect(),
        })
    }

    /// From decoded packets (in order).
    pub fn from_packets(name: &str, packets: &[sfn_wire::ScorePacket], labels: Option<&[u8]>) -> Result<Self, String> {
        let frames: Vec<u64> = packets.iter().map(|p| u64::from(p.frame)).collect();
        Ok(ClipTrace {
            name: name.into(),
            labels: align(name, &frames, labels)?,
            frames,
            scores: packets.iter().map(|p| p.score).collect(),
            visual_z: packets.iter().map(|p| p.visual_z).collect(),
            semantic_z: packets.iter().map(|p| p.has_semantic().then_some(p.semantic_z)).collect(),
            alarm: packets.iter().map(|p| p.alarm.into()).collect(),
        })
    }

    /// Alarm runs as (first frame, last frame) inclusive.
    pub fn alarms(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, a) in self.alarm.iter().enumerate() {
            match a {
                AlarmState::Raised => start = Some(self.frames[i]),
                AlarmState::Cleared => {
                    if let Some(s) = start.take() {
                        out.push((s, self.frames[i]));
                    }
                }
                _ => {}
            }
        }
        if let (Some(s), Some(&last)) = (start, self.frames.last()) {
            out.push((s, last));
        }
        out
    }
}

/// Maximal runs of label 1, as (first frame, last frame).
pub fn events(frames: &[u64], labels: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut start: Option<u64> = None;
    for (i, (&f, &l)) in frames.iter().zip(labels).enumerate() {
        match (l != 0, start) {
            (true, None) => start = Some(f),
            (false, Some(s)) => {
                out.push((s, frames[i - 1]));
                start = None;
            }
            _ => {}
        }
    }
    if let (Some(s), Some(&last)) = (start, frames.last()) {
        out.push((s, last));
    }
    out
}

/// Alarm-level figures.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AlarmMetrics {
    pub events: usize,
    pub detected_events: usize,
    pub alarms: usize,
    pub true_alarms: usize,
    pub false_alarms: usize,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    /// Mean over detected events, frames.
    pub mean_detection_delay_frames: Option<f64>,
    pub false_alarms_per_hour: Option<f64>,
    pub normal_hours: f64,
}

/// One alarm.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AlarmRun {
    pub clip: String,
    pub start_frame: u64,
    pub end_frame: u64,
    pub true_alarm: Option<bool>,
}

/// The whole validation.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Validation {
    /// Causal scores as sent (top level: micro_auc, macro_auc, per_clip).
    #[serde(flatten)]
    pub causal: ScoreSet,
    /// Offline scoring of the same errors, for comparison, as `sfn-train eval` reports it: per-clip
    /// min-max and centred smoothing of the visual z-scores.
    pub offline: ScoreSet,
    /// The same on the z-scores saturated at the calibration's `visual_z_max`, where that cap is known
    /// (replay reads it from model.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_saturated: Option<ScoreSet>,
    pub alarms: Vec<AlarmRun>,
    pub alarm_metrics: Option<AlarmMetrics>,
}

/// Scores and alarm metrics of traces (labels where known). `fps` converts frames to hours; with
/// `z_cap` (the calibration's `visual_z_max`) the saturated offline scoring goes beside the raw one.
pub fn validate(traces: &[ClipTrace], fps: f64, _raise_after: u32, z_cap: Option<f32>) -> Validation {
    let lab = |t: &ClipTrace| t.labels.clone().unwrap_or_else(|| vec![0; t.frames.len()]);
    let causal: Vec<(String, Vec<f32>, Vec<u8>)> = traces.iter().map(|t| (t.name.clone(), t.scores.clone(), lab(t))).collect();
    let offline_cfg = OfflineScoring::default();
    // Offline scoring of every trace, its visual z-scores clipped at `cap` first when one is given.
    let offline_set = |cap: Option<f32>| -> ScoreSet {
        let sets: Vec<(String, Vec<f32>, Vec<u8>)> = traces
            .iter()
            .map(|t| {
                let sem: Option<Vec<f32>> = t.semantic_z.iter().copied().collect();
                let visual = cap.map_or_else(|| t.visual_z.clone(), |c| sfn_scoring::saturate(&t.visual_z, c));
                (t.name.clone(), offline_scores(&visual, sem.as_deref(), &offline_cfg), lab(t))
            })
            .collect();
        score_set(&sets)
    };
    let (offline, offline_saturated) = (offline_set(None), z_cap.filter(|z| z.is_finite()).map(|cap| offline_set(Some(cap))));
    let (runs, metrics) = alarm_metrics(traces, fps);
    Validation { causal: score_set(&causal), offline, offline_saturated, alarms: runs, alarm_metrics: metrics }
}

/// Every alarm run of the traces (true or false where labels are known) and the alarm-level figures
/// (None unless every trace is labelled). `fps` converts normal frames to hours.
pub fn alarm_metrics(traces: &[ClipTrace], fps: f64) -> (Vec<AlarmRun>, Option<AlarmMetrics>) {
    let mut runs = Vec::new();
    let mut m = AlarmMetrics {
        events: 0,
        detected_events: 0,
        alarms: 0,
        true_alarms: 0,
        false_alarms: 0,
        precision: None,
        recall: None,
        mean_detection_delay_frames: None,
        false_alarms_per_hour: None,
        normal_hours: 0.0,
    };
    let mut delays = Vec::new();
    let labelled = traces.iter().all(|t| t.labels.is_some()) && !traces.is_empty();
    for t in traces {
        let alarms = t.alarms();
        let ev = t.labels.as_ref().map(|l| events(&t.frames, l)).unwrap_or_default();
        for &(a, b) in &alarms {
            let hit = t.labels.as_ref().map(|_| ev.iter().any(|&(s, e)| a <= e && s <= b));
            runs.push(AlarmRun { clip: t.name.clone(), start_frame: a, end_frame: b, true_alarm: hit });
            m.alarms += 1;
            match hit {
                Some(true) => m.true_alarms += 1,
                Some(false) => m.false_alarms += 1,
                None => {}
            }
        }
        for &(s, e) in &ev {
            m.events += 1;
            if let Some(first) = alarms.iter().filter(|&&(a, b)| a <= e && s <= b).map(|&(a, _)| a.max(s)).min() {
                m.detected_events += 1;
                delays.push((first - s) as f64);
            }
        }
        if let Some(l) = &t.labels {
            m.normal_hours += l.iter().filter(|&&v| v == 0).count() as f64 / fps.max(1e-9) / 3600.0;
        }
    }
    let metrics = labelled.then(|| {
        m.precision = (m.alarms > 0).then(|| m.true_alarms as f64 / m.alarms as f64);
        m.recall = (m.events > 0).then(|| m.detected_events as f64 / m.events as f64);
        m.mean_detection_delay_frames = (!delays.is_empty()).then(|| delays.iter().sum::<f64>() / delays.len() as f64);
        m.false_alarms_per_hour = (m.normal_hours > 0.0).then(|| m.false_alarms as f64 / m.normal_hours);
        m
    });
    (runs, metrics)
}

/// Score curves per clip (abnormal frames shaded) and the ROC, as PNGs in `dir`.
pub fn plots(traces: &[ClipTrace], v: &Validation, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let pct = |a: Option<f64>| a.map_or("n/a".into(), |v| format!("{:.1}", 100.0 * v));
    let offline = "offline";
    for t in traces {
        let off = v.offline.per_clip.get(&t.name).map(|c| c.scores.clone()).unwrap_or_default();
        let causal = sfn_scoring::min_max(&t.scores);
        let labels = t.labels.clone().unwrap_or_else(|| vec![0; t.frames.len()]);
        let auc = v.causal.per_clip.get(&t.name).and_then(|c| c.auc);
        let title = format!("clip {}: causal AUC {} (as the device sends it)", t.name, pct(auc));
        sfn_plots::score_curves_png(&dir.join(format!("clip_{}.png", t.name)), &title, &[("causal (rescaled)", &causal), (offline, &off)], &labels).map_err(|e| e.to_string())?;
    }
    let (cs, cl) = v.causal.concatenated();
    let (os, ol) = v.offline.concatenated();
    if cl.contains(&1) && cl.contains(&0) {
        sfn_plots::roc_png(
            &dir.join("roc.png"),
            &format!("frame-level ROC, micro AUC causal {} offline {}", pct(v.causal.micro_auc), pct(v.offline.micro_auc)),
            &[("causal", &cs, &cl), (offline, &os, &ol)],
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Per-clip packet files in a directory (`<clip>.bin`) or one file.
pub fn packet_files(path: &Path) -> Result<BTreeMap<String, std::path::PathBuf>, String> {
    let mut out = BTreeMap::new();
    if path.is_dir() {
        for e in std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.extension().is_some_and(|x| x == "bin") {
                out.insert(p.file_stem().unwrap_or_default().to_string_lossy().into_owned(), p);
            }
        }
        if out.is_empty() {
            return Err(format!("{}: no *.bin packet files", path.display()));
        }
    } else {
        out.insert(path.file_stem().unwrap_or_default().to_string_lossy().into_owned(), path.to_path_buf());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(alarm: &[AlarmState], labels: &[u8]) -> ClipTrace {
        let n = alarm.len();
        ClipTrace {
            name: "c".into(),
            frames: (4..4 + n as u64).collect(),
            scores: (0..n).map(|i| i as f32).collect(),
            visual_z: (0..n).map(|i| i as f32).collect(),
            semantic_z: vec![None; n],
            alarm: alarm.to_vec(),
            labels: Some(labels.to_vec()),
        }
    }

    #[test]
    fn alarm_metrics_by_hand() {
        use AlarmState::*;
        // frames 4..16; events: 6..=8 and 12..=13; alarms: 7..=9 (true), 14..=15 (false: after event 2).
        let a = [Idle, Idle, Idle, Raised, Active, Cleared, Idle, Idle, Idle, Idle, Raised, Cleared];
        let l = [0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0];
        let v = validate(&[trace(&a, &l)], 10.0, 1, None);
        let z: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let raw = offline_scores(&z, None, &OfflineScoring::default());
        assert!(v.offline_saturated.is_none());
        assert_eq!(v.offline.per_clip["c"].scores, raw);
        // With the calibration's cap, the offline scoring is still of the raw z-scores, the saturated one beside.
        let sat = validate(&[trace(&a, &l)], 10.0, 1, Some(5.0));
        assert_eq!(sat.offline.per_clip["c"].scores, raw);
        let beside = sat.offline_saturated.unwrap().per_clip["c"].scores.clone();
        assert_eq!(beside, offline_scores(&sfn_scoring::saturate(&z, 5.0), None, &OfflineScoring::default()));
        assert_ne!(beside, raw);
        let m = v.alarm_metrics.unwrap();
        assert_eq!((m.events, m.detected_events, m.alarms, m.true_alarms, m.false_alarms), (2, 1, 2, 1, 1));
        assert_eq!(m.precision, Some(0.5));
        assert_eq!(m.recall, Some(0.5));
        assert_eq!(m.mean_detection_delay_frames, Some(1.0));
        // 7 normal frames at 10 fps = 0.7 s.
        assert!((m.false_alarms_per_hour.unwrap() - 1.0 / (0.7 / 3600.0)).abs() < 1e-6);
        assert_eq!(v.alarms[0], AlarmRun { clip: "c".into(), start_frame: 7, end_frame: 9, true_alarm: Some(true) });
        // Scores rise with the frame: of the 5 x 7 (abnormal, normal) pairs, 16 rank the abnormal frame higher.
        assert!((v.causal.micro_auc.unwrap() - 16.0 / 35.0).abs() < 1e-12);
    }

    #[test]
    fn labels_of_the_wrong_length_are_named() {
        let outs: Vec<FrameOutput> = (4..10)
            .map(|i| FrameOutput {
                index: i,
                timestamp_ms: 0,
                visual_error: 0.0,
                appearance_error: None,
                semantic_error: None,
                visual_z: 0.0,
                semantic_z: None,
                score: 0.0,
                alarm: AlarmState::Idle,
                event: None,
                cue: sfn_scoring::Cue::Prediction,
                region: None,
                infer_us: 0,
            })
            .collect();
        let e = ClipTrace::from_outputs("07", &outs, Some(&[0; 9])).unwrap_err();
        assert!(e.contains("clip 07") && e.contains("9 frames") && e.contains("has 10"), "{e}");
        assert!(ClipTrace::from_outputs("07", &outs, Some(&[0; 10])).is_ok());
    }
}
