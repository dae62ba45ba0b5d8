//! `sfn-train`: train, evaluate (and later export) SFN-VAD models.

use anyhow::{Context, Result};
use clap::Parser;
use sfn_models::config::FilterKind;
use sfn_models::scoring::OfflineScoring;
use sfn_models::SfnConfig;
use sfn_trainer::eval::{evaluate, EvalOptions};
use sfn_trainer::folds::pct;
use sfn_trainer::train::{train, TrainConfig, TrainOptions};

mod cli;
mod print;

use cli::{Cli, Cmd};
use print::print_report;

fn main() -> Result<()> {
    // Colour only on a terminal: piped into a file or a log collector, lines stay plain.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().cmd {
        Cmd::Train { preset, config, train_config, data, out, resume, epochs, batch_size, lr, seed, filter, captions, holdout, ema_decays, quiet } => {
            let mut model = match &config {
                Some(p) => {
                    let s = std::fs::read_to_string(p).with_context(|| format!("reading network config {}", p.display()))?;
                    serde_json::from_str::<SfnConfig>(&s).with_context(|| format!("parsing network config {}", p.display()))?
                }
                None => SfnConfig::preset(&preset)?,
            };
            if let Some(f) = &filter {
                model.sffm.kind = match f.as_str() {
                    "mlp" => FilterKind::Mlp,
                    "memory" => FilterKind::Memory,
                    _ => FilterKind::Sffm,
                };
            }
            let mut tc = match &train_config {
                Some(p) => {
                    let s = std::fs::read_to_string(p).with_context(|| format!("reading training config {}", p.display()))?;
                    serde_json::from_str::<TrainConfig>(&s).with_context(|| format!("parsing training config {}", p.display()))?
                }
                None => TrainConfig::for_preset(&model.preset),
            };
            if let Some(e) = epochs {
                tc.epochs = e;
            }
            if let Some(b) = batch_size {
                tc.batch_size = b;
            }
            if let Some(lr) = lr {
                tc.adam.lr = lr;
            }
            if let Some(s) = seed {
                tc.seed = s;
            }
            if captions.is_some() {
                tc.captions = captions.clone();
            }
            if let Some(h) = &holdout {
                tc.holdout = h.iter().filter(|n| n.as_str() != "none").cloned().collect();
            }
            if let Some(d) = &ema_decays {
                tc.ema_decays = d.clone();
            }
            if resume
                && (batch_size.is_some()
                    || lr.is_some()
                    || seed.is_some()
                    || config.is_some()
                    || train_config.is_some()
                    || filter.is_some()
                    || captions.is_some()
                    || holdout.is_some()
                    || ema_decays.is_some())
            {
                tracing::warn!(
                    "--resume uses the network and settings stored in {}; --batch-size, --lr, --seed, --config, --train-config, --filter, --captions, --holdout and --ema-decays are ignored (--epochs is honoured)",
                    out.display()
                );
            }
            let epochs_override = if resume { epochs } else { None };
            let opts = TrainOptions { data, out: out.clone(), model, train: tc, resume, epochs_override, progress: !quiet };
            let s = train(&opts)?;
            let st = &s.state;
            println!(
                "trained {} epochs, {} steps, {} samples in {:.0} s ({:.1} samples/s); model in {}",
                st.epochs.len(),
                st.step,
                st.samples,
                st.seconds,
                st.samples as f64 / st.seconds.max(1e-9),
                out.display()
            );
        }
        Cmd::Export { model, out, int8, weight_int8, calib, calib_windows, int8_reduce_range } => {
            let opts = sfn_trainer::export::ExportOptions { model, out, int8, weight_int8, calib, calib_windows, reduce_range: int8_reduce_range };
            for (dir, m) in sfn_trainer::export::export(&opts)? {
                println!("{:<17} {}  encoder.onnx {:>9} B  decoder.onnx {:>9} B", m.precision.name(), dir.display(), m.encoder.bytes, m.decoder.bytes);
            }
        }
        Cmd::EvalOnnx { model, data, backend, batch_size, report, provider, threads, trt_cache, trt_fp16, trt_int8, captions } => {
            use sfn_infer::onnxruntime_options::{OrtOptions, Provider};
            let backend = match backend.as_str() {
                "onnxruntime" => sfn_infer::BackendKind::OnnxRuntime(OrtOptions {
                    provider: match provider.as_str() {
                        "cuda" => Provider::Cuda,
                        "tensorrt" => Provider::TensorRt,
                        _ => Provider::Cpu,
                    },
                    threads,
                    library: None,
                    trt_cache,
                    trt_fp16,
                    trt_int8,
                    strict: true,
                }),
                _ => sfn_infer::BackendKind::Tract,
            };
            let r = sfn_trainer::export::evaluate_export(&model, &data, &backend, batch_size, captions.as_deref())?;
            println!("{} {} ({} pooling, {} frames, {:.1} s): offline micro {} macro {}", r.backend, r.precision, r.pooling, r.frames, r.seconds, pct(r.offline.micro_auc), pct(r.offline.macro_auc));
            if let Some(u) = &r.offline_saturated {
                println!("offline on the error saturated at the calibration's largest normal z (beside, not the model's score): micro {} macro {}", pct(u.micro_auc), pct(u.macro_auc));
            }
            if let Some(c) = &r.causal {
                println!("causal micro {} macro {}", pct(c.micro_auc), pct(c.macro_auc));
            }
            if let Some(p) = report {
                sfn_trainer::checkpoint::write_json(&p, &r)?;
            }
        }
        Cmd::Captions { data, out, provider, jsonl, endpoint, vlm_model, timeout, retries, frame_size, rgb, encoder, quiet } => {
            let (h, w) = frame_size
                .split_once('x')
                .and_then(|(h, w)| Some((h.parse::<usize>().ok()?, w.parse::<usize>().ok()?)))
                .filter(|(h, w)| *h >= 8 && *w >= 8)
                .with_context(|| format!("--frame-size {frame_size:?}: expected HEIGHTxWIDTH, each >= 8"))?;
            let p: Box<dyn sfn_captions::CaptionProvider> = match provider.as_str() {
                "jsonl" => {
                    let path = jsonl.context("--provider jsonl needs --jsonl FILE")?;
                    Box::new(sfn_captions::jsonl::JsonlCaptions::open(&path)?)
                }
                "openai" => {
                    let base_url = endpoint.context("--provider openai needs --endpoint URL")?;
                    if !(timeout.is_finite() && timeout > 0.0) {
                        anyhow::bail!("--timeout {timeout}: must be a positive number of seconds");
                    }
                    Box::new(sfn_captions::openai::OpenAiCaptions::new(sfn_captions::openai::OpenAiConfig {
                        base_url,
                        model: vlm_model,
                        timeout: std::time::Duration::from_secs_f64(timeout),
                        retries,
                        ..Default::default()
                    }))
                }
                _ => Box::new(sfn_captions::describe::MotionDescriber::default()),
            };
            let format = sfn_trainer::data::FrameFormat { height: h, width: w, channels: if rgb { 3 } else { 1 } };
            let opts = sfn_trainer::captions::CaptionOptions { data, out: out.clone(), format, encoder, progress: !quiet };
            let c = sfn_trainer::captions::compute(&opts, p)?;
            let n: usize = c.splits.values().flat_map(|s| s.values()).map(|v| v.iter().filter(|i| i.is_some()).count()).sum();
            println!(
                "{n} clips captioned by {} ({} distinct captions; {} fallbacks, {} failures); {:.2} ms per caption, {:.2} ms per embedding; cache {}",
                c.provider,
                c.texts.len(),
                c.stats.fallbacks,
                c.stats.failures,
                c.provider_ms,
                c.encoder_ms,
                out.display()
            );
        }
        Cmd::Demo { out, epochs, seed, quiet } => demo(&out, epochs, seed, quiet)?,
        Cmd::Calibrate { model, data, split, pooling, causal_sigma, speed, appearance, batch_size } => {
            let cal = sfn_trainer::train::recalibrate(&model, &data, &split, pooling, causal_sigma, speed.map(|s| s.0), appearance, batch_size)?;
            println!(
                "calibrated {} on {}/{split}: pooling {}, visual mean {:.6} std {:.6}, sigma {}{}",
                model.display(),
                data.display(),
                cal.pooling.name(),
                cal.visual_mean,
                cal.visual_std,
                cal.sigma,
                cal.regions.as_ref().map(|r| format!(", {} regions", r.mean.len())).unwrap_or_default()
                    + &cal.speed.as_ref().map(|s| format!(", {}", s.cue.name())).unwrap_or_default()
                    + if cal.appearance.is_some() { " + appearance" } else { "" }
            );
        }
        Cmd::Appearance { model, data, epochs, batch_size, lr, seed } => {
            let seed = match seed {
                Some(s) => s,
                None => sfn_trainer::checkpoint::read_json::<TrainConfig>(&model.join(sfn_trainer::checkpoint::TRAIN))?.seed,
            };
            let opts = sfn_trainer::appearance::AppearanceOptions { model: model.clone(), data, epochs, batch: batch_size, lr, seed };
            let m = sfn_trainer::appearance::train(&opts)?;
            let t = &m.training;
            println!(
                "appearance of {}: {} boxes of {} clips, {} epochs in {:.0} s, final loss {:.5}; frame error on the training clips {:.5} +- {:.5}",
                model.display(),
                t.boxes,
                t.clips.len(),
                t.epochs,
                t.seconds,
                t.final_loss,
                m.z.mean,
                m.z.std
            );
        }
        Cmd::Eval { model, data, report, plots, sigma, causal_sigma, batch_size, captions, semantic_weight, clips, folds, alarm_threshold, raise_after, clear_after } => {
            if !(0.0..=1.0).contains(&semantic_weight) {
                anyhow::bail!("--semantic-weight {semantic_weight}: must be in [0, 1]");
            }
            let offline = OfflineScoring { sigma, visual_weight: 1.0 - semantic_weight, semantic_weight };
            let folds = folds.as_deref().map(sfn_trainer::folds::Folds::parse).transpose()?;
            let alarm = (alarm_threshold, raise_after, clear_after);
            let opts = EvalOptions { model, data, report: report.clone(), plots, offline, causal_sigma, batch_size, captions, clips, folds, alarm };
            let r = evaluate(&opts)?;
            print_report(&r);
            println!("report: {}", report.display());
        }
    }
    Ok(())
}

fn demo(out: &std::path::Path, epochs: u64, seed: u64, quiet: bool) -> Result<()> {
    let data = out.join("data");
    let model_dir = out.join("model");
    if model_dir.exists() {
        // A previous demo: its model is replaced (the data generator refuses foreign folders itself).
        if !data.join("synth.json").exists() {
            anyhow::bail!("{} exists and is not a demo output; choose another --out", model_dir.display());
        }
        std::fs::remove_dir_all(&model_dir).with_context(|| format!("removing old {}", model_dir.display()))?;
    }
    let synth = sfn_trainer::synth::SynthConfig { seed, ..Default::default() };
    let summary = sfn_trainer::synth::write_walkway(&data, &synth)?;
    println!(
        "synthesized {} training clips ({} frames) and {} test clips ({} frames, {} abnormal) in {}",
        summary.train_clips,
        summary.train_frames,
        summary.test_clips,
        summary.test_frames,
        summary.abnormal_frames,
        data.display()
    );
    let tc = TrainConfig { epochs, batch_size: 8, seed, adam: sfn_trainer::optim::AdamConfig { lr: 1e-3, ..Default::default() }, ..Default::default() };
    let opts = TrainOptions { data: data.clone(), out: model_dir.clone(), model: SfnConfig::preset("tiny")?, train: tc, resume: false, epochs_override: None, progress: !quiet };
    let s = train(&opts)?;
    println!("trained the tiny preset: {} epochs, {} steps in {:.0} s; model in {}", s.state.epochs.len(), s.state.step, s.state.seconds, model_dir.display());
    let report = out.join("report.json");
    let opts = EvalOptions {
        model: model_dir,
        data,
        report: report.clone(),
        plots: None,
        offline: OfflineScoring::default(),
        causal_sigma: None,
        batch_size: 32,
        captions: None,
        clips: None,
        folds: None,
        alarm: (3.5, 3, 10),
    };
    let r = evaluate(&opts)?;
    print_report(&r);
    println!("report: {}  plots: {}", report.display(), out.join("report_plots").display());
    Ok(())
}
