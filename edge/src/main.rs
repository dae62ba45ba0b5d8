//! `sfn-edge`: the camera runtime.
//!
//! ```text
//! sfn-edge check --config edge.toml [--set section.key=value ...]   validate config and model, run nothing
//! sfn-edge run   --config edge.toml [--set section.key=value ...] [--max-frames N]
//! sfn-edge record --config edge.toml --out DIR [--minutes M] [--clip-seconds S] [--every N] [--max-disk MB]
//! ```
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
            let rt = setup::runtime(&cfg, false).with_context(|| format!("checking {}", config.display())).map_err(config_fault)?;
            let source = setup::source(&cfg).with_context(|| format!("opening the source of {}", config.display()))?;
            let m = rt.pipeline.manifest();
            let k = &cfg.sinks;
            let sinks = [k.stdout, k.json_file.is_some(), k.packet_file.is_some(), k.udp.is_some(), k.serial.is_some(), k.mqtt.is_some()].iter().filter(|b| **b).count();
            println!(
                "ok: device {}, model {} ({}, {}x{}x{}, {}), scoring {}, source {}, captions {}, {} sink(s) configured",
                cfg.device,
                setup::model_dir_for_backend(&cfg).display(),
                m.precision.name(),
                m.image.channels,
                m.image.height,
                m.image.width,
                rt.pipeline.backend(),
                rt.pipeline.scoring_name(),
                source.describe(),
                cfg.captions.provider,
                sinks
            );
        }
        Cmd::Record { config, set, out, minutes, clip_seconds, every, max_disk } => {
            let cfg = EdgeConfig::load(&config, &set).map_err(config_fault)?;
            let fps = cfg.source.fps;
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
            let mut rt = setup::runtime(&cfg, true).map_err(config_fault)?;
            let mut source = setup::source(&cfg)?;
            tracing::info!(source = %source.describe(), backend = %rt.pipeline.backend(), "running");
            // Under systemd (Type=notify): ready now, watchdog pings and status from the frame loop.
            let notifier = std::sync::Arc::new(std::sync::Mutex::new(sfn_edge::notify::Notifier::from_env()));
            if notifier.lock().map(|n| n.enabled()).unwrap_or(false) {
                let n = notifier.clone();
                let (t0, mut frames) = (std::time::Instant::now(), 0u64);
                rt.on_frame = Some(Box::new(move |o| {
                    frames += 1;
                    if let Ok(mut n) = n.lock() {
                        let now = std::time::Instant::now();
                        let fps = frames as f64 / now.duration_since(t0).as_secs_f64().max(1e-3);
                        n.frame(now, || format!("{frames} frames scored, {fps:.1} frames/s, alarm {:?}", o.alarm));
                    }
                }));
                if let Ok(n) = notifier.lock() {
                    n.ready();
                }
            }
            // SIGTERM / SIGINT: finish the frame in flight, flush the sinks, exit 0.
            rt.stop = Some(sfn_edge::signals::install());
            let s = rt.run(&mut source, max_frames, 50)?;
            if let Ok(n) = notifier.lock() {
                n.stopping();
            }
            if s.frames_in == 0 {
                bail!("the source gave no frames");
            }
            match cli.log_format {
                // The run's summary: pretty JSON for a reader, one log event for a log shipper.
                sfn_edge::logging::LogFormat::Text => eprintln!("{}", serde_json::to_string_pretty(&s)?),
                sfn_edge::logging::LogFormat::Json => tracing::info!(summary = %serde_json::to_string(&s)?, "run finished"),
            }
        }
    }
    Ok(())
}
