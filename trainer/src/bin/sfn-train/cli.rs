//! `sfn-train`'s command line: subcommands, flags and their parsers.
//!
//! The doc comments below are the `--help` text (clap reads them), written for a terminal: placeholders
//! such as `<clip>` and optional parts such as `[_t<N>]` are not HTML tags or links for rustdoc.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sfn_models::scoring::ErrorPooling;

#[derive(Parser)]
#[command(name = "sfn-train", version, about = "Train and evaluate SFN-VAD video anomaly detectors")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
        /// Keep exponential moving averages of the weights with these decays (comma-separated, each
        /// in (0, 1)), written beside the model as ema-<decay>.safetensors; the model stays the last
        /// weights.
        #[arg(long, value_delimiter = ',')]
        ema_decays: Option<Vec<f64>>,
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
        /// Error pooling: frame_mean, window_max_<W>s<S>, window_max_z_<W>s<S>, changed_window_max_<W>s<S>_c<C>, relative_window_max_<W>s<S>_c<C>[_f<F>][_t<N>] (the change-weighted error over copying's plus F millionths, fitted on the footage without _f; with _t<N> the smallest over N consecutive frames; default: the stored one, its floor refitted).
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

/// `--speed`: a speed cue, or `none`.
#[derive(Clone, Debug)]
pub(crate) struct SpeedArg(pub(crate) Option<sfn_models::scoring::SpeedCue>);

pub(crate) fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("`{other}`: expected on or off")),
    }
}

pub(crate) fn parse_speed(s: &str) -> Result<SpeedArg, String> {
    if s == "none" {
        return Ok(SpeedArg(None));
    }
    s.parse().map(|c| SpeedArg(Some(c)))
}
