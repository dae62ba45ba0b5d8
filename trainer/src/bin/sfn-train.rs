//! `sfn-train`: train, evaluate (and later export) SFN-VAD models.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use sfn_models::config::FilterKind;
use sfn_models::scoring::{ErrorPooling, OfflineScoring};
use sfn_models::SfnConfig;
use sfn_trainer::eval::{evaluate, EvalOptions, Report};
use sfn_trainer::train::{train, TrainConfig, TrainOptions};

#[derive(Parser)]
#[command(name = "sfn-train", version, about = "Train and evaluate SFN-VAD video anomaly detectors")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train on ROOT/training/frames/<clip>/ (normal footage only).
    Train {
        /// Built-in network preset: paper, cpu-ped2, tiny.
        #[arg(long, default_value = "cpu-ped2", conflicts_with = "config")]
        preset: String,
        /// Network config JSON (instead of a preset).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Training settings JSON (the `train.json` format: epochs, optimiser, schedule, pooling)
        /// instead of the preset's; the flags below still override it.
        #[arg(long)]
        train_config: Option<PathBuf>,
        /// Dataset root (holds training/frames/...).
        #[arg(long)]
        data: PathBuf,
        /// Model directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Continue the checkpoint in --out with the settings stored there (an explicit --epochs
        /// still applies: it raises or sets the number of epochs to train up to).
        #[arg(long)]
        resume: bool,
        #[arg(long)]
        epochs: Option<u64>,
        #[arg(long)]
        batch_size: Option<usize>,
        #[arg(long)]
        lr: Option<f64>,
        #[arg(long)]
        seed: Option<u64>,
        /// The filter after each decoder block: sffm (the paper's), mlp (ablation) or memory (a
        /// 256-item prototype memory, MemAE-style, the paper's Table 4 comparison; `sffm.memory_slots`
        /// in a --config sets another size).
        #[arg(long, value_parser = ["sffm", "mlp", "memory"])]
        filter: Option<String>,
        /// Caption cache from `sfn-train captions`: train with the text token and the text loss.
        #[arg(long)]
        captions: Option<PathBuf>,
        /// Training clips held out of training and calibration (comma-separated), the normal
        /// footage `eval --folds` checks the model on (cpu-ped2: 15,16; `none` trains on all clips).
        #[arg(long, value_delimiter = ',')]
        holdout: Option<Vec<String>>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Re-fit the model's causal calibration (calibration.json) on normal footage: per-region
    /// statistics for window_max_z pooling, then the z-score constants. Re-export afterwards.
    Calibrate {
        #[arg(long)]
        model: PathBuf,
        /// Dataset root; its <split>/frames/<clip>/ must be normal footage.
        #[arg(long)]
        data: PathBuf,
        /// Split to calibrate on: training (default), or a new scene's own normal footage.
        #[arg(long, default_value = "training")]
        split: String,
        /// Error pooling: frame_mean, window_max_<W>s<S>, window_max_z_<W>s<S>, changed_window_max_<W>s<S>_c<C> (default: the stored one).
        #[arg(long)]
        pooling: Option<ErrorPooling>,
        /// Causal one-sided Gaussian sigma in frames (default: the stored one).
        #[arg(long)]
        causal_sigma: Option<f32>,
        /// Speed cue folded into the visual error: speed_r<R>_b<B>_<W>s<S>_m<WEIGHT> for
        /// e = max(e_pred, WEIGHT s) (e.g. speed_r3_b12_32s16_m1), _z<WEIGHT> for the mean of the two cues'
        /// frame z-scores, _p<WEIGHT> for the mean of their positive parts (e.g. speed_r3_b12_32s16_p1_g0.1,
        /// the preset), or none (default: the stored one,
        /// else the training settings').
        #[arg(long, value_parser = parse_speed)]
        speed: Option<SpeedArg>,
        /// Join the model's appearance cue (appearance.json) to the visual error: `on` or `off`
        /// (default: the stored choice). A joined calibration makes `export` write appearance.onnx,
        /// which the camera then runs on every frame's moving boxes.
        #[arg(long, value_parser = parse_on_off)]
        appearance: Option<bool>,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
    },
    /// Train the model's appearance cue: a small network that reconstructs each moving box (crop and
    /// frame difference) through an SFFM bottleneck, on the model's training clips (its holdout left
    /// out); writes appearance.json and appearance.safetensors into the model directory, where
    /// `eval` finds them.
    Appearance {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 20)]
        epochs: usize,
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        /// Seed of the initial weights and the batch order (default: the model's training seed, as `train` fits it).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Evaluate a model on ROOT/testing (frames + labels.json); writes a JSON report and plots.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        report: PathBuf,
        /// Plot directory (default: next to the report).
        #[arg(long)]
        plots: Option<PathBuf>,
        /// Offline Gaussian sigma in frames (Ped2: 5).
        #[arg(long, default_value_t = 5.0)]
        sigma: f32,
        /// Override the causal one-sided Gaussian sigma stored with the model.
        #[arg(long)]
        causal_sigma: Option<f32>,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Caption cache (default: the one the model was trained with).
        #[arg(long)]
        captions: Option<PathBuf>,
        /// Weight of the semantic error in the combined score (visual gets 1 - this; Ped2: 0.2).
        #[arg(long, default_value_t = 0.2)]
        semantic_weight: f32,
        /// Score only these test clips, comma-separated (a named subset for choosing settings).
        #[arg(long, value_delimiter = ',')]
        clips: Option<Vec<String>>,
        /// The honest protocol: score two folds of the test clips apart (bare `--folds`: the Ped2 dev
        /// folds A = 01,03,05,08 and B = 04,06,09,11; or A_CLIPS/B_CLIPS), every candidate scoring and
        /// baseline on each, a choice made on one fold and reported on the other, and the model on the
        /// training clips held out of its training (train.json `holdout`).
        #[arg(long, num_args = 0..=1, default_missing_value = "ped2")]
        folds: Option<String>,
        /// Alarm threshold, raise-after and clear-after frames for the held-out normal clips of --folds
        /// (the edge example config's).
        #[arg(long, default_value_t = 3.5)]
        alarm_threshold: f32,
        #[arg(long, default_value_t = 3)]
        raise_after: u32,
        #[arg(long, default_value_t = 10)]
        clear_after: u32,
    },
    /// Export to ONNX: OUT/{encoder,decoder}.onnx + model.json (fp32); with --int8, calibrated QDQ int8
    /// in OUT/int8; with --weight-int8, weight-only int8 in OUT/int8-weights.
    Export {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Static int8 (QDQ), calibrated on normal windows of --calib ROOT/training.
        #[arg(long, requires = "calib")]
        int8: bool,
        /// Weight-only int8 (no calibration needed).
        #[arg(long)]
        weight_int8: bool,
        /// Dataset root for int8 calibration (its training split).
        #[arg(long)]
        calib: Option<PathBuf>,
        /// Calibration windows, spread evenly over the training split.
        #[arg(long, default_value_t = 64)]
        calib_windows: usize,
        /// Static int8 weights in [-63, 63] instead of [-127, 127]: for ONNX Runtime on x86 CPUs
        /// without VNNI, whose int8 kernels saturate otherwise (docs/deployment.md).
        #[arg(long, requires = "int8")]
        int8_reduce_range: bool,
    },
    /// Score ROOT/testing with an exported model (tract or ONNX Runtime) and print its AUCs.
    EvalOnnx {
        /// Export directory (holds model.json).
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// tract (pure Rust) or onnxruntime (needs ORT_DYLIB_PATH).
        #[arg(long, default_value = "tract", value_parser = ["tract", "onnxruntime"])]
        backend: String,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        /// Write the figures as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// ONNX Runtime execution provider; cuda and tensorrt need a build with `--features cuda,tensorrt`
        /// and a GPU build of libonnxruntime.
        #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda", "tensorrt"])]
        provider: String,
        /// ONNX Runtime intra-op threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// TensorRT engine cache directory (keep it: the first engine build takes minutes on a Jetson).
        #[arg(long)]
        trt_cache: Option<PathBuf>,
        #[arg(long)]
        trt_fp16: bool,
        /// TensorRT int8: use with the QDQ export (OUT/int8).
        #[arg(long)]
        trt_int8: bool,
        /// Caption cache (needed when the model was trained with captions).
        #[arg(long)]
        captions: Option<PathBuf>,
    },
    /// Caption every 4-frame clip of ROOT (training and testing) once and embed the captions with
    /// all-MiniLM-L6-v2, into a cache that `train --captions` and `eval --captions` read.
    Captions {
        #[arg(long)]
        data: PathBuf,
        /// Cache file to write (JSON).
        #[arg(long)]
        out: PathBuf,
        /// motion (the local describer: moving regions, sizes, speeds, directions), jsonl (--jsonl FILE),
        /// or openai (a VLM behind an OpenAI-compatible endpoint, --endpoint URL --vlm-model NAME).
        #[arg(long, value_parser = ["motion", "jsonl", "openai"])]
        provider: String,
        #[arg(long)]
        jsonl: Option<PathBuf>,
        /// Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1.
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long, default_value = "InternVL2.5-1B")]
        vlm_model: String,
        /// Seconds per request.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        #[arg(long, default_value_t = 2)]
        retries: u32,
        /// Frame size handed to the provider, HEIGHTxWIDTH.
        #[arg(long, default_value = "120x180")]
        frame_size: String,
        /// Give the provider RGB frames (default gray).
        #[arg(long)]
        rgb: bool,
        /// Sentence encoder folder (default: where scripts/setup.sh unpacks all-MiniLM-L6-v2).
        #[arg(long)]
        encoder: Option<PathBuf>,
        #[arg(long)]
        quiet: bool,
    },
    /// Zero-download demo: synthesize a walkway scene (walkers; test clips add a fast intruder),
    /// train the `tiny` preset on its normal clips, evaluate on the test clips, print the AUCs.
    Demo {
        /// Output folder (data/, model/, report.json, report_plots/).
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        #[arg(long, default_value_t = 12)]
        epochs: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long)]
        quiet: bool,
    },
}

fn main() -> Result<()> {
    // Colour only on a terminal: piped into a file or a log collector, lines stay plain.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().cmd {
        Cmd::Train { preset, config, train_config, data, out, resume, epochs, batch_size, lr, seed, filter, captions, holdout, quiet } => {
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
            if resume && (batch_size.is_some() || lr.is_some() || seed.is_some() || config.is_some() || train_config.is_some() || filter.is_some() || captions.is_some() || holdout.is_some()) {
                tracing::warn!(
                    "--resume uses the network and settings stored in {}; --batch-size, --lr, --seed, --config, --train-config, --filter, --captions and --holdout are ignored (--epochs is honoured)",
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
            let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.2}", 100.0 * v));
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

/// `--speed`: a speed cue, or `none`.
#[derive(Clone, Debug)]
struct SpeedArg(Option<sfn_models::scoring::SpeedCue>);

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("`{other}`: expected on or off")),
    }
}

fn parse_speed(s: &str) -> Result<SpeedArg, String> {
    if s == "none" {
        return Ok(SpeedArg(None));
    }
    s.parse().map(|c| SpeedArg(Some(c)))
}

fn pct(a: Option<f64>) -> String {
    a.map(|v| format!("{:.2}", v * 100.0)).unwrap_or_else(|| "n/a".into())
}

fn print_report(r: &Report) {
    println!("{:<10} {:>12} {:>12}", "clip", "offline AUC", "causal AUC");
    for (name, c) in &r.offline.per_clip {
        let ca = r.causal.per_clip.get(name).and_then(|c| c.auc);
        println!("{:<10} {:>12} {:>12}", name, pct(c.auc), pct(ca));
    }
    println!("{:<10} {:>12} {:>12}", "micro", pct(r.offline.micro_auc), pct(r.causal.micro_auc));
    println!("{:<10} {:>12} {:>12}", "macro", pct(r.offline.macro_auc), pct(r.causal.macro_auc));
    if let (Some(sat), Some(z)) = (&r.offline_saturated, r.calibration.visual_z_max) {
        println!(
            "beside (not the model's score): offline with each error saturated at z = {z:.2} (the largest on the normal footage) before the per-clip min-max: micro {} macro {}",
            pct(sat.micro_auc),
            pct(sat.macro_auc)
        );
    }
    let speed = r.calibration.speed.as_ref().map(|s| format!(" + {}", s.cue.name())).unwrap_or_default();
    println!("visual error pooled as {}{speed} (calibrated); all poolings side by side:", r.calibration.pooling.name());
    let wn = r.pooling_comparison.keys().map(String::len).max().unwrap_or(0).max(18);
    println!("{:<wn$} {:>14} {:>14} {:>14} {:>14}", "pooling", "offline micro", "offline macro", "causal micro", "causal macro");
    let row = |name: &str, f: &sfn_trainer::eval::PoolingFigures| {
        println!("{:<wn$} {:>14} {:>14} {:>14} {:>14}", name, pct(f.offline_micro_auc), pct(f.offline_macro_auc), pct(f.causal_micro_auc), pct(f.causal_macro_auc));
    };
    for (name, f) in &r.pooling_comparison {
        row(name, f);
    }
    if let Some(s) = &r.semantic {
        println!("semantic branch ({}): the scores above combine visual and semantic error; apart:", s.provider);
        row("visual only", &s.visual_only);
        row("semantic only", &s.semantic_only);
    }
    if let Some(f) = &r.folds {
        print_folds(f);
    }
    println!("{} frames scored in {:.1} s", r.frames_scored, r.seconds);
}

fn print_folds(f: &sfn_trainer::folds::FoldReport) {
    let [a, b] = &f.folds.names;
    println!("folds: {a} = {}, {b} = {}", f.folds.clips[0].join(","), f.folds.clips[1].join(","));
    let wn = f.rows.iter().map(|r| r.candidate.len()).max().unwrap_or(0).max(12);
    println!("{:<wn$} {:>22} {:>22} {:>22}", "candidate (offline / causal micro, macro)", format!("fold {a}"), format!("fold {b}"), "mean");
    let cell = |x: &sfn_trainer::folds::FoldFigures| format!("{}/{} ({}/{})", pct(x.offline_micro_auc), pct(x.causal_micro_auc), pct(x.offline_macro_auc), pct(x.causal_macro_auc));
    for r in &f.rows {
        println!("{:<wn$} {:>22} {:>22} {:>22}", r.candidate, cell(&r.per_fold[a]), cell(&r.per_fold[b]), cell(&r.mean));
    }
    println!("rule: {}", f.rule);
    for s in &f.selections {
        println!("chosen on {}: {} -> on {}: {}", s.chosen_on, s.candidate, s.reported_on, cell(&s.figures));
    }
    println!("cross-validated (mean of the held-out folds): {}; the model's own scoring: {}", cell(&f.cross_validated), cell(&f.model));
    if let Some(h) = &f.heldout_normal {
        println!(
            "held-out normal clips {}: {} frames; frame MSE model {:.6} / copy {:.6} = {:.3}x; moving pixels (|dI| > {}, {:.1}%) {:.6} / {:.6} = {:.3}x; causal max {:.2}, {} alarm(s) at {} ({} up, {} down)",
            h.clips.join(","),
            h.frames,
            h.model_mse,
            h.copy_mse,
            h.mse_ratio,
            h.moving_threshold,
            100.0 * h.moving_share,
            h.model_moving_mse,
            h.copy_moving_mse,
            h.moving_ratio,
            h.causal_max,
            h.alarms,
            h.alarm_threshold,
            h.raise_after,
            h.clear_after
        );
    }
}
