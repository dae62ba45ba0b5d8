//! Edge runtime throughput replaying Ped2 frames from disk (no camera): frames/s on ONE core, p50/p99
//! inference latency, peak RSS, for fp32 and int8 exports on tract and ONNX Runtime, each in its own
//! child process (so peak RSS is its own), run one after another in one invocation.
//!
//! ```text
//! cargo bench -p sfn-edge --features ort --bench replay -- [--data ROOT] [--frames N] [--ort-lib PATH] [--only backends|cameras|snapshots|gpu]
//! ```
//! The whole runtime is timed: JPEG decode, resize, encoder, decoder, scoring, alarm, a packet sink.
//! A second table runs 1, 2, 4, 7 and 8 cameras in one process (one thread a camera; tract with the
//! model loaded once), 7 beside a stalled one, and 2 and 8 with their model calls batched
//! (`model.max_batch`); a third the 8 test clips with alarm snapshots off and on (the example config's threshold: a real
//! alarm rate), alternately, twice each. `--only gpu` (run by `scripts/gpu-check.sh` on a machine with
//! an NVIDIA GPU, built with `--features cuda,tensorrt`) puts ONNX Runtime's CUDA and TensorRT providers
//! beside the CPU for 1 and 8 cameras, and 8 batched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sfn_edge::alarm::AlarmConfig;
use sfn_edge::pipeline::Pipeline;
use sfn_edge::runtime::Runtime;
use sfn_edge::sink::FramedWriter;
use sfn_infer::onnxruntime_options::{OrtOptions, Provider};
use sfn_infer::BackendKind;
use sfn_sources::{FrameSource, ImageFolder, ImageFolderOptions};

fn status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if f.len() > 11 {
        (f[10] + f[11]) / 100.0
    } else {
        f64::NAN
    }
}

/// Child: one configuration; prints one JSON line.
fn child(model: &Path, backend: &str, lib: Option<PathBuf>, frames_dir: &Path, n: u64) -> Result<()> {
    let b = match backend {
        "onnxruntime" => BackendKind::OnnxRuntime(OrtOptions { library: lib, threads: 1, ..Default::default() }),
        _ => BackendKind::Tract,
    };
    let pipeline = Pipeline::open(model, &b, AlarmConfig::default())?;
    let mut rt = Runtime::new(pipeline, "bench");
    let tmp = tempfile::tempdir()?;
    rt.sinks.push(Box::new(FramedWriter::file(&tmp.path().join("p.bin"))?));
    // Warm-up pass on a few frames (lazy initialisation), not timed.
    let mut warm = ImageFolder::open(frames_dir, ImageFolderOptions::default())?;
    for _ in 0..6 {
        if let Some(f) = warm.next_frame()? {
            rt.process(f)?;
        }
    }
    let pipeline = Pipeline::open(model, &b, AlarmConfig::default())?;
    let mut rt = Runtime::new(pipeline, "bench");
    rt.sinks.push(Box::new(FramedWriter::file(&tmp.path().join("p2.bin"))?));
    let mut src = ImageFolder::open(frames_dir, ImageFolderOptions::default())?;
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let s = rt.run(&mut src, Some(n), 3)?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    println!(
        "{}",
        serde_json::json!({
            "frames": s.frames_in, "fps": s.frames_in as f64 / wall, "p50_ms": s.latency_p50_ms, "p99_ms": s.latency_p99_ms,
            "cpu_per_wall": cpu / wall, "peak_rss_mb": status_kb("VmHWM:").map(|k| k as f64 / 1024.0),
        })
    );
    Ok(())
}

/// A camera that delivers one frame and then hangs (a stalled camera: no error, no frame) until
/// `done` is set.
struct Stalled {
    first: Option<sfn_sources::Frame>,
    done: Arc<AtomicBool>,
}

impl FrameSource for Stalled {
    fn next_frame(&mut self) -> Result<Option<sfn_sources::Frame>, sfn_sources::SourceError> {
        if let Some(f) = self.first.take() {
            return Ok(Some(f));
        }
        while !self.done.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(None)
    }
    fn describe(&self) -> String {
        "stalled camera".into()
    }
}

/// The back-end of a bench child by name: tract, onnxruntime (CPU, one thread), onnxruntime-cuda,
/// onnxruntime-tensorrt.
fn backend_kind(name: &str, lib: Option<PathBuf>) -> BackendKind {
    let provider = match name {
        "onnxruntime-cuda" => Provider::Cuda,
        "onnxruntime-tensorrt" => Provider::TensorRt,
        "onnxruntime" => Provider::Cpu,
        _ => return BackendKind::Tract,
    };
    BackendKind::OnnxRuntime(OrtOptions { library: lib, threads: 1, provider, ..Default::default() })
}

/// One live camera's run: frames, latency p50 and p99 (ms), the batchers' counters (when batched).
type CameraRun = (u64, Option<f64>, Option<f64>, Option<sfn_edge::pipeline::BatchSummary>);

/// Child: `cameras` runtimes on as many threads in this one process (tract: one loaded copy of the
/// model, its plans shared; ONNX Runtime: a session each), each replaying the clip; with `stalled`,
/// one more camera that hangs after its first frame. Prints one JSON line: aggregate frames/s of the
/// live cameras, latency p50 (mean over cameras) and p99 (worst camera), peak RSS.
fn child_cameras(model: &Path, backend: &str, lib: Option<PathBuf>, cameras: usize, stalled: bool, frames_dir: &Path, n: u64) -> Result<()> {
    let b = backend_kind(backend, lib);
    let mut shared = sfn_infer::ExportedModel::open(model, &b)?;
    // BENCH_MAX_BATCH=B: the cameras' calls batched (up to B, 10 ms deadline), as `model.max_batch`.
    let max_batch: usize = std::env::var("BENCH_MAX_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    if max_batch > 1 {
        shared = shared.batched(sfn_infer::batch::BatchOptions { max_batch, deadline: std::time::Duration::from_millis(10) })?;
    }
    let open = |shared: &sfn_infer::ExportedModel| -> Result<sfn_infer::ExportedModel> {
        Ok(match shared.share() {
            Some(m) => m,
            None => sfn_infer::ExportedModel::open(model, &b)?,
        })
    };
    let mut warming = Vec::with_capacity(cameras + 1);
    for k in 0..cameras + usize::from(stalled) {
        warming.push(Runtime::new(Pipeline::with_model(open(&shared)?, AlarmConfig::default())?, &format!("cam{k}")));
    }
    drop(shared);
    // Warm-up (lazy initialisation: tract's plan for a batch is built on its first use), all cameras
    // at once as in the timed run, not timed; then a fresh runtime state on the same model.
    let runtimes = std::thread::scope(|scope| {
        let handles: Vec<_> = warming
            .into_iter()
            .enumerate()
            .map(|(k, mut rt)| {
                scope.spawn(move || -> Result<Runtime> {
                    let mut warm = ImageFolder::open(frames_dir, ImageFolderOptions::default())?;
                    for _ in 0..6 {
                        if let Some(f) = warm.next_frame()? {
                            rt.process(f)?;
                        }
                    }
                    Ok(Runtime::new(Pipeline::with_model(rt.pipeline.into_model(), AlarmConfig::default())?, &format!("cam{k}")))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().map_err(|_| anyhow::anyhow!("a warm-up thread panicked"))?).collect::<Result<Vec<_>>>()
    })?;
    let done = Arc::new(AtomicBool::new(false));
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let results: Vec<CameraRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = runtimes
            .into_iter()
            .enumerate()
            .map(|(k, mut rt)| {
                let done = done.clone();
                scope.spawn(move || -> Result<Option<CameraRun>> {
                    let mut src = ImageFolder::open(frames_dir, ImageFolderOptions::default())?;
                    if k == cameras {
                        let mut s = Stalled { first: src.next_frame()?, done };
                        rt.run(&mut s, None, 3)?;
                        return Ok(None);
                    }
                    let s = rt.run(&mut src, Some(n), 3)?;
                    Ok(Some((s.frames_in, s.latency_p50_ms, s.latency_p99_ms, s.batching)))
                })
            })
            .collect();
        let mut live = Vec::new();
        let mut stalled_handle = None;
        for (k, h) in handles.into_iter().enumerate() {
            if k == cameras {
                stalled_handle = Some(h);
            } else {
                live.push(h.join().map_err(|_| anyhow::anyhow!("a camera thread panicked"))??);
            }
        }
        // Every live camera is through: let the stalled one end.
        done.store(true, Ordering::SeqCst);
        if let Some(h) = stalled_handle {
            h.join().map_err(|_| anyhow::anyhow!("the stalled camera's thread panicked"))??;
        }
        Ok::<_, anyhow::Error>(live.into_iter().flatten().collect())
    })?;
    // Wall time up to the last live camera (the stalled one is waited for after that, not timed).
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    let frames: u64 = results.iter().map(|r| r.0).sum();
    let p50 = results.iter().filter_map(|r| r.1).sum::<f64>() / results.len().max(1) as f64;
    let p99 = results.iter().filter_map(|r| r.2).fold(f64::NAN, f64::max);
    // The batchers' counters as the last camera ended (they count every camera's calls).
    let mean_batch = results.iter().filter_map(|r| r.3).max_by_key(|b| b.decoder.calls).map(|b| b.decoder.calls as f64 / b.decoder.runs.max(1) as f64);
    println!(
        "{}",
        serde_json::json!({ "frames": frames, "fps": frames as f64 / wall, "cpu_per_wall": cpu / wall, "p50_ms": p50, "p99_ms": p99, "peak_rss_mb": status_kb("VmHWM:").map(|k| k as f64 / 1024.0), "mean_batch": mean_batch })
    );
    Ok(())
}

/// Child: the 8 test clips one after another through one runtime (tract fp32, the example config's
/// alarm threshold 3.5), snapshots on or off; prints one JSON line.
fn child_snapshots(model: &Path, data: &Path, on: bool) -> Result<()> {
    let alarm = AlarmConfig { threshold: 3.5, ..AlarmConfig::default() };
    let mut rt = Runtime::new(Pipeline::open(model, &BackendKind::Tract, alarm)?, "bench");
    let tmp = tempfile::tempdir()?;
    rt.sinks.push(Box::new(FramedWriter::file(&tmp.path().join("p.bin"))?));
    if on {
        let cfg = sfn_edge::snapshot::SnapshotConfig { dir: Some(tmp.path().join("events")), ..Default::default() };
        rt.snapshots = Some(sfn_edge::snapshot::Snapshots::start(cfg, "bench", None)?);
    }
    let mut clips: Vec<PathBuf> = std::fs::read_dir(data.join("testing/frames"))?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    clips.sort();
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let mut start_ms = 1_764_331_200_000u64;
    let mut frames = 0;
    let mut summary = None;
    for c in &clips {
        let mut src = ImageFolder::open(c, ImageFolderOptions { fps: Some(10.0), start_time_ms: Some(start_ms), ..Default::default() })?;
        let s = rt.run(&mut src, None, 3)?;
        frames = s.frames_in;
        start_ms += 3_600_000;
        summary = Some(s);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    let footage_s = frames as f64 / 10.0;
    let snaps = rt.close_snapshots(std::time::Duration::from_secs(60));
    let alarms = summary.map_or(0, |s| s.alarms);
    println!(
        "{}",
        serde_json::json!({
            "frames": frames, "fps": frames as f64 / wall, "cpu_per_wall": cpu / wall, "alarms": alarms, "footage_s": footage_s,
            "taken": snaps.as_ref().map(|s| s.taken), "files": snaps.as_ref().map(|s| s.files), "dropped": snaps.as_ref().map(|s| s.dropped),
        })
    );
    Ok(())
}

/// This benchmark run again as a child with `args` (one thread, quiet logs): its last stdout line,
/// as JSON.
fn run_child(args: &[&str], what: &str) -> Result<serde_json::Value> {
    run_child_env(args, what, &[])
}

/// [`run_child`] with extra environment variables.
fn run_child_env(args: &[&str], what: &str, env: &[(&str, &str)]) -> Result<serde_json::Value> {
    let o = Command::new(std::env::current_exe()?).args(args).env("RAYON_NUM_THREADS", "1").env("RUST_LOG", "warn").envs(env.iter().copied()).output()?;
    if !o.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(serde_json::from_slice(o.stdout.trim_ascii_end().rsplit(|b| *b == b'\n').next().unwrap_or_default())?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--cameras") {
        // --cameras N[+stalled] MODEL BACKEND LIB FRAMES_DIR FRAMES
        let (k, stalled) = match args[2].strip_suffix("+stalled") {
            Some(k) => (k.parse()?, true),
            None => (args[2].parse()?, false),
        };
        let lib = args.get(5).filter(|s| !s.is_empty()).map(PathBuf::from);
        return child_cameras(Path::new(&args[3]), &args[4], lib, k, stalled, Path::new(&args[6]), args[7].parse()?);
    }
    if args.get(1).map(String::as_str) == Some("--snapshots") {
        return child_snapshots(Path::new(&args[3]), Path::new(&args[4]), args[2] == "on");
    }
    if args.get(1).map(String::as_str) == Some("--child") {
        let lib = args.get(4).filter(|s| !s.is_empty()).map(PathBuf::from);
        return child(Path::new(&args[2]), &args[3], lib, Path::new(&args[5]), args[6].parse()?);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut data = std::env::var_os("SFN_DATA").map(|d| PathBuf::from(d).join("ped2")).unwrap_or_else(|| repo.join("../shared/data/ped2"));
    let mut n = 176u64;
    let mut only: Option<String> = None;
    let mut ort_lib: Option<PathBuf> = None;
    let mut it = args.iter().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--data" => data = it.next().context("--data needs a value")?.into(),
            "--frames" => n = it.next().context("--frames needs a value")?.parse()?,
            "--only" => {
                let t = it.next().context("--only needs a table: backends, cameras, snapshots or gpu")?;
                if !["backends", "cameras", "snapshots", "gpu"].contains(&t.as_str()) {
                    bail!("--only {t}: no such table (backends, cameras, snapshots, gpu)");
                }
                only = Some(t.clone());
            }
            "--ort-lib" => ort_lib = Some(it.next().context("--ort-lib needs a path")?.into()),
            "--bench" => {}
            other => bail!("unknown argument {other}"),
        }
    }
    // The roofline: one core's fp32 matmul rate, measured here and now (candle's matmul on one thread;
    // this process runs single-threaded otherwise, as its children do).
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let roofline = sfn_trainer::roofline::sgemm_flops(512, 9)?;
    let frames_dir = data.join("testing/frames/01");
    if !frames_dir.exists() {
        bail!("{}: no Ped2 (set SFN_DATA or --data)", frames_dir.display());
    }
    let lib = ort_lib.or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from)).or_else(|| sfn_trainer::export::onnxruntime_library(&repo.join(".venv")));
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("onnx");
    let export = |out: &Path, reduce_range: bool| -> Result<()> {
        sfn_trainer::export::export(&sfn_trainer::export::ExportOptions {
            model: repo.join("assets/ped2-cpu"),
            out: out.to_path_buf(),
            int8: true,
            weight_int8: false,
            calib: Some(data.clone()),
            calib_windows: 64,
            reduce_range,
        })?;
        Ok(())
    };
    export(&out, false)?;
    // Static int8 with 7-bit weights (`--int8-reduce-range`, for ONNX Runtime on x86 without VNNI).
    let reduced = tmp.path().join("onnx-reduced");
    export(&reduced, true)?;
    // The same fp32 export with its calibration edited (`edit` says whether it changed anything): to
    // time a scoring part's share of the per-frame cost.
    let variant = |name: &str, edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>) -> bool| -> Result<Option<PathBuf>> {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir)?;
        for f in ["encoder.onnx", "decoder.onnx"] {
            std::fs::copy(out.join(f), dir.join(f))?;
        }
        let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("model.json"))?)?;
        let changed = manifest["calibration"].as_object_mut().is_some_and(edit);
        std::fs::write(dir.join("model.json"), serde_json::to_string_pretty(&manifest)?)?;
        Ok(changed.then_some(dir))
    };
    // Without the speed cue; with the error not divided by copying's (the change-weighted box max) and
    // with the error neither divided nor weighted by the frame's change (the plain box max of the same
    // boxes). Their scores are off; their cost is what is timed.
    let no_speed = variant("onnx-no-speed", &|c| c.remove("speed").is_some())?;
    let had_speed = no_speed.is_some();
    let simpler = |kind: &'static str| {
        move |c: &mut serde_json::Map<String, serde_json::Value>| {
            let Some(p) = c.get_mut("pooling").and_then(|p| p.as_object_mut()).filter(|p| p["kind"] == "relative_window_max" || p["kind"] == "changed_window_max") else { return false };
            if p["kind"] == kind {
                return false;
            }
            p.insert("kind".into(), kind.into());
            p.remove("floor_micro");
            if kind == "window_max" {
                p.remove("change_milli");
            }
            true
        }
    };
    let not_relative = variant("onnx-not-relative", &simpler("changed_window_max"))?;
    let unweighted = variant("onnx-unweighted", &simpler("window_max"))?;
    let (f_enc, f_dec) = {
        let cfg: sfn_models::SfnConfig = serde_json::from_str(&std::fs::read_to_string(repo.join("assets/ped2-cpu/config.json"))?)?;
        // An ensemble runs each member's encoder and decoder.
        let k = sfn_infer::manifest::Manifest::read(&out)?.members as f64;
        let (e, d) = sfn_export::flops(&cfg);
        (k * e, k * d)
    };
    // Every CPU table by default; the GPU one only when asked for.
    let table = |name: &str| only.as_deref().map_or(name != "gpu", |o| o == name);
    if table("backends") {
        println!("Ped2 test clip 01, {n} frames from disk (JPEG decode + resize + encoder + decoder + scoring + packet sink), one core per run\n");
        println!("| back-end | precision | frames/s | vs tract fp32 | p50 ms | p99 ms | CPU / wall | peak RSS MB | efficiency |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut base = None;
        for backend in ["tract", "onnxruntime"] {
            let mut configs = vec![("fp32", out.clone(), false)];
            if backend == "tract" {
                // Before tract's batch-1 plan: every call on the symbolic-batch plan.
                configs.push(("fp32, symbolic-batch plan (before)", out.clone(), true));
            }
            if let Some(d) = &no_speed {
                configs.push(("fp32, no speed cue", d.clone(), false));
            }
            if let (Some(d), "tract") = (&not_relative, backend) {
                configs.push(("fp32, error not relative to copying's", d.clone(), false));
            }
            if let (Some(d), "tract") = (&unweighted, backend) {
                configs.push(("fp32, error neither relative nor weighted by change", d.clone(), false));
            }
            configs.push(("int8_qdq", out.join("int8"), false));
            if backend == "onnxruntime" {
                configs.push(("int8_qdq, weights in [-63, 63]", reduced.join("int8"), false));
            }
            for (prec, dir, symbolic) in configs {
                if backend == "onnxruntime" && lib.is_none() {
                    println!("| onnxruntime | {prec} | (no libonnxruntime: run scripts/setup.sh) |");
                    continue;
                }
                let v = run_child_env(
                    &["--child", dir.to_str().unwrap(), backend, lib.as_ref().map(|p| p.to_str().unwrap()).unwrap_or(""), frames_dir.to_str().unwrap(), &n.to_string()],
                    &format!("{backend} {prec}"),
                    if symbolic { &[("SFN_TRACT_SYMBOLIC", "1")] } else { &[] },
                )?;
                let fps = v["fps"].as_f64().unwrap_or(f64::NAN);
                let b = *base.get_or_insert(fps);
                println!(
                    "| {backend} | {prec} | {fps:.0} | {:.2}x | {:.2} | {:.2} | {:.2} | {:.0} | {:.0}% |",
                    fps / b,
                    v["p50_ms"].as_f64().unwrap_or(f64::NAN),
                    v["p99_ms"].as_f64().unwrap_or(f64::NAN),
                    v["cpu_per_wall"].as_f64().unwrap_or(f64::NAN),
                    v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
                    100.0 * (f_enc + f_dec) * fps / roofline
                );
            }
        }
        if had_speed {
            println!("\nThe scores of every row but \"no speed cue\" include the speed cue (block matching, sfn_scoring::speed).");
        }
    }
    // Several cameras in one process (one thread a camera; tract: the model loaded once).
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    if table("cameras") {
        println!("\nSeveral cameras in one process (one thread a camera; tract shares one loaded model, ONNX Runtime has a session each, one intra-op thread; this machine has {cores} cores). p50 / p99: encoder + decoder ms a frame (mean of the cameras' p50, worst camera's p99):\n");
        println!(
            "| back-end | precision | cameras | frames/s, all cameras | frames/s per busy core | p50 ms | p99 ms | peak RSS MB, one process | peak RSS MB, that many times the one-camera process |"
        );
        println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
        let libs = lib.as_ref().map(|p| p.to_str().unwrap()).unwrap_or("");
        let mut rows = vec![("tract", "fp32", out.clone())];
        if lib.is_some() {
            rows.push(("onnxruntime", "fp32", out.clone()));
            rows.push(("onnxruntime", "int8_qdq", out.join("int8")));
        }
        for (backend, prec, dir) in rows {
            let mut single_rss = f64::NAN;
            let mut seven = f64::NAN;
            let mut unbatched = std::collections::HashMap::new();
            for k in ["1", "2", "4", "7", "8", "7+stalled"] {
                let v = run_child(&["--cameras", k, dir.to_str().unwrap(), backend, libs, frames_dir.to_str().unwrap(), &n.to_string()], &format!("{backend} {prec} {k} cameras"))?;
                let f = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
                let (fps, busy, rss) = (f("fps"), f("cpu_per_wall"), f("peak_rss_mb"));
                let count: f64 = k.trim_end_matches("+stalled").parse().unwrap_or(f64::NAN);
                if k == "1" {
                    single_rss = rss;
                }
                if k == "7" {
                    seven = fps;
                }
                let label = if k == "7+stalled" { format!("7 + 1 stalled ({:.2}x the 7 alone)", fps / seven) } else { k.to_string() };
                println!(
                    "| {backend} | {prec} | {label} | {fps:.0} | {:.0} | {:.2} | {:.2} | {rss:.0} | {:.0} |",
                    fps / busy.max(1e-9),
                    f("p50_ms"),
                    f("p99_ms"),
                    single_rss * (count + f64::from(u8::from(k.ends_with("stalled"))))
                );
                unbatched.insert(k, fps);
            }
            // The same cameras with their calls batched (`model.max_batch` = cameras, 10 ms deadline).
            if prec == "fp32" {
                for k in ["2", "8"] {
                    let v = run_child_env(
                        &["--cameras", k, dir.to_str().unwrap(), backend, libs, frames_dir.to_str().unwrap(), &n.to_string()],
                        &format!("{backend} {prec} {k} cameras batched"),
                        &[("BENCH_MAX_BATCH", k)],
                    )?;
                    let f = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
                    let (fps, busy, rss) = (f("fps"), f("cpu_per_wall"), f("peak_rss_mb"));
                    println!(
                        "| {backend} | {prec} | {k}, batched (mean batch {:.1}; {:.2}x unbatched) | {fps:.0} | {:.0} | {:.2} | {:.2} | {rss:.0} | |",
                        f("mean_batch"),
                        fps / unbatched.get(k).copied().unwrap_or(f64::NAN),
                        fps / busy.max(1e-9),
                        f("p50_ms"),
                        f("p99_ms")
                    );
                }
            }
        }
    }
    if table("gpu") {
        let libs = lib.as_ref().map(|p| p.to_str().unwrap()).unwrap_or("");
        println!(
            "\nThe GPU path (fp32 export; ONNX Runtime from {}; one thread a camera, a session each; CPU rows: one intra-op thread a camera):\n",
            if libs.is_empty() { "ORT_DYLIB_PATH" } else { libs }
        );
        println!("| back-end | cameras | frames/s, all cameras | vs tract CPU, same cameras | p50 ms | p99 ms | peak RSS MB |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let mut cpu = std::collections::HashMap::new();
        for backend in ["tract", "onnxruntime", "onnxruntime-cuda", "onnxruntime-tensorrt"] {
            for k in ["1", "8", "8, batched"] {
                // "8, batched": the 8 cameras' calls batched (`model.max_batch` = 8, 10 ms deadline).
                let batch = if k.ends_with("batched") { "8" } else { "1" };
                let cams = &k[..1];
                match run_child_env(
                    &["--cameras", cams, out.to_str().unwrap(), backend, libs, frames_dir.to_str().unwrap(), &n.to_string()],
                    &format!("{backend} {k} cameras"),
                    &[("BENCH_MAX_BATCH", batch)],
                ) {
                    Ok(v) => {
                        let f = |key: &str| v[key].as_f64().unwrap_or(f64::NAN);
                        let base = *cpu.entry(cams).or_insert(f("fps"));
                        println!("| {backend} | {k} | {:.0} | {:.2}x | {:.2} | {:.2} | {:.0} |", f("fps"), f("fps") / base, f("p50_ms"), f("p99_ms"), f("peak_rss_mb"));
                    }
                    Err(e) => println!("| {backend} | {k} | failed: {} |||||", e.to_string().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").replace('|', "/")),
                }
            }
        }
    }
    // Alarm snapshots off and on, alternately (the machine is shared: two of each, side by side).
    if table("snapshots") {
        println!("\nAlarm snapshots (tract fp32, the 8 test clips through one runtime at threshold 3.5, snapshot files on a local disk):\n");
        println!("| snapshots | run | frames/s | vs off (same round) | CPU / wall | alarms | alarms per minute of footage | snapshots taken | files written | jobs dropped |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for round in 1..=2 {
            let mut off = f64::NAN;
            for on in [false, true] {
                let mode = if on { "on" } else { "off" };
                let v = run_child(&["--snapshots", mode, out.to_str().unwrap(), data.to_str().unwrap()], &format!("snapshots {mode}"))?;
                let fps = v["fps"].as_f64().unwrap_or(f64::NAN);
                if !on {
                    off = fps;
                }
                let alarms = v["alarms"].as_u64().unwrap_or(0);
                let per_min = alarms as f64 / (v["footage_s"].as_f64().unwrap_or(f64::NAN) / 60.0);
                let opt = |k: &str| v[k].as_u64().map_or("-".to_string(), |x| x.to_string());
                println!(
                    "| {mode} | {round} | {fps:.1} | {:.3}x | {:.2} | {alarms} | {per_min:.1} | {} | {} | {} |",
                    fps / off,
                    v["cpu_per_wall"].as_f64().unwrap_or(f64::NAN),
                    opt("taken"),
                    opt("files"),
                    opt("dropped")
                );
            }
        }
    }
    println!(
        "\nF = {:.1} MFLOP per frame (encoder {:.1} + decoder {:.1}); efficiency = F x frames/s / {:.0} GFLOP/s (one core's fp32 matmul, measured in this run: 512x512x512, candle).",
        (f_enc + f_dec) / 1e6,
        f_enc / 1e6,
        f_dec / 1e6,
        roofline / 1e9
    );
    Ok(())
}
