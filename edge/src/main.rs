//! `sfn-edge`: the camera runtime.
//!
//! ```text
//! sfn-edge check --config edge.toml [--set section.key=value ...]   validate config and model, run nothing
//! sfn-edge run   --config edge.toml [--set section.key=value ...] [--max-frames N]
//! sfn-edge record --config edge.toml --out DIR [--camera NAME] [--minutes M] [--clip-seconds S] [--every N] [--max-disk MB]
//! ```
//!
//! A config with a camera list (`[[camera]]`) runs every camera on its own thread in this one process,
//! on one loaded copy of the model where the back-end can share it (tract).
//!
//! Exit status: 0 done (source ended, `--max-frames` reached, or SIGTERM / SIGINT); 78 (EX_CONFIG) the
//! config or the model it names is unusable, which a restart cannot fix (the systemd units do not
//! restart on it); 1 anything else (e.g. the camera cannot be opened or fails: worth a restart).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use sfn_edge::config::EdgeConfig;
use sfn_edge::setup;

#[derive(Parser)]
#[command(name = "sfn-edge", version, about = "SFN-VAD on the camera: frames in, anomaly scores and alarms out")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log lines on stderr: text (colour only on a terminal) or json (one object a line).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: sfn_edge::logging::LogFormat,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate the config (unknown keys are errors) and the model (model.json, sha256, I/O signature),
    /// open the source, and stop.
    Check {
        #[arg(long)]
        config: PathBuf,
        /// Override a setting: --set alarm.threshold=4 (repeatable).
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// Run until the source ends (files) or forever (cameras).
    Run {
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "set")]
        set: Vec<String>,
        /// Stop after this many frames.
        #[arg(long)]
        max_frames: Option<u64>,
    },
    /// Record normal footage from the configured source into the training layout
    /// (OUT/training/frames/<clip>/<NNN>.jpg), clips numbered after those already in OUT. No model is
    /// loaded; the config's [model] section is not checked.
    Record {
        #[arg(long)]
        config: PathBuf,
        #[arg(long = "set")]
        set: Vec<String>,
        /// The data root to write to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// With a camera list: the camera to record (by name).
        #[arg(long)]
        camera: Option<String>,
        /// Stop after this many minutes of footage (source frames / source.fps); default: until the source
        /// ends (files) or SIGTERM / SIGINT.
        #[arg(long)]
        minutes: Option<f64>,
        /// Length of each clip, in seconds of footage.
        #[arg(long, default_value_t = 60.0)]
        clip_seconds: f64,
        /// Keep one frame in N.
        #[arg(long, default_value_t = 1)]
        every: u64,
        /// Stop before the frames written exceed this many MB.
        #[arg(long)]
        max_disk: Option<f64>,
    },
}

/// sysexits.h's EX_CONFIG: `RestartPreventExitStatus=78` in the units.
const EX_CONFIG: u8 = 78;

/// An error that a restart cannot fix (exit status [`EX_CONFIG`]).
#[derive(Debug)]
struct ConfigFault(anyhow::Error);

impl std::fmt::Display for ConfigFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for ConfigFault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

fn config_fault(e: impl Into<anyhow::Error>) -> anyhow::Error {
    ConfigFault(e.into()).into()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    sfn_edge::logging::init(cli.log_format, "info");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line for the journal with the chain of causes (those not already quoted by the one above).
            let mut line = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if !line.contains(&cause) {
                    line = if line.is_empty() { cause } else { format!("{line}: {cause}") };
                }
            }
            let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
            tracing::error!("{line}");
            ExitCode::from(if e.is::<ConfigFault>() { EX_CONFIG } else { 1 })
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Check { config, set } => {
            let cfg = EdgeConfig::load(&config, &set).map_err(config_fault)?;
            let cams = sfn_edge::cameras::expand(&cfg);
            let runtimes = setup::runtimes(&cams, false).with_context(|| format!("checking {}", config.display())).map_err(config_fault)?;
            for (cam, rt) in cams.iter().zip(&runtimes) {
                let source = setup::source(cam).with_context(|| format!("opening the source of {} ({})", config.display(), cam.device))?;
                let m = rt.pipeline.manifest();
                let k = &cam.sinks;
                let sinks = [k.stdout, k.json_file.is_some(), k.packet_file.is_some(), k.udp.is_some(), k.serial.is_some(), k.mqtt.is_some()].iter().filter(|b| **b).count();
                println!(
                    "ok: device {}, model {} ({}, {}x{}x{}, {}), scoring {}, source {}, captions {}, {} sink(s) configured",
                    cam.device,
                    setup::model_dir_for_backend(cam).display(),
                    m.precision.name(),
                    m.image.channels,
                    m.image.height,
                    m.image.width,
                    rt.pipeline.backend(),
                    rt.pipeline.scoring_name(),
                    source.describe(),
                    cam.captions.provider,
                    sinks
                );
            }
        }
        Cmd::Record { config, set, out, camera, minutes, clip_seconds, every, max_disk } => {
            let all = EdgeConfig::load(&config, &set).map_err(config_fault)?;
            let cams = sfn_edge::cameras::expand(&all);
            let cfg = match (&camera, &all.cameras) {
                (None, None) => cams[0].clone(),
                (Some(name), Some(list)) => match list.iter().position(|c| &c.name == name) {
                    Some(k) => cams[k].clone(),
                    None => {
                        return Err(config_fault(anyhow::anyhow!("--camera {name}: no such camera in {} ({})", config.display(), list.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "))))
                    }
                },
                (None, Some(_)) => return Err(config_fault(anyhow::anyhow!("{} lists several cameras: choose one with --camera NAME", config.display()))),
                (Some(_), None) => return Err(config_fault(anyhow::anyhow!("--camera: {} has one camera ([source]), not a camera list", config.display()))),
            };
            let fps = cfg.source.as_ref().map_or(10.0, |s| s.fps);
            let positive = |v: f64, what: &str| if v.is_finite() && v > 0.0 { Ok(v) } else { Err(config_fault(anyhow::anyhow!("{what} {v}: must be a positive number"))) };
            let clip_frames = (positive(clip_seconds, "--clip-seconds")? * fps / every.max(1) as f64).round().max(1.0) as u64;
            let opts = sfn_edge::record::RecordOptions {
                out: out.clone(),
                clip_frames,
                every,
                max_source_frames: minutes.map(|m| positive(m, "--minutes").map(|m| (m * 60.0 * fps).round() as u64)).transpose()?,
                max_bytes: max_disk.map(|m| positive(m, "--max-disk").map(|m| (m * 1e6) as u64)).transpose()?,
            };
            let mut source = setup::source(&cfg)?;
            tracing::info!(source = %source.describe(), out = %out.display(), clip_frames, every, "recording");
            let stop = sfn_edge::signals::install();
            let s = sfn_edge::record::record(&mut source, &opts, Some(stop), 50)?;
            tracing::info!(frames = s.frames_written, clips = ?s.clips, "recording stopped: {}", s.stopped);
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        Cmd::Run { config, set, max_frames } => {
            let cfg = EdgeConfig::load(&config, &set).map_err(config_fault)?;
            let cams = sfn_edge::cameras::expand(&cfg);
            // Every runtime is built (model, sinks) before any camera starts: a config or model fault
            // stops the process at once.
            let mut runtimes = setup::runtimes(&cams, true).map_err(config_fault)?;
            // Under systemd (Type=notify): ready now, watchdog pings and status from the frame loops.
            let notifier = std::sync::Arc::new(std::sync::Mutex::new(sfn_edge::notify::Notifier::from_env()));
            let stop = sfn_edge::signals::install();
            if notifier.lock().map(|n| n.enabled()).unwrap_or(false) {
                let t0 = std::time::Instant::now();
                let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
                for rt in &mut runtimes {
                    let (n, frames, device) = (notifier.clone(), frames.clone(), rt.device.clone());
                    rt.on_frame = Some(Box::new(move |o| {
                        let frames = frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if let Ok(mut n) = n.lock() {
                            let now = std::time::Instant::now();
                            let fps = frames as f64 / now.duration_since(t0).as_secs_f64().max(1e-3);
                            n.frame(now, || format!("{frames} frames scored, {fps:.1} frames/s, {device} alarm {:?}", o.alarm));
                        }
                    }));
                }
                if let Ok(n) = notifier.lock() {
                    n.ready();
                }
            }
            let log_format = cli.log_format;
            let results: Vec<(String, Result<sfn_edge::runtime::RunSummary>)> = if runtimes.len() == 1 {
                let rt = runtimes.pop().expect("one runtime");
                let cam = cams.into_iter().next().expect("one camera");
                vec![(cam.device.clone(), run_camera(rt, &cam, stop, max_frames))]
            } else {
                // One thread a camera: a slow or dead camera never holds up the others.
                std::thread::scope(|scope| {
                    let handles: Vec<_> = runtimes
                        .into_iter()
                        .zip(&cams)
                        .map(|(rt, cam)| {
                            let thread = std::thread::Builder::new().name(format!("camera-{}", cam.device));
                            (cam.device.clone(), thread.spawn_scoped(scope, move || run_camera(rt, cam, stop, max_frames)))
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|(device, h)| {
                            let r = match h {
                                Ok(h) => h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("camera {device}: its thread panicked"))),
                                Err(e) => Err(anyhow::anyhow!("camera {device}: cannot start its thread: {e}")),
                            };
                            (device, r)
                        })
                        .collect()
                })
            };
            if let Ok(n) = notifier.lock() {
                n.stopping();
            }
            let mut failed = Vec::new();
            let mut summaries = serde_json::Map::new();
            for (device, r) in results {
                match r {
                    Ok(s) => {
                        summaries.insert(device, serde_json::to_value(&s)?);
                    }
                    Err(e) => {
                        tracing::error!(camera = %device, "{e:#}");
                        failed.push((device, e));
                    }
                }
            }
            let single = cfg.cameras.is_none();
            let report = if single { summaries.values().next().cloned().unwrap_or_default() } else { serde_json::Value::Object(summaries) };
            if !report.is_null() {
                match log_format {
                    // The run's summary: pretty JSON for a reader, one log event for a log shipper.
                    sfn_edge::logging::LogFormat::Text => eprintln!("{}", serde_json::to_string_pretty(&report)?),
                    sfn_edge::logging::LogFormat::Json => tracing::info!(summary = %serde_json::to_string(&report)?, "run finished"),
                }
            }
            if let Some((device, e)) = failed.into_iter().next() {
                return Err(if single { e } else { e.context(format!("camera {device}")) });
            }
        }
    }
    Ok(())
}

/// One camera's run: open its source, run until it ends (or `max_frames`, or `stop`).
fn run_camera(mut rt: sfn_edge::runtime::Runtime, cam: &EdgeConfig, stop: &'static std::sync::atomic::AtomicBool, max_frames: Option<u64>) -> Result<sfn_edge::runtime::RunSummary> {
    let mut source = setup::source(cam)?;
    tracing::info!(camera = %cam.device, source = %source.describe(), backend = %rt.pipeline.backend(), "running");
    // SIGTERM / SIGINT: finish the frame in flight, flush the sinks, exit 0.
    rt.stop = Some(stop);
    let mut s = rt.run(&mut source, max_frames, 50)?;
    // Snapshots still being encoded go out before the sinks (MQTT) close.
    if let Some(st) = rt.close_snapshots(std::time::Duration::from_secs(10)) {
        s.snapshots = Some(st);
    }
    if s.frames_in == 0 {
        bail!("the source gave no frames");
    }
    Ok(s)
}
