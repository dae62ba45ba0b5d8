//! `sfn-host threshold`: the alarm threshold from a false-alarm budget. Normal footage of the scene is
//! replayed through the edge pipeline (the export as the camera runs it); the causal scores go through
//! the alarm hysteresis at every candidate threshold, giving the curve threshold -> false alarms per
//! hour of footage. The chosen threshold is the lowest one from which on every higher candidate stays
//! within the budget. With labelled footage beside it, the curve also has the events detected and the
//! mean detection delay (the definitions of [`crate::validate`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sfn_edge::alarm::{AlarmConfig, AlarmState, Hysteresis};
use sfn_infer::BackendKind;

use crate::calibrate::normal_clips;
use crate::replay::{discover, replay_clip, ClipInput, HostError, ReplayOptions};
use crate::validate::{alarm_metrics, ClipTrace};

/// Candidate thresholds are this far apart.
pub const STEP: f32 = 0.05;

/// What to measure.
#[derive(Clone, Debug)]
pub struct ThresholdOptions {
    /// Export directory (model.json + ONNX).
    pub model: PathBuf,
    /// Normal footage: dataset roots (their `training/frames/<clip>/`), folders of clip folders, or clip folders.
    pub normal: Vec<PathBuf>,
    /// Labelled footage (a dataset root with `testing/frames` and `testing/labels.json`), optional.
    pub labelled: Option<PathBuf>,
    pub backend: BackendKind,
    pub raise_after: u32,
    pub clear_after: u32,
    /// Frame rate of the footage (frames -> hours).
    pub fps: f64,
    /// False alarms per hour of normal footage allowed.
    pub budget_per_hour: f64,
    /// threshold.json, the plots and the replayed packets go here.
    pub out: PathBuf,
}

/// One candidate threshold.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CurvePoint {
    pub threshold: f32,
    pub false_alarms: usize,
    pub false_alarms_per_hour: f64,
    /// With labelled footage: events, events overlapped by an alarm, mean delay (frames), and its false alarms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelled: Option<LabelledFigures>,
}

/// Alarm figures on the labelled footage at one threshold.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LabelledFigures {
    pub events: usize,
    pub detected_events: usize,
    pub mean_detection_delay_frames: Option<f64>,
    pub false_alarms: usize,
}

/// `OUT/threshold.json`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ThresholdReport {
    pub model: String,
    pub normal_clips: Vec<String>,
    pub normal_frames: usize,
    pub normal_hours: f64,
    pub raise_after: u32,
    pub clear_after: u32,
    pub budget_per_hour: f64,
    /// One false alarm on this footage is this many per hour: budgets below it mean none at all.
    pub one_alarm_per_hour: f64,
    pub curve: Vec<CurvePoint>,
    /// The lowest candidate from which on the whole curve is within the budget.
    pub chosen: f32,
    pub chosen_point: CurvePoint,
}

/// Alarm states of a score sequence at `threshold` (frames numbered as replay numbers them).
fn alarm_states(frames: &[u64], scores: &[f32], cfg: &AlarmConfig) -> Vec<AlarmState> {
    let mut h = Hysteresis::new(cfg.clone());
    frames.iter().zip(scores).map(|(&f, &s)| h.push(f, f, s).0).collect()
}

fn raises(states: &[AlarmState]) -> usize {
    states.iter().filter(|s| **s == AlarmState::Raised).count()
}

/// The candidate thresholds: a grid of [`STEP`] from below the lowest score to above the highest
/// normal score (so the last candidates raise no false alarm).
pub fn candidates(normal_scores: &[f32], other_scores: &[f32]) -> Vec<f32> {
    let finite = |v: &[f32]| v.iter().copied().filter(|s| s.is_finite()).collect::<Vec<f32>>();
    let (n, o) = (finite(normal_scores), finite(other_scores));
    let lo = n.iter().chain(&o).copied().fold(f32::INFINITY, f32::min);
    let hi = n.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !lo.is_finite() || !hi.is_finite() {
        return vec![];
    }
    let (a, b) = ((lo / STEP).floor() as i64, (hi / STEP).ceil() as i64 + 2);
    (a..=b).map(|k| k as f32 * STEP).map(|t| (t * 1000.0).round() / 1000.0).collect()
}

/// The lowest candidate from which on every point is within the budget (the last one always is).
pub fn choose(curve: &[CurvePoint], budget_per_hour: f64) -> Option<usize> {
    let mut chosen = None;
    for (i, p) in curve.iter().enumerate().rev() {
        if p.false_alarms_per_hour <= budget_per_hour {
            chosen = Some(i);
        } else {
            break;
        }
    }
    chosen
}

/// Replays the footage and measures the curve; writes `OUT/threshold.json` and `OUT/threshold.png`.
pub fn threshold(opts: &ThresholdOptions) -> Result<ThresholdReport, HostError> {
    if !(opts.fps.is_finite() && opts.fps > 0.0 && opts.budget_per_hour.is_finite() && opts.budget_per_hour >= 0.0) {
        return Err(HostError::Input { path: opts.model.clone(), reason: format!("fps {} must be > 0 and the false-alarm budget {} >= 0", opts.fps, opts.budget_per_hour) });
    }
    let replay_opts = ReplayOptions {
        model: opts.model.clone(),
        inputs: vec![],
        out: opts.out.clone(),
        backend: opts.backend.clone(),
        alarm: AlarmConfig { threshold: 1e9, raise_after: opts.raise_after, clear_after: opts.clear_after },
        start_ms: 0,
        fps: opts.fps,
        snapshots: None,
    };
    let pdir = opts.out.join("packets");
    std::fs::create_dir_all(&pdir).map_err(|source| HostError::Io { path: pdir.clone(), source })?;
    let run = |clip: &ClipInput, labels: Option<&[u8]>, tag: &str| -> Result<ClipTrace, HostError> {
        let outs = replay_clip(&replay_opts, clip, &pdir.join(format!("{tag}-{}.bin", clip.name)))?;
        ClipTrace::from_outputs(&clip.name, &outs, labels).map_err(|reason| HostError::Input { path: clip.dir.clone(), reason })
    };
    let mut normal = Vec::new();
    for dir in normal_clips(&opts.normal)? {
        let clip = ClipInput { name: crate::calibrate::clip_name(&dir), dir };
        normal.push(run(&clip, None, "normal")?);
    }
    let mut labelled = Vec::new();
    if let Some(root) = &opts.labelled {
        let (clips, labels) = discover(std::slice::from_ref(root))?;
        let labels = labels.ok_or_else(|| HostError::Input { path: root.join("testing/labels.json"), reason: "--labels needs the labels of its clips".into() })?;
        for clip in &clips {
            let l = labels.get(&clip.name).ok_or_else(|| HostError::Input { path: root.join("testing/labels.json"), reason: format!("no labels for clip {}", clip.name) })?;
            labelled.push(run(clip, Some(l), "labelled")?);
        }
    }
    let normal_frames: usize = normal.iter().map(|t| t.frames.len()).sum();
    let hours = normal_frames as f64 / opts.fps / 3600.0;
    if normal_frames == 0 {
        return Err(HostError::Input { path: opts.normal.first().cloned().unwrap_or_default(), reason: "no frame of normal footage was scored".into() });
    }
    let all = |ts: &[ClipTrace]| ts.iter().flat_map(|t| t.scores.iter().copied()).collect::<Vec<f32>>();
    let mut curve = Vec::new();
    for t in candidates(&all(&normal), &all(&labelled)) {
        let cfg = AlarmConfig { threshold: t, raise_after: opts.raise_after, clear_after: opts.clear_after };
        let false_alarms: usize = normal.iter().map(|c| raises(&alarm_states(&c.frames, &c.scores, &cfg))).sum();
        let labelled_figures = (!labelled.is_empty()).then(|| {
            let traces: Vec<ClipTrace> = labelled.iter().map(|c| ClipTrace { alarm: alarm_states(&c.frames, &c.scores, &cfg), ..c.clone() }).collect();
            alarm_metrics(&traces, opts.fps).1.map(|m| LabelledFigures {
                events: m.events,
                detected_events: m.detected_events,
                mean_detection_delay_frames: m.mean_detection_delay_frames,
                false_alarms: m.false_alarms,
            })
        });
        curve.push(CurvePoint { threshold: t, false_alarms, false_alarms_per_hour: false_alarms as f64 / hours, labelled: labelled_figures.flatten() });
    }
    let i = choose(&curve, opts.budget_per_hour).ok_or_else(|| HostError::Input { path: opts.model.clone(), reason: "no candidate threshold".into() })?;
    let report = ThresholdReport {
        model: opts.model.display().to_string(),
        normal_clips: normal.iter().map(|t| t.name.clone()).collect(),
        normal_frames,
        normal_hours: hours,
        raise_after: opts.raise_after,
        clear_after: opts.clear_after,
        budget_per_hour: opts.budget_per_hour,
        one_alarm_per_hour: 1.0 / hours,
        chosen: curve[i].threshold,
        chosen_point: curve[i].clone(),
        curve,
    };
    write(&report, &opts.out)?;
    Ok(report)
}

fn write(r: &ThresholdReport, out: &Path) -> Result<(), HostError> {
    let path = out.join("threshold.json");
    let text = serde_json::to_string_pretty(r).map_err(|e| HostError::Input { path: path.clone(), reason: e.to_string() })?;
    sfn_fsio::write_atomic(&path, text.as_bytes()).map_err(|source| HostError::Io { path: path.clone(), source })?;
    let fa: Vec<(f64, f64)> = r.curve.iter().map(|p| (f64::from(p.threshold), p.false_alarms_per_hour)).collect();
    let mut series: Vec<(&str, &[(f64, f64)])> = vec![("false alarms per hour (normal footage)", &fa)];
    let detected: Vec<(f64, f64)> =
        r.curve.iter().filter_map(|p| p.labelled.as_ref().filter(|l| l.events > 0).map(|l| (f64::from(p.threshold), 100.0 * l.detected_events as f64 / l.events as f64))).collect();
    if !detected.is_empty() {
        series.push(("events detected, % (labelled footage)", &detected));
    }
    let mark = format!("chosen {:.2} (budget {}/h)", r.chosen, r.budget_per_hour);
    let png = out.join("threshold.png");
    sfn_plots::lines_png(&png, "alarm threshold", "threshold (causal score)", "per hour / %", &series, Some((f64::from(r.chosen), &mark)))
        .map_err(|e| HostError::Input { path: png, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: f32, fa: f64) -> CurvePoint {
        CurvePoint { threshold: t, false_alarms: fa as usize, false_alarms_per_hour: fa, labelled: None }
    }

    #[test]
    fn the_lowest_threshold_from_which_on_the_budget_holds() {
        // A dip within budget at 1.0 below a point over budget at 1.5 is not chosen.
        let c = [point(0.5, 9.0), point(1.0, 0.0), point(1.5, 3.0), point(2.0, 1.0), point(2.5, 0.0)];
        assert_eq!(choose(&c, 1.0), Some(3));
        assert_eq!(choose(&c, 0.0), Some(4));
        assert_eq!(choose(&c, 10.0), Some(0));
        assert_eq!(choose(&[], 1.0), None);
    }

    #[test]
    fn candidates_span_the_scores_and_end_above_the_normal_maximum() {
        let c = candidates(&[-0.32, 1.01, f32::NAN], &[4.0]);
        assert_eq!(c.first(), Some(&-0.35));
        assert!(c.last().is_some_and(|&t| t > 1.01 + STEP), "{c:?}");
        assert!(c.windows(2).all(|w| (w[1] - w[0] - STEP).abs() < 1e-4));
        assert!(candidates(&[f32::NAN], &[]).is_empty());
    }

    #[test]
    fn hysteresis_counts_raises() {
        let cfg = AlarmConfig { threshold: 1.0, raise_after: 2, clear_after: 2 };
        let s = [0.0, 2.0, 2.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0];
        let frames: Vec<u64> = (0..s.len() as u64).collect();
        assert_eq!(raises(&alarm_states(&frames, &s, &cfg)), 2);
    }
}
