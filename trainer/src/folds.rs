//! The honest protocol of `sfn-train eval --folds`: the labelled clips split into two fixed folds;
//! every candidate scoring is scored on each fold, and a choice among candidates is made on one fold
//! and reported on the other, both ways. The figure that counts is the mean over the two held-out
//! folds. Beside it, the model on normal clips held out of training ([`HeldOutNormal`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sfn_models::scoring::{self, CausalCalibration, OfflineScoring};

use crate::TrainerError;

/// Two disjoint folds of labelled clips, each named.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Folds {
    pub names: [String; 2],
    pub clips: [Vec<String>; 2],
}

impl Folds {
    /// The Ped2 dev folds: A = 01, 03, 05, 08 and B = 04, 06, 09, 11.
    pub fn ped2() -> Self {
        let v = |s: &[&str]| s.iter().map(|c| c.to_string()).collect();
        Folds { names: ["A".into(), "B".into()], clips: [v(&["01", "03", "05", "08"]), v(&["04", "06", "09", "11"])] }
    }

    /// `ped2` (or an empty spec) for [`Folds::ped2`], else `A_CLIPS/B_CLIPS` with comma-separated
    /// clip names, e.g. `01,03,05,08/04,06,09,11`.
    pub fn parse(spec: &str) -> Result<Self, TrainerError> {
        let spec = spec.trim();
        if spec.is_empty() || spec == "ped2" {
            return Ok(Self::ped2());
        }
        let bad = |why: &str| TrainerError::Usage(format!("--folds {spec:?}: {why} (expected `ped2` or A_CLIPS/B_CLIPS, e.g. 01,03,05,08/04,06,09,11)"));
        let parts: Vec<&str> = spec.split('/').collect();
        if parts.len() != 2 {
            return Err(bad("two folds separated by '/'"));
        }
        let fold = |p: &str| -> Vec<String> { p.split(',').map(str::trim).filter(|c| !c.is_empty()).map(String::from).collect() };
        let (a, b) = (fold(parts[0]), fold(parts[1]));
        if a.is_empty() || b.is_empty() {
            return Err(bad("a fold names no clip"));
        }
        if let Some(c) = a.iter().find(|c| b.contains(c)) {
            return Err(bad(&format!("clip {c} is in both folds")));
        }
        Ok(Folds { names: ["A".into(), "B".into()], clips: [a, b] })
    }

    /// Every clip of both folds, A first.
    pub fn all_clips(&self) -> Vec<String> {
        self.clips.iter().flatten().cloned().collect()
    }

    /// Refuses a fold clip without labels and a fold without a normal or without an abnormal scored
    /// frame (frames from the 5th on), naming the clip or the fold's clips. (That the clips exist in
    /// the data is checked where they are read.)
    pub fn check(&self, labels: &BTreeMap<String, Vec<u8>>) -> Result<(), TrainerError> {
        for (name, clips) in self.names.iter().zip(&self.clips) {
            if let Some(c) = clips.iter().find(|c| !labels.contains_key(*c)) {
                return Err(TrainerError::Usage(format!("--folds: fold {name}: clip {c} has no labels in testing/labels.json")));
            }
            let [normal, abnormal] = scored_counts(clips, labels);
            if normal == 0 || abnormal == 0 {
                let what = if normal > 0 { "abnormal" } else { "normal" };
                return Err(TrainerError::Usage(format!("--folds: fold {name} ({}) has no {what} scored frame: its AUC is undefined", clips.join(", "))));
            }
        }
        Ok(())
    }
}

/// An AUC in [0, 1] as a percentage with two decimals, or `n/a` where it is undefined.
pub fn pct(auc: Option<f64>) -> String {
    auc.map_or_else(|| "n/a".into(), |v| format!("{:.2}", v * 100.0))
}

/// AUCs (in [0, 1]) of one candidate on one set of clips.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub struct FoldFigures {
    pub offline_micro_auc: Option<f64>,
    pub offline_macro_auc: Option<f64>,
    pub causal_micro_auc: Option<f64>,
    pub causal_macro_auc: Option<f64>,
}

impl FoldFigures {
    /// What the selection rule maximises: the mean of the offline and causal micro AUCs.
    pub fn selection_value(&self) -> f64 {
        match (self.offline_micro_auc, self.causal_micro_auc) {
            (Some(o), Some(c)) => (o + c) / 2.0,
            _ => f64::NEG_INFINITY,
        }
    }

    /// Field-wise mean (a field missing in either is missing).
    pub fn mean(a: &FoldFigures, b: &FoldFigures) -> FoldFigures {
        let m = |x: Option<f64>, y: Option<f64>| Some((x? + y?) / 2.0);
        FoldFigures {
            offline_micro_auc: m(a.offline_micro_auc, b.offline_micro_auc),
            offline_macro_auc: m(a.offline_macro_auc, b.offline_macro_auc),
            causal_micro_auc: m(a.causal_micro_auc, b.causal_micro_auc),
            causal_macro_auc: m(a.causal_macro_auc, b.causal_macro_auc),
        }
    }
}

/// Offline / causal micro, macro in brackets, in percent: `97.47/98.61 (97.47/96.44)`.
impl std::fmt::Display for FoldFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that a width in the format string aligns it as a string.
        f.pad(&format!("{}/{} ({}/{})", pct(self.offline_micro_auc), pct(self.causal_micro_auc), pct(self.offline_macro_auc), pct(self.causal_macro_auc)))
    }
}

/// One way of scoring frames: a visual error per scored frame of each clip, the cap of its
/// saturated offline scoring (None: unsaturated) and its causal smoothing (None: the calibration's).
#[derive(Clone, Debug)]
pub struct Candidate {
    pub name: String,
    pub errors: BTreeMap<String, Vec<f32>>,
    pub cap: Option<f32>,
    /// The one-sided Gaussian's sigma of its causal scores, in frames.
    pub sigma: Option<f32>,
}

impl Candidate {
    /// Unsaturated, smoothed as the calibration says.
    pub fn new(name: impl Into<String>, errors: BTreeMap<String, Vec<f32>>) -> Self {
        Candidate { name: name.into(), errors, cap: None, sigma: None }
    }
}

/// A candidate's figures on each fold and their mean.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FoldRow {
    pub candidate: String,
    pub per_fold: BTreeMap<String, FoldFigures>,
    /// Mean over the two folds (a 2-fold figure for a candidate fixed in advance).
    pub mean: FoldFigures,
}

/// A choice made on one fold and reported on the other.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Selection {
    pub chosen_on: String,
    pub candidate: String,
    pub reported_on: String,
    pub figures: FoldFigures,
    /// The margin (in the selection value) by which a candidate must beat the model's own scoring on
    /// the choosing fold to replace it: the weight of one normal frame in one of the two AUCs.
    #[serde(default)]
    pub tolerance: f64,
}

/// What `eval --folds` adds to the report.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FoldReport {
    pub folds: Folds,
    pub rule: String,
    pub rows: Vec<FoldRow>,
    /// Chosen on A -> reported on B, and chosen on B -> reported on A.
    pub selections: Vec<Selection>,
    /// Mean of the two held-out figures: the cross-validated result.
    pub cross_validated: FoldFigures,
    /// The model's own scoring (the first candidate) on each held-out fold, averaged: its figure when
    /// it is taken as fixed rather than chosen.
    pub model: FoldFigures,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heldout_normal: Option<HeldOutNormal>,
}

/// The selection rule, stated in every report.
pub const RULE: &str = "the model's own scoring, unless the candidate with the highest mean of offline and causal micro AUC on the choosing fold (first listed wins ties) beats it there by more than one normal frame's weight in one of the two AUCs, 1 / (2 x the fold's scored normal frames)";

/// The tolerance of the selection rule on `clips`: 1 / (2 N), N their scored normal frames (a rank
/// change of one normal frame moves a micro AUC by 1 / N, and the selection value by half that).
pub fn tolerance(clips: &[String], labels: &BTreeMap<String, Vec<u8>>) -> f64 {
    1.0 / (2.0 * scored_counts(clips, labels)[0].max(1) as f64)
}

/// Normal and abnormal scored frames (from the 5th frame of each clip on) of the labelled `clips`.
fn scored_counts(clips: &[String], labels: &BTreeMap<String, Vec<u8>>) -> [usize; 2] {
    let mut n = [0; 2];
    for &v in clips.iter().filter_map(|c| labels.get(c)).flat_map(|l| l.iter().skip(crate::data::INPUT_FRAMES)) {
        n[usize::from(v.min(1))] += 1;
    }
    n
}

/// Figures of `cand` on `clips` (each must be in `cand.errors` and `labels`): offline with the
/// candidate's saturation, causal with `cal`'s smoothing (AUC needs no z constants: one affine map).
pub fn figures(cand: &Candidate, clips: &[String], labels: &BTreeMap<String, Vec<u8>>, offline: &OfflineScoring, cal: &CausalCalibration) -> Result<FoldFigures, TrainerError> {
    let cal = CausalCalibration { visual_mean: 0.0, visual_std: 1.0, semantic_weight: 0.0, visual_weight: 1.0, sigma: cand.sigma.unwrap_or(cal.sigma), ..cal.clone() };
    let (mut off, mut cau) = (Vec::new(), Vec::new());
    for c in clips {
        let e = cand.errors.get(c).ok_or_else(|| TrainerError::Usage(format!("--folds: candidate {}: no errors for clip {c}", cand.name)))?;
        let l = labels.get(c).ok_or_else(|| TrainerError::Usage(format!("--folds: clip {c} has no labels")))?;
        let l = l.get(crate::data::INPUT_FRAMES..).unwrap_or(&[]).to_vec();
        if l.len() != e.len() {
            return Err(TrainerError::Usage(format!("--folds: clip {c}: {} errors for {} scored labels", e.len(), l.len())));
        }
        let v = match cand.cap {
            Some(cap) => scoring::saturate(e, cap),
            None => e.clone(),
        };
        off.push((c.clone(), scoring::try_offline_scores(&v, None, offline)?, l.clone()));
        cau.push((c.clone(), scoring::causal_scores(e, None, &cal), l));
    }
    let (o, k) = (scoring::score_set(&off), scoring::score_set(&cau));
    Ok(FoldFigures { offline_micro_auc: o.micro_auc, offline_macro_auc: o.macro_auc, causal_micro_auc: k.micro_auc, causal_macro_auc: k.macro_auc })
}

/// Scores every candidate on both folds and makes the choice both ways ([`RULE`]). The first candidate
/// is the model's own scoring: the default that another candidate must beat by [`tolerance`].
pub fn cross_validate(folds: &Folds, candidates: &[Candidate], labels: &BTreeMap<String, Vec<u8>>, offline: &OfflineScoring, cal: &CausalCalibration) -> Result<FoldReport, TrainerError> {
    if candidates.is_empty() {
        return Err(TrainerError::Usage("--folds: no candidate scoring".into()));
    }
    folds.check(labels)?;
    let mut rows = Vec::new();
    let mut per: Vec<[FoldFigures; 2]> = Vec::new();
    for cand in candidates {
        let a = figures(cand, &folds.clips[0], labels, offline, cal)?;
        let b = figures(cand, &folds.clips[1], labels, offline, cal)?;
        let per_fold = [(folds.names[0].clone(), a), (folds.names[1].clone(), b)].into_iter().collect();
        rows.push(FoldRow { candidate: cand.name.clone(), per_fold, mean: FoldFigures::mean(&a, &b) });
        per.push([a, b]);
    }
    let mut selections = Vec::new();
    for (choose, report) in [(0usize, 1usize), (1, 0)] {
        let mut best = 0;
        for (i, p) in per.iter().enumerate() {
            if p[choose].selection_value() > per[best][choose].selection_value() {
                best = i;
            }
        }
        let tol = tolerance(&folds.clips[choose], labels);
        if per[best][choose].selection_value() - per[0][choose].selection_value() <= tol {
            best = 0;
        }
        selections.push(Selection {
            chosen_on: folds.names[choose].clone(),
            candidate: candidates[best].name.clone(),
            reported_on: folds.names[report].clone(),
            figures: per[best][report],
            tolerance: tol,
        });
    }
    let cross_validated = FoldFigures::mean(&selections[0].figures, &selections[1].figures);
    let model = FoldFigures::mean(&per[0][1], &per[0][0]);
    Ok(FoldReport { folds: folds.clone(), rule: RULE.into(), rows, selections, cross_validated, model, heldout_normal: None })
}

/// The model on normal training clips it never saw (`train.json`'s `holdout`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HeldOutNormal {
    pub clips: Vec<String>,
    pub frames: usize,
    /// Mean squared error of the prediction over whole frames, and of copying the last frame.
    pub model_mse: f64,
    pub copy_mse: f64,
    /// A pixel moves when |I_{t+1} - I_t| exceeds this (normalised units, [-1, 1]).
    pub moving_threshold: f32,
    /// Share of pixels that move.
    pub moving_share: f64,
    /// Mean squared error over moving pixels only, the model's and copying's.
    pub model_moving_mse: f64,
    pub copy_moving_mse: f64,
    /// model / copy, whole frame and moving pixels (below 1: the network predicts better than copying).
    pub mse_ratio: f64,
    pub moving_ratio: f64,
    /// The causal score (the model's calibration): highest value, and alarms raised with the
    /// hysteresis below.
    pub causal_max: f32,
    pub alarm_threshold: f32,
    pub raise_after: u32,
    pub clear_after: u32,
    pub alarms: usize,
    pub alarms_per_clip: BTreeMap<String, usize>,
}

/// The moving-pixel threshold of [`HeldOutNormal`]: 0.1 in [-1, 1] units, about 13 gray levels.
pub const MOVING_THRESHOLD: f32 = 0.1;

/// Squared-error sums of one predicted frame: (whole frame, moving pixels, moving pixel count), and
/// the same for copying. Frames are CHW; a pixel moves when any channel moves.
pub fn frame_sums(pred: &[f32], target: &[f32], last: &[f32], channels: usize) -> [f64; 5] {
    let plane = target.len() / channels.max(1);
    let mut s = [0f64; 5];
    for p in 0..plane {
        let (mut e, mut c, mut moving) = (0f64, 0f64, false);
        for ch in 0..channels {
            let i = ch * plane + p;
            e += f64::from(pred[i] - target[i]).powi(2);
            let d = target[i] - last[i];
            c += f64::from(d).powi(2);
            moving |= d.abs() > MOVING_THRESHOLD;
        }
        let (e, c) = (e / channels as f64, c / channels as f64);
        s[0] += e;
        s[1] += c;
        if moving {
            s[2] += e;
            s[3] += c;
            s[4] += 1.0;
        }
    }
    s
}

/// Alarms the edge runtime's hysteresis raises on `scores`: one when `raise_after` consecutive scores
/// exceed `threshold` while no alarm is on; an alarm clears after `clear_after` consecutive scores at
/// or below it (NaN counts as below).
pub fn alarm_count(scores: &[f32], threshold: f32, raise_after: u32, clear_after: u32) -> usize {
    let (raise, clear) = (raise_after.max(1), clear_after.max(1));
    let (mut on, mut above, mut below, mut n) = (false, 0u32, 0u32, 0usize);
    for &s in scores {
        if s > threshold {
            above += 1;
            below = 0;
        } else {
            below += 1;
            above = 0;
        }
        if !on && above >= raise {
            on = true;
            n += 1;
        } else if on && below >= clear {
            on = false;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> BTreeMap<String, Vec<u8>> {
        let mut l = BTreeMap::new();
        l.insert("n".to_string(), vec![0u8; 14]);
        l.insert("a".to_string(), [vec![0u8; 8], vec![1u8; 6]].concat());
        l.insert("x".to_string(), vec![1u8; 14]);
        l.insert("y".to_string(), [vec![0u8; 4], vec![1u8; 10]].concat());
        l
    }

    #[test]
    fn fold_figures_print_as_percent_and_align() {
        let f = FoldFigures { offline_micro_auc: Some(0.97474), offline_macro_auc: Some(1.0), causal_micro_auc: Some(0.98606), causal_macro_auc: None };
        assert_eq!(f.to_string(), "97.47/98.61 (100.00/n/a)");
        // A width in the format string pads the whole cell, as the printed tables rely on.
        assert_eq!(format!("[{f:>26}]"), "[  97.47/98.61 (100.00/n/a)]");
        assert_eq!(pct(Some(0.5)), "50.00");
        assert_eq!(pct(None), "n/a");
    }

    #[test]
    fn parse_and_check_folds() {
        assert_eq!(Folds::parse("ped2").unwrap(), Folds::ped2());
        let f = Folds::parse("n,a/x, y").unwrap();
        assert_eq!(f.clips, [vec!["n".to_string(), "a".into()], vec!["x".to_string(), "y".into()]]);
        for bad in ["n,a", "n/a/x", "n,a/", "n,a/a"] {
            assert!(Folds::parse(bad).is_err(), "{bad}");
        }
        // Fold B holds only abnormal scored frames ("y"'s first 4 frames are not scored).
        let e = f.check(&labels()).unwrap_err().to_string();
        assert!(e.contains("fold B (x, y) has no normal scored frame"), "{e}");
        let e = Folds::parse("n,a/q").unwrap().check(&labels()).unwrap_err().to_string();
        assert!(e.contains("clip q has no labels"), "{e}");
        assert!(Folds::parse("n,x/a").unwrap().check(&labels()).is_ok());
    }

    #[test]
    fn choice_is_made_on_one_fold_and_reported_on_the_other() {
        // Folds A = {n, x} and B = {a}. Candidate "good" ranks both folds perfectly; "half" only A.
        let folds = Folds::parse("n,x/a").unwrap();
        let l = labels();
        let scored = |c: &str| l[c][crate::data::INPUT_FRAMES..].iter().map(|&v| f32::from(v)).collect::<Vec<f32>>();
        let mut good = BTreeMap::new();
        let mut half = BTreeMap::new();
        for c in ["n", "x", "a"] {
            good.insert(c.to_string(), scored(c));
            half.insert(c.to_string(), if c == "a" { scored(c).iter().map(|v| 1.0 - v).collect() } else { scored(c) });
        }
        let cands = vec![Candidate::new("half", half), Candidate::new("good", good)];
        let cal = CausalCalibration::fit(&[0.0, 1.0], None, 0.0, 1.0, 0.0).unwrap();
        let off = OfflineScoring { sigma: 0.0, ..OfflineScoring::default() };
        let r = cross_validate(&folds, &cands, &l, &off, &cal).unwrap();
        assert_eq!(r.rows.len(), 2);
        // On A both are perfect: the first listed wins the tie and is reported on B, where it fails.
        assert_eq!((r.selections[0].chosen_on.as_str(), r.selections[0].candidate.as_str()), ("A", "half"));
        assert_eq!(r.selections[0].figures.causal_micro_auc, Some(0.0));
        // On B only "good" is perfect; reported on A it is perfect too.
        assert_eq!((r.selections[1].chosen_on.as_str(), r.selections[1].candidate.as_str()), ("B", "good"));
        assert_eq!(r.selections[1].figures.causal_micro_auc, Some(1.0));
        assert_eq!(r.cross_validated.causal_micro_auc, Some(0.5));
        assert_eq!(r.model.causal_micro_auc, Some(0.5));
    }

    /// A candidate replaces the model's own scoring only when it wins by more than one normal frame's
    /// weight: on B = {a} (4 normal, 6 abnormal scored frames) the tolerance is 1 / 8.
    #[test]
    fn the_own_scoring_stays_unless_clearly_beaten() {
        let folds = Folds::parse("n,x/a").unwrap();
        let l = labels();
        assert_eq!(tolerance(&folds.clips[1], &l), 0.125);
        assert_eq!(tolerance(&folds.clips[0], &l), 0.05);
        let scored = |c: &str| l[c][crate::data::INPUT_FRAMES..].iter().map(|&v| f32::from(v)).collect::<Vec<f32>>();
        let cal = CausalCalibration::fit(&[0.0, 1.0], None, 0.0, 1.0, 0.0).unwrap();
        let off = OfflineScoring { sigma: 0.0, ..OfflineScoring::default() };
        let with_a = |a: Vec<f32>| ["n", "x", "a"].into_iter().map(|c| (c.to_string(), if c == "a" { a.clone() } else { scored(c) })).collect::<BTreeMap<_, _>>();
        let good = Candidate::new("good", with_a(scored("a")));
        // One normal frame above one abnormal frame: 23 of 24 pairs, 0.042 under "good" on B.
        let near = Candidate::new("own", with_a(vec![0.0, 0.0, 0.0, 0.5, 0.4, 1.0, 1.0, 1.0, 1.0, 1.0]));
        let r = cross_validate(&folds, &[near, good.clone()], &l, &off, &cal).unwrap();
        assert_eq!((r.selections[1].chosen_on.as_str(), r.selections[1].candidate.as_str()), ("B", "own"));
        assert_eq!(r.selections[1].tolerance, 0.125);
        // One normal frame above every abnormal one: 18 of 24, 0.25 under "good": replaced.
        let far = Candidate::new("own", with_a(vec![0.0, 0.0, 0.0, 2.0, 0.4, 1.0, 1.0, 1.0, 1.0, 1.0]));
        let r = cross_validate(&folds, &[far, good], &l, &off, &cal).unwrap();
        assert_eq!((r.selections[1].chosen_on.as_str(), r.selections[1].candidate.as_str()), ("B", "good"));
    }

    /// A candidate's own causal sigma replaces the calibration's for its causal scores only: after an
    /// event ends, the longer smoothing keeps the first normal frames high and loses causal AUC; the
    /// offline figure does not move.
    #[test]
    fn a_candidate_smooths_with_its_own_sigma() {
        let folds = Folds::parse("p/a").unwrap();
        let mut l = labels();
        // Scored frames (from index 4): normal, an event of 3 frames, normal again.
        l.insert("p".to_string(), [vec![0u8; 6], vec![1u8; 3], vec![0u8; 7]].concat());
        let errors: BTreeMap<String, Vec<f32>> = ["p", "a"].iter().map(|c| (c.to_string(), l[*c][crate::data::INPUT_FRAMES..].iter().map(|&v| f32::from(v)).collect())).collect();
        let cal = CausalCalibration::fit(&[0.0, 1.0], None, 0.5, 1.0, 0.0).unwrap();
        let off = OfflineScoring { sigma: 0.0, ..OfflineScoring::default() };
        let cand = |sigma| Candidate { name: format!("{sigma:?}"), errors: errors.clone(), cap: None, sigma };
        let r = cross_validate(&folds, &[cand(None), cand(Some(3.0))], &l, &off, &cal).unwrap();
        let (short, long) = (&r.rows[0].per_fold["A"], &r.rows[1].per_fold["A"]);
        assert!(long.causal_micro_auc.unwrap() < short.causal_micro_auc.unwrap(), "{short:?} vs {long:?}");
        assert_eq!(long.offline_micro_auc, short.offline_micro_auc);
    }

    #[test]
    fn alarms_follow_the_hysteresis() {
        let s = [0.0, 5.0, 5.0, 5.0, 0.0, 5.0, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0];
        // Raised at index 3; two below, not enough to clear with clear_after 3 ... cleared at 8; raised again at 11.
        assert_eq!(alarm_count(&s, 3.5, 3, 3), 2);
        assert_eq!(alarm_count(&s, 3.5, 3, 10), 1);
        assert_eq!(alarm_count(&s, 5.0, 1, 1), 0);
        assert_eq!(alarm_count(&[f32::NAN; 4], 0.0, 1, 1), 0);
    }

    #[test]
    fn moving_pixels_are_counted_against_the_last_frame() {
        // 1 channel, 4 pixels: two move (by 0.5 and 0.2), two do not.
        let last = [0.0, 0.0, 0.0, 0.0];
        let target = [0.5, 0.2, 0.05, 0.0];
        let pred = [0.5, 0.0, 0.0, 0.1];
        let s = frame_sums(&pred, &target, &last, 1);
        assert!((s[0] - (0.04 + 0.0025 + 0.01)).abs() < 1e-6, "{s:?}");
        assert!((s[1] - (0.25 + 0.04 + 0.0025)).abs() < 1e-6, "{s:?}");
        assert!((s[2] - 0.04).abs() < 1e-6 && (s[3] - 0.29).abs() < 1e-6 && s[4] == 2.0, "{s:?}");
    }
}
