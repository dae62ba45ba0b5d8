//! `sfn-host`: the host side of SFN-VAD devices.
//!
//! ```text
//! sfn-host demo     [--out demo-out] [--data ROOT --model DIR]     synthesize (or read) footage, replay, print
//! sfn-host replay   --model DIR --data ROOT|CLIP_DIR... --out DIR   the edge pipeline over recorded clips
//! sfn-host calibrate --model DIR --data NORMAL... [--out DIR]     refit the calibration by running the export
//! sfn-host validate --packets FILE|DIR --labels labels.json --report OUT.json [--fps 10]
//! sfn-host decode   INPUT [--json] [--limit N] [--timeout S]       file:PATH | serial:DEV | udp:ADDR | mqtt://HOST:PORT/TOPIC
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use sfn_edge::alarm::AlarmConfig;
use sfn_host::replay::{replay, ReplayOptions, ReplayReport};
use sfn_host::validate::{self, ClipTrace};
use sfn_infer::BackendKind;

#[derive(Parser)]
#[command(name = "sfn-host", version, about = "Replay, validate and decode what SFN-VAD devices compute and send")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct AlarmArgs {
    /// Alarm threshold on the causal score.
    #[arg(long, default_value_t = 3.0)]
    threshold: f32,
    #[arg(long, default_value_t = 3)]
    raise_after: u32,
    #[arg(long, default_value_t = 10)]
    clear_after: u32,
    /// Frame rate of the footage (timestamps; hours of footage for false alarms per hour).
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Zero-download demo: synthesize a walkway scene (walkers, then an intruder that moves unlike them),
    /// replay it through the edge pipeline with the shipped model, print scores, alarms and AUC, write
    /// plots. With --data ROOT --model DIR it does the same on real footage (e.g. Ped2 and its model).
    Demo {
        #[arg(long, default_value = "demo-out")]
        out: PathBuf,
        /// A dataset root (ROOT/testing/frames/<clip>/, labels.json) instead of the synthetic scene.
        #[arg(long, requires = "model")]
        data: Option<PathBuf>,
        /// Export directory (default: the shipped synthetic-scene model assets/walkway-tiny/onnx).
        #[arg(long)]
        model: Option<PathBuf>,
        #[command(flatten)]
        alarm: AlarmArgs,
    },
    /// Replay recorded clips through the edge pipeline: packets, report.json, plots.
    Replay {
        #[arg(long)]
        model: PathBuf,
        /// Dataset roots (ROOT/testing/frames/<clip>/) or clip folders.
        #[arg(long = "data", required = true, num_args = 1..)]
        data: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// tract or onnxruntime (build with --features ort).
        #[arg(long, default_value = "tract")]
        backend: String,
        /// Also validate against ROOT/testing/labels.json (default when it exists) — this flag fails if it does not.
        #[arg(long)]
        validate: bool,
        /// Take alarm snapshots as the device would (OUT/events/<start>-<clip>/) and write a contact
        /// sheet per clip (OUT/contact/contact_<clip>.png).
        #[arg(long)]
        snapshots: bool,
        /// Least footage time between two snapshots of one alarm (with --snapshots).
        #[arg(long, default_value_t = 10.0)]
        snapshot_interval_s: f64,
        #[command(flatten)]
        alarm: AlarmArgs,
    },
    /// Refit an export's causal calibration on a scene's own normal footage by running the export, and
    /// write the recalibrated export (model.json carries the new calibration; the ONNX files are copied).
    Calibrate {
        /// Export directory (model.json + ONNX).
        #[arg(long)]
        model: PathBuf,
        /// Normal footage: dataset roots (ROOT/training/frames/<clip>/), folders of clip folders, or clip folders.
        #[arg(long = "data", required = true, num_args = 1..)]
        data: Vec<PathBuf>,
        /// Where the recalibrated export goes (default: replace the export's own model.json).
        #[arg(long)]
        out: Option<PathBuf>,
        /// tract or onnxruntime (build with --features ort).
        #[arg(long, default_value = "tract")]
        backend: String,
    },
    /// The alarm threshold from a false-alarm budget: replay normal footage with the config's hysteresis,
    /// print the curve threshold -> false alarms per hour (with --labels also events detected and delay),
    /// write OUT/threshold.json and OUT/threshold.png, and print the lowest threshold within the budget.
    Threshold {
        /// Export directory (model.json + ONNX).
        #[arg(long)]
        model: PathBuf,
        /// Normal footage of the scene: dataset roots (ROOT/training/frames/<clip>/), folders of clip folders, or clip folders.
        #[arg(long, required = true, num_args = 1..)]
        normal: Vec<PathBuf>,
        /// Labelled footage: a dataset root with testing/frames and testing/labels.json.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// False alarms allowed per hour of normal footage.
        #[arg(long, default_value_t = 1.0)]
        max_false_alarms_per_hour: f64,
        /// An edge config: its alarm.raise_after / clear_after and source.fps (default 3, 10, 10 fps).
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value = "threshold-out")]
        out: PathBuf,
        /// tract or onnxruntime (build with --features ort).
        #[arg(long, default_value = "tract")]
        backend: String,
    },
    /// Validate packet streams (OUT/packets/<clip>.bin) against labels; one contact sheet per clip
    /// (REPORT.contact/contact_<clip>.png) puts the alarm snapshots beside the ground truth.
    Validate {
        #[arg(long)]
        packets: PathBuf,
        #[arg(long)]
        labels: PathBuf,
        #[arg(long)]
        report: PathBuf,
        /// The event folders with the alarm snapshots (a device's snapshot.dir, or OUT/events of `replay --snapshots`).
        #[arg(long)]
        snapshots: Option<PathBuf>,
        /// The clips' frames (ROOT/testing/frames/<clip>/ or a folder of clip folders), for the ground-truth pictures.
        #[arg(long)]
        frames: Option<PathBuf>,
        #[arg(long, default_value_t = 10.0)]
        fps: f64,
    },
    /// Decode a packet stream and print it (table or JSON lines).
    Decode {
        /// file:PATH (or a path), serial:/dev/ttyUSB0, udp:0.0.0.0:5005, mqtt://host:1883/sfn/cam1/#
        input: String,
        #[arg(long)]
        json: bool,
        /// Stop after this many packets.
        #[arg(long)]
        limit: Option<u64>,
        /// Stop after this many seconds without data (network inputs).
        #[arg(long)]
        timeout: Option<f64>,
    },
}

fn repo_asset(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn pct(a: Option<f64>) -> String {
    a.map_or("n/a".into(), |v| format!("{:.2}", 100.0 * v))
}

fn print_report(r: &ReplayReport, per_frame: bool) {
    let v = &r.validation;
    for (name, c) in &v.causal.per_clip {
        println!("clip {name}: {} frames scored, causal AUC {}", c.scores.len(), pct(c.auc));
        if per_frame {
            let line: Vec<String> = c.scores.iter().zip(&c.labels).map(|(s, l)| format!("{s:.1}{}", if *l == 1 { "*" } else { "" })).collect();
            println!("  scores (frame 4 on; * = abnormal): {}", line.join(" "));
        }
    }
    for a in &v.alarms {
        let verdict = match a.true_alarm {
            Some(true) => "overlaps an abnormal event",
            Some(false) => "FALSE alarm",
            None => "",
        };
        println!("alarm: clip {} frames {}..={} {verdict}", a.clip, a.start_frame, a.end_frame);
    }
    println!("frame-level AUC: causal (as sent) micro {} macro {}; offline micro {} macro {}", pct(v.causal.micro_auc), pct(v.causal.macro_auc), pct(v.offline.micro_auc), pct(v.offline.macro_auc));
    if let Some(sat) = &v.offline_saturated {
        println!("(beside: offline with each z saturated at the calibration's largest normal z first: micro {} macro {})", pct(sat.micro_auc), pct(sat.macro_auc));
    }
    if let Some(m) = &v.alarm_metrics {
        println!(
            "alarms: {} ({} true, {} false); events detected {}/{}; precision {} recall {}; mean delay {} frames; {} false alarms per hour",
            m.alarms,
            m.true_alarms,
            m.false_alarms,
            m.detected_events,
            m.events,
            pct(m.precision),
            pct(m.recall),
            m.mean_detection_delay_frames.map_or("n/a".into(), |d| format!("{d:.1}")),
            m.false_alarms_per_hour.map_or("n/a".into(), |d| format!("{d:.1}"))
        );
    }
}

fn backend(name: &str) -> Result<BackendKind> {
    Ok(match name {
        "tract" => BackendKind::Tract,
        "onnxruntime" => BackendKind::OnnxRuntime(Default::default()),
        other => bail!("--backend {other}: expected tract or onnxruntime"),
    })
}

fn alarm(a: &AlarmArgs) -> AlarmConfig {
    AlarmConfig { threshold: a.threshold, raise_after: a.raise_after, clear_after: a.clear_after }
}

fn main() -> Result<()> {
    // Colour only on a terminal: piped into a file or a log collector, lines stay plain.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().cmd {
        Cmd::Demo { out, data, model, alarm: a } => {
            let (data, model) = match data {
                Some(d) => (d, model.context("--data needs --model")?),
                None => {
                    let d = out.join("data");
                    if d.exists() && !d.join("synth.json").exists() {
                        bail!("{} exists and is not a synthetic scene; choose another --out", d.display());
                    }
                    // Another seed than the shipped model's training scene (7): footage it has not seen.
                    let s = sfn_data::synth::write_walkway(&d, &sfn_data::synth::SynthConfig { seed: 11, train_clips: 1, ..Default::default() })?;
                    println!("synthesized {} test clips ({} frames, {} abnormal: a fast intruder among walkers) in {}", s.test_clips, s.test_frames, s.abnormal_frames, d.display());
                    (d, model.unwrap_or_else(|| repo_asset("assets/walkway-tiny/onnx")))
                }
            };
            let snapshots = Some(sfn_edge::snapshot::SnapshotConfig::default());
            let opts = ReplayOptions { model: model.clone(), inputs: vec![data], out: out.clone(), backend: BackendKind::Tract, alarm: alarm(&a), start_ms: 0, fps: a.fps, snapshots };
            let r = replay(&opts).with_context(|| format!("replaying with {}", model.display()))?;
            print_report(&r, r.frames_scored <= 400);
            println!("report: {}  packets: {}  plots: {}", out.join("report.json").display(), out.join("packets").display(), out.join("plots").display());
            println!("alarm snapshots: {}  contact sheets: {}", out.join("events").display(), out.join("contact").display());
        }
        Cmd::Replay { model, data, out, backend: b, validate, snapshots, snapshot_interval_s, alarm: a } => {
            let has_labels = data.iter().any(|d| d.join("testing/labels.json").exists());
            if validate && !has_labels {
                bail!("--validate: no ROOT/testing/labels.json among the inputs");
            }
            let snapshots = snapshots.then(|| sfn_edge::snapshot::SnapshotConfig { min_interval_s: snapshot_interval_s, ..Default::default() });
            if let Some(s) = &snapshots {
                s.validate().map_err(|(key, reason)| anyhow::anyhow!("--snapshot-interval-s ({key}): {reason}"))?;
            }
            let with_snapshots = snapshots.is_some();
            let opts = ReplayOptions { model, inputs: data, out: out.clone(), backend: backend(&b)?, alarm: alarm(&a), start_ms: 0, fps: a.fps, snapshots };
            let r = replay(&opts)?;
            print_report(&r, false);
            println!("report: {}", out.join("report.json").display());
            if with_snapshots {
                println!("alarm snapshots: {}  contact sheets: {}", out.join("events").display(), out.join("contact").display());
            }
        }
        Cmd::Threshold { model, normal, labels, max_false_alarms_per_hour, config, out, backend: b } => {
            let (raise_after, clear_after, fps) = match &config {
                Some(c) => {
                    let cfg = sfn_edge::config::EdgeConfig::load(c, &[])?;
                    (cfg.alarm.raise_after, cfg.alarm.clear_after, sfn_edge::cameras::expand(&cfg).first().and_then(|c| c.source.as_ref()).map_or(10.0, |s| s.fps))
                }
                None => (3, 10, 10.0),
            };
            let opts = sfn_host::threshold::ThresholdOptions {
                model,
                normal,
                labelled: labels,
                backend: backend(&b)?,
                raise_after,
                clear_after,
                fps,
                budget_per_hour: max_false_alarms_per_hour,
                out: out.clone(),
            };
            let r = sfn_host::threshold::threshold(&opts)?;
            println!("{} normal frames ({:.2} h at {fps} fps, one false alarm = {:.1}/h), hysteresis {raise_after} up / {clear_after} down", r.normal_frames, r.normal_hours, r.one_alarm_per_hour);
            println!("{:>9} {:>8} {:>10} {:>18} {:>12}", "threshold", "false", "false/h", "events detected", "delay (fr)");
            let every = (r.curve.len() / 24).max(1);
            for (_, p) in r.curve.iter().enumerate().filter(|(i, p)| i % every == 0 || p.threshold == r.chosen) {
                let (det, delay) = match &p.labelled {
                    Some(l) => (format!("{}/{}", l.detected_events, l.events), l.mean_detection_delay_frames.map_or("-".into(), |d| format!("{d:.1}"))),
                    None => ("-".into(), "-".into()),
                };
                let mark = if p.threshold == r.chosen { "  <- chosen" } else { "" };
                println!("{:>9.2} {:>8} {:>10.2} {:>18} {:>12}{mark}", p.threshold, p.false_alarms, p.false_alarms_per_hour, det, delay);
            }
            println!("curve: {}, plot: {}", out.join("threshold.json").display(), out.join("threshold.png").display());
            if r.budget_per_hour < r.one_alarm_per_hour {
                println!("note: one false alarm on this footage is {:.1}/h, above the budget: the choice allows none; record more normal footage for a finer figure", r.one_alarm_per_hour);
            }
            println!("--set alarm.threshold={}", r.chosen);
        }
        Cmd::Calibrate { model, data, out, backend: b } => {
            let r = sfn_host::calibrate::calibrate(&sfn_host::calibrate::CalibrateOptions { model, inputs: data, out, backend: backend(&b)? })?;
            let c = &r.calibration;
            let speed = c.speed.as_ref().map(|s| format!(", {}", s.cue.name())).unwrap_or_default();
            println!(
                "calibrated on {} frames of {} clip(s) ({}): pooling {}{speed}, visual mean {:.6} std {:.6}, sigma {}",
                r.frames,
                r.clips.len(),
                r.clips.join(", "),
                c.pooling.name(),
                c.visual_mean,
                c.visual_std,
                c.sigma
            );
            println!("export: {}", r.manifest.display());
        }
        Cmd::Validate { packets, labels, report, fps, snapshots, frames } => {
            let files = validate::packet_files(&packets).map_err(anyhow::Error::msg)?;
            let text = std::fs::read_to_string(&labels).with_context(|| format!("reading {}", labels.display()))?;
            let l: std::collections::BTreeMap<String, Vec<u8>> = serde_json::from_str(&text).with_context(|| format!("{}: labels JSON", labels.display()))?;
            let mut traces = Vec::new();
            for (clip, path) in &files {
                let mut pk = Vec::new();
                let d = sfn_host::decode::decode_stream(&sfn_host::decode::Input::File(path.clone()), None, None, &mut |r| pk.push(r.packet))?;
                d.check()?;
                let lab = l.get(clip).with_context(|| format!("{}: no labels for clip {clip}", labels.display()))?;
                traces.push(ClipTrace::from_packets(clip, &pk, Some(lab)).map_err(anyhow::Error::msg)?);
            }
            let v = validate::validate(&traces, fps, 0, None);
            sfn_fsio::write_atomic(&report, serde_json::to_string_pretty(&v)?.as_bytes()).with_context(|| format!("writing {}", report.display()))?;
            let plots = report.with_extension("plots");
            validate::plots(&traces, &v, &plots).map_err(anyhow::Error::msg)?;
            let r = ReplayReport { model: String::new(), clips: files.keys().cloned().collect(), frames_scored: traces.iter().map(|t| t.frames.len()).sum(), validation: v };
            for (flag, dir) in [("--snapshots", &snapshots), ("--frames", &frames)] {
                if let Some(d) = dir.as_ref().filter(|d| !d.is_dir()) {
                    bail!("{flag} {}: no such directory", d.display());
                }
            }
            let contact = report.with_extension("contact");
            let frames_root = frames.map(|f| if f.join("testing/frames").is_dir() { f.join("testing/frames") } else { f });
            for t in &traces {
                let clip_frames = frames_root.as_ref().map(|r| r.join(&t.name)).filter(|d| d.is_dir());
                sfn_host::contact::contact_sheet(t, snapshots.as_deref(), clip_frames.as_deref(), &contact).map_err(anyhow::Error::msg)?;
            }
            print_report(&r, false);
            println!("report: {}  plots: {}  contact sheets: {}", report.display(), plots.display(), contact.display());
        }
        Cmd::Decode { input, json, limit, timeout } => {
            let inp = sfn_host::decode::Input::parse(&input)?;
            if !json {
                println!("{}", sfn_host::decode::table_header());
            }
            let d = sfn_host::decode::decode_stream(&inp, limit, timeout.map(Duration::from_secs_f64), &mut |r| {
                if json {
                    println!("{}", sfn_host::decode::json_line(r));
                } else {
                    println!("{}", sfn_host::decode::table_row(r));
                }
            })?;
            eprintln!("{d:?}");
            d.check()?;
        }
    }
    Ok(())
}
