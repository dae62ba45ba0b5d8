//! Evaluation metrics: ROC curve and AUC (exact, ties as scikit-learn counts them), per-clip score sets, cosine similarity.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Scores and labels of one clip, one entry per scored frame (frame 4 onwards), in order.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ClipScores {
    /// None when the clip holds only one class.
    pub auc: Option<f64>,
    pub scores: Vec<f32>,
    pub labels: Vec<u8>,
}

/// One scoring of the whole test split.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ScoreSet {
    /// AUC over all scored frames of all clips concatenated.
    pub micro_auc: Option<f64>,
    /// Mean of the per-clip AUCs over clips holding both classes.
    pub macro_auc: Option<f64>,
    pub per_clip: BTreeMap<String, ClipScores>,
}

impl ScoreSet {
    /// Every clip's scores and labels concatenated (clip order), as the micro AUC sees them.
    pub fn concatenated(&self) -> (Vec<f32>, Vec<u8>) {
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        for c in self.per_clip.values() {
            scores.extend_from_slice(&c.scores);
            labels.extend_from_slice(&c.labels);
        }
        (scores, labels)
    }
}

/// Builds a score set from per-clip scores and labels.
pub fn score_set(clips: &[(String, Vec<f32>, Vec<u8>)]) -> ScoreSet {
    let mut per_clip = BTreeMap::new();
    let (mut all_s, mut all_l) = (Vec::new(), Vec::new());
    let mut aucs = Vec::new();
    for (name, s, l) in clips {
        let auc = roc_auc(s, l);
        aucs.extend(auc);
        all_s.extend_from_slice(s);
        all_l.extend_from_slice(l);
        per_clip.insert(name.clone(), ClipScores { auc, scores: s.clone(), labels: l.clone() });
    }
    let macro_auc = if aucs.is_empty() { None } else { Some(aucs.iter().sum::<f64>() / aucs.len() as f64) };
    ScoreSet { micro_auc: roc_auc(&all_s, &all_l), macro_auc, per_clip }
}

/// Points of the ROC curve, `(false positive rate, true positive rate)`, from `(0, 0)` to `(1, 1)`,
/// one point per distinct score (ties form a single step, i.e. a diagonal segment), thresholds
/// decreasing. Same validity rules as [`roc_auc`]; `None` where that returns `None`.
pub fn roc_curve(scores: &[f32], labels: &[u8]) -> Option<Vec<(f64, f64)>> {
    let (pos, neg, steps) = roc_steps(scores, labels)?;
    let mut pts = Vec::with_capacity(steps.len() + 1);
    pts.push((0.0, 0.0));
    pts.extend(steps.iter().map(|&(fp, tp)| (fp as f64 / neg as f64, tp as f64 / pos as f64)));
    Some(pts)
}

/// cos(a, b) = a . b / max(|a| |b|, 1e-30), accumulated in f64 (the semantic error is 1 - cos of the
/// predicted and the observed caption embedding).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb).max(1e-30)) as f32
}

/// Exact area under the ROC curve of `scores` (higher = more anomalous) against `labels`
/// (1 = positive/abnormal, 0 = negative/normal).
///
/// Tied scores are handled as scikit-learn's `roc_auc_score` does: the ROC curve has one point per
/// distinct score and the area is the trapezoid rule over it, so a positive tied with a negative counts
/// one half (the Mann-Whitney U statistic with average ranks). The area is accumulated in integers and
/// divided once, so the result is exact to `f64` rounding.
///
/// Returns `None` when only one class is present (the AUC is undefined), and also when the slices are
/// empty or of different lengths, a label is neither 0 nor 1, or a score is NaN. Infinite scores are
/// fine (they are ordered).
pub fn roc_auc(scores: &[f32], labels: &[u8]) -> Option<f64> {
    let (pos, neg, steps) = roc_steps(scores, labels)?;
    // Twice the trapezoid area in units of (1 negative) x (1 positive).
    let mut area2: u128 = 0;
    let (mut fp0, mut tp0) = (0u64, 0u64);
    for &(fp, tp) in &steps {
        area2 += u128::from(fp - fp0) * u128::from(tp + tp0);
        fp0 = fp;
        tp0 = tp;
    }
    Some(area2 as f64 / (2.0 * pos as f64 * neg as f64))
}

/// (positives, negatives, cumulative (fp, tp) after each group of tied scores, scores decreasing).
type RocSteps = (u64, u64, Vec<(u64, u64)>);

/// Validates the input and computes its [`RocSteps`].
pub(crate) fn roc_steps(scores: &[f32], labels: &[u8]) -> Option<RocSteps> {
    if scores.is_empty() || scores.len() != labels.len() {
        return None;
    }
    if scores.iter().any(|s| s.is_nan()) || labels.iter().any(|&l| l > 1) {
        return None;
    }
    let pos = labels.iter().filter(|&&l| l == 1).count() as u64;
    let neg = labels.len() as u64 - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut steps = Vec::new();
    let (mut fp, mut tp) = (0u64, 0u64);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        // `==` (not total order) so that -0.0 and 0.0 tie, as in scikit-learn.
        while i < order.len() && scores[order[i]] == s {
            if labels[order[i]] == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        steps.push((fp, tp));
    }
    Some((pos, neg, steps))
}
