//! `eval`'s pictures: the error map of each clip's highest-scoring frame and the score plots.

use std::path::Path;

use sfn_models::scoring::{self, ErrorPooling};

use super::Report;
use crate::captions::WindowTexts;
use crate::checkpoint::CheckpointError;
use crate::data::{Dataset, INPUT_FRAMES};
use crate::{plot, TrainerError};

/// Per clip, the frame whose visual error is highest: target frame, prediction and squared-error map
/// side by side (`clip_<name>_error_map.png`), with the box that made the score outlined.
pub fn write_error_maps(model: &dyn crate::ensemble::Network, ds: &Dataset, texts: Option<&WindowTexts>, report: &Report, dir: &Path) -> Result<(), TrainerError> {
    let img = &model.config().image;
    let (h, w, ch) = (img.height, img.width, img.channels);
    let cal = &report.calibration;
    for (c, clip) in ds.clips.iter().enumerate() {
        let Some(errs) = report.visual_error.get(&clip.name) else { continue };
        let Some((k, &e)) = errs.iter().enumerate().filter(|(_, v)| v.is_finite()).max_by(|a, b| a.1.total_cmp(b.1)) else { continue };
        let t = k + 4;
        let x = crate::train::batch_tensor(ds, &[(c, t)])?;
        let text = texts.map(|tx| crate::train::text_tensors(tx, &[(c, t)])).transpose()?;
        let pred = model.predict(&x.narrow(1, 0, INPUT_FRAMES)?, text.as_ref().map(|t| &t.0))?.frame.flatten_all()?.to_vec1::<f32>()?;
        let target = &clip.frames[t];
        let map = cal.pooling.map(&pred, target, &clip.frames[t - 1], ch, h, w)?;
        // The box that made each score: highest box mean (z-scored against its region for WindowMaxZ).
        let best_box = |scores: &[f32], win: usize, stride: usize| {
            let best = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap_or(0);
            let [_, gw] = scoring::box_grid(h, w, win, stride);
            let s = stride.max(1);
            ((best / gw) * s, (best % gw) * s, win.min(h).min(w))
        };
        let mark = match cal.pooling.window() {
            Some((win, stride)) => {
                let means = cal.pooling.box_values(&map, h, w)?;
                let scores = match (&cal.regions, cal.pooling) {
                    (Some(r), ErrorPooling::WindowMaxZ { .. }) => r.box_scores(&means).unwrap_or(means),
                    _ => means,
                };
                Some(best_box(&scores, win, stride))
            }
            None => None,
        };
        // With a speed cue: its map (pixels a frame) and the box whose region z is highest.
        let speed = match &cal.speed {
            Some(sp) => {
                let m = sp.cue.map(&clip.frames[t - 1], target, ch, h, w)?;
                let z = sp.regions.box_scores(&scoring::window_means(&m, h, w, sp.cue.window, sp.cue.stride))?;
                let mark = best_box(&z, sp.cue.window, sp.cue.stride);
                Some((m, mark, sp.cue.name()))
            }
            None => None,
        };
        // Show channel 0 (gray models have one).
        let plane = h * w;
        let frame_title = format!("frame {t}");
        let mut panels = vec![
            plot::Panel { title: &frame_title, values: &target[..plane], heat: false, mark: None },
            plot::Panel { title: "prediction", values: &pred[..plane], heat: false, mark: None },
            // The network's (weighted) error: the first plane of the map.
            plot::Panel { title: "squared error", values: &map[..plane], heat: true, mark },
        ];
        if let Some((m, mark, _)) = &speed {
            panels.push(plot::Panel { title: "speed (px a frame)", values: m, heat: true, mark: Some(*mark) });
        }
        let cue = speed.as_ref().map(|(_, _, name)| format!(" + {name}")).unwrap_or_default();
        let title = format!("clip {}: frame {t}, highest visual error {e:.4} ({}{cue})", clip.name, cal.pooling.name());
        plot::error_map_png(&dir.join(format!("clip_{}_error_map.png", clip.name)), &title, &panels, h, w)?;
    }
    Ok(())
}

fn fmt_auc(a: Option<f64>) -> String {
    a.map(|v| format!("{:.1}", v * 100.0)).unwrap_or_else(|| "n/a".into())
}

/// One PNG per clip (offline and causal curves over the shaded ground truth) and a ROC PNG.
pub fn write_plots(report: &Report, dir: &Path) -> Result<(), TrainerError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io { path: dir.into(), source })?;
    let offline = "offline";
    for (name, off) in &report.offline.per_clip {
        let Some(cau) = report.causal.per_clip.get(name) else { continue };
        // Causal z-scores live on another scale: rescale to [0, 1] for display only.
        let cau_disp = scoring::min_max(&cau.scores);
        let title = format!("clip {name}: offline AUC {} / causal AUC {}", fmt_auc(off.auc), fmt_auc(cau.auc));
        plot::score_curves_png(&dir.join(format!("clip_{name}.png")), &title, &[(offline, &off.scores), ("causal (rescaled)", &cau_disp)], &off.labels)?;
    }
    let (os, ol) = report.offline.concatenated();
    let (cs, cl) = report.causal.concatenated();
    plot::roc_png(
        &dir.join("roc.png"),
        &format!("frame-level ROC, micro AUC offline {} causal {}", fmt_auc(report.offline.micro_auc), fmt_auc(report.causal.micro_auc)),
        &[(offline, &os, &ol), ("causal", &cs, &cl)],
    )?;
    Ok(())
}
