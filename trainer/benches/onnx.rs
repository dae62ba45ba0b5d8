//! ONNX export benchmark on real Ped2 frames: file sizes; encoder and decoder latency per frame on ONE
//! core for fp32 / static int8 (QDQ) / weight-only int8 on tract and ONNX Runtime, measured interleaved
//! in one run (ratios against tract fp32); int8 output error against fp32; Ped2 AUC of each precision.
//! `--peer DIR2` adds a second model's fp32 and static int8 exports to the same interleaved latency
//! rounds (e.g. the previous committed model), so the two models' costs are compared within one run.
//!
//! ```text
//! cargo bench -p sfn-trainer --bench onnx -- [--data ROOT] [--model DIR] [--peer DIR2] [--rounds 7] [--frames 24]
//! ```
//! ROOT defaults to `$SFN_DATA/ped2`, else `../shared/data/ped2`; DIR to the committed `assets/ped2-cpu`.
//! Model directories are as `sfn-train train` writes them (absolute, or relative to `trainer/`).
//! ONNX Runtime comes from `ORT_DYLIB_PATH` or the repo's `.venv` (`scripts/setup.sh`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sfn_infer::onnxruntime_options::OrtOptions;
use sfn_infer::{BackendKind, ExportedModel};
use sfn_trainer::data::Dataset;
use sfn_trainer::export::{evaluate_export, export, onnxruntime_library, ExportOptions};
use sfn_trainer::train::frame_format;

struct Args {
    data: PathBuf,
    model: PathBuf,
    peer: Option<PathBuf>,
    rounds: usize,
    frames: usize,
}

fn args() -> Result<Args> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let data = std::env::var_os("SFN_DATA").map(|d| PathBuf::from(d).join("ped2")).unwrap_or_else(|| repo.join("../shared/data/ped2"));
    let mut a = Args { data, model: repo.join("assets/ped2-cpu"), peer: None, rounds: 7, frames: 24 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().with_context(|| format!("{k} needs a value"));
        match k.as_str() {
            "--data" => a.data = val()?.into(),
            "--model" => a.model = val()?.into(),
            "--peer" => a.peer = Some(val()?.into()),
            "--rounds" => a.rounds = val()?.parse()?,
            "--frames" => a.frames = val()?.parse()?,
            "--bench" => {}
            other => bail!("unknown argument {other} (--data, --model, --peer, --rounds, --frames)"),
        }
    }
    Ok(a)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Subject {
    label: String,
    model: ExportedModel,
    /// Index into the frame sets (one per input size) and the model's FLOP per frame.
    frames: usize,
    flops: f64,
    enc_s: Vec<f64>,
    dec_s: Vec<f64>,
    /// Process CPU seconds and wall seconds spent in this subject (CPU / wall ~ 1 means one core).
    cpu: f64,
    wall: f64,
}

/// CPU time (user + system) of this process so far, from /proc/self/stat (clock ticks of 10 ms).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // utime and stime are fields 14 and 15 of the line; `f` starts at field 4 (ppid; the state is not a number).
    if f.len() > 11 {
        (f[10] + f[11]) / 100.0
    } else {
        f64::NAN
    }
}

fn main() -> Result<()> {
    let a = args()?;
    if !a.data.join("testing").exists() {
        bail!("{}: no Ped2 here (set SFN_DATA or --data)", a.data.display());
    }
    // The roofline: one core's fp32 matmul rate, measured here and now (candle's matmul on one thread;
    // this process runs single-threaded otherwise, as its children do).
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let roofline = sfn_trainer::roofline::sgemm_flops(512, 9)?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let lib = onnxruntime_library(&repo.join(".venv")).context("no libonnxruntime.so: run scripts/setup.sh or set ORT_DYLIB_PATH")?;
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("onnx");
    let t0 = Instant::now();
    let done = export(&ExportOptions { model: a.model.clone(), out: out.clone(), int8: true, weight_int8: true, calib: Some(a.data.clone()), calib_windows: 64, reduce_range: false })?;
    println!("exported {} in {:.1} s (int8 calibrated on 64 normal Ped2 training windows)\n", a.model.display(), t0.elapsed().as_secs_f64());
    let cfg: sfn_models::SfnConfig = serde_json::from_value(done[0].1.config.clone())?;
    // An ensemble runs each member's encoder and decoder.
    let k = done[0].1.members as f64;
    let (f_enc, f_dec) = sfn_export::flops(&cfg);
    let (f_enc, f_dec) = (k * f_enc, k * f_dec);

    println!("| precision | encoder.onnx | decoder.onnx | total | vs fp32 |");
    println!("|---|---:|---:|---:|---:|");
    let fp32_total = (done[0].1.encoder.bytes + done[0].1.decoder.bytes) as f64;
    for (_, m) in &done {
        let t = (m.encoder.bytes + m.decoder.bytes) as f64;
        println!("| {} | {} B | {} B | {:.2} MB | {:.2} |", m.precision.name(), m.encoder.bytes, m.decoder.bytes, t / 1e6, t / fp32_total);
    }

    // Real frames: the first frames of the first Ped2 test clip.
    let ds = Dataset::open(&a.data, "testing", &frame_format(&cfg))?;
    let clip = &ds.clips[0];
    let n = a.frames.min(clip.frames.len()).max(5);
    let ort = BackendKind::OnnxRuntime(OrtOptions { library: Some(lib), threads: 1, ..Default::default() });
    let mut frame_sets = vec![clip.frames[..n].to_vec()];
    let mut subjects = Vec::new();
    for (dir, m) in &done {
        for backend in [BackendKind::Tract, ort.clone()] {
            let model = ExportedModel::open(dir, &backend)?;
            let label = format!("{} {}", model.backend(), m.precision.name());
            subjects.push(Subject { label, model, frames: 0, flops: f_enc + f_dec, enc_s: vec![], dec_s: vec![], cpu: 0.0, wall: 0.0 });
        }
    }
    let mut peer_note = String::new();
    if let Some(peer) = &a.peer {
        let out = tmp.path().join("peer");
        let pd = export(&ExportOptions { model: peer.clone(), out: out.clone(), int8: true, weight_int8: false, calib: Some(a.data.clone()), calib_windows: 64, reduce_range: false })?;
        let pcfg: sfn_models::SfnConfig = serde_json::from_value(pd[0].1.config.clone())?;
        let (pe, pdf) = sfn_export::flops(&pcfg);
        let (pe, pdf) = (pd[0].1.members as f64 * pe, pd[0].1.members as f64 * pdf);
        let pds = Dataset::open(&a.data, "testing", &frame_format(&pcfg))?;
        let pclip = pds.clips.iter().find(|c| c.name == clip.name).context("the peer's test split lacks the timed clip")?;
        if pclip.frames.len() < n {
            bail!("{}: clip {} has {} frames, {n} are timed", a.data.display(), clip.name, pclip.frames.len());
        }
        frame_sets.push(pclip.frames[..n].to_vec());
        let size = format!("{}x{}", pcfg.image.height, pcfg.image.width);
        for (dir, m) in &pd {
            for backend in [BackendKind::Tract, ort.clone()] {
                let model = ExportedModel::open(dir, &backend)?;
                let label = format!("{} {}-peer-{size}", model.backend(), m.precision.name());
                subjects.push(Subject { label, model, frames: 1, flops: pe + pdf, enc_s: vec![], dec_s: vec![], cpu: 0.0, wall: 0.0 });
            }
        }
        peer_note = format!("; peer {} ({size}): {:.1} + {:.1} MFLOP", peer.display(), pe / 1e6, pdf / 1e6);
    }
    // Interleaved rounds: every subject runs in every round, so drift on the shared machine hits all alike.
    for round in 0..=a.rounds {
        for s in subjects.iter_mut() {
            let frames = &frame_sets[s.frames];
            let (c0, w0) = (process_cpu_seconds(), Instant::now());
            let t = Instant::now();
            let mut enc = Vec::with_capacity(n);
            for k in 0..n {
                enc.push(s.model.encode(&frames[k], &frames[k.saturating_sub(1)], 1)?);
            }
            let te = t.elapsed().as_secs_f64() / n as f64;
            let t = Instant::now();
            for tgt in 4..n {
                let ft: Vec<f32> = (tgt - 4..tgt).flat_map(|k| enc[k].tokens.data.iter().copied()).collect();
                let mo: Vec<f32> = (tgt - 3..tgt).flat_map(|k| enc[k].motion.data.iter().copied()).collect();
                s.model.decode(&ft, &enc[tgt - 1].patch_embed.data, &mo, None, &frames[tgt - 1], Some(&frames[tgt.saturating_sub(2)]), 1)?;
            }
            let td = t.elapsed().as_secs_f64() / (n - 4) as f64;
            if round > 0 {
                // round 0 warms caches and lazy initialisation
                s.enc_s.push(te);
                s.dec_s.push(td);
                s.cpu += process_cpu_seconds() - c0;
                s.wall += w0.elapsed().as_secs_f64();
            }
        }
    }
    let base = median(subjects[0].enc_s.clone()) + median(subjects[0].dec_s.clone());
    println!(
        "\nLatency per frame, batch 1, one core ({} rounds x {n} Ped2 frames, medians; F = {:.1} MFLOP encoder + {:.1} MFLOP decoder per frame{peer_note};\nroofline {:.0} GFLOP/s a core, measured in this run (a 512x512x512 fp32 matmul, candle) -> efficiency = F / time / roofline)\n",
        a.rounds,
        f_enc / 1e6,
        f_dec / 1e6,
        roofline / 1e9
    );
    println!("| back-end | precision | encoder ms | decoder ms | total ms | frames/s | speed vs tract fp32 | efficiency | CPU / wall |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for s in &subjects {
        let (e, d) = (median(s.enc_s.clone()), median(s.dec_s.clone()));
        let (backend, prec) = s.label.split_once(' ').unwrap();
        println!(
            "| {backend} | {prec} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2}x | {:.1}% | {:.2} |",
            e * 1e3,
            d * 1e3,
            (e + d) * 1e3,
            1.0 / (e + d),
            base / (e + d),
            100.0 * s.flops / (e + d) / roofline,
            s.cpu / s.wall
        );
    }

    // int8 output error against fp32 on ONNX Runtime, on the predicted change (prediction - last frame)
    // of every window of the first test clip.
    let fl = clip.frames[0].len();
    let predict = |dir: &Path| -> Result<Vec<Vec<f32>>> {
        let mut m = ExportedModel::open(dir, &ort)?;
        let frames: Vec<f32> = clip.frames.iter().flatten().copied().collect();
        let prevs: Vec<f32> = (0..clip.frames.len()).flat_map(|k| clip.frames[k.saturating_sub(1)].iter().copied()).collect();
        let e = m.encode(&frames, &prevs, clip.frames.len())?;
        let tl = e.tokens.data.len() / clip.frames.len();
        let ml = e.motion.data.len() / clip.frames.len();
        let mut out = vec![];
        for t in 4..clip.frames.len() {
            let d = m.decode(
                &e.tokens.data[(t - 4) * tl..t * tl],
                &e.patch_embed.data[(t - 1) * tl..t * tl],
                &e.motion.data[(t - 3) * ml..t * ml],
                None,
                &clip.frames[t - 1],
                Some(&clip.frames[t - 2]),
                1,
            )?;
            out.push(d.frame.data.iter().zip(&clip.frames[t - 1]).map(|(p, l)| p - l).collect());
        }
        Ok(out)
    };
    let reference = predict(&done[0].0)?;
    println!("\nint8 error against fp32 (ONNX Runtime; predicted change I_hat - I_t over the {} windows of test clip {}, {fl} pixels each)\n", reference.len(), clip.name);
    println!("| precision | max abs | relative RMS |");
    println!("|---|---:|---:|");
    for (dir, m) in &done[1..] {
        let got = predict(dir)?;
        let (mut mx, mut num, mut den) = (0f32, 0f64, 0f64);
        for (g, r) in got.iter().zip(&reference) {
            for (x, y) in g.iter().zip(r) {
                mx = mx.max((x - y).abs());
                num += f64::from(x - y).powi(2);
                den += f64::from(*y).powi(2);
            }
        }
        println!("| {} | {mx:.2e} | {:.3} |", m.precision.name(), (num / den).sqrt());
    }

    println!("\nPed2 test split (8 clips), ONNX Runtime, AUC in %\n");
    println!("| precision | offline micro | offline macro | causal micro | causal macro | micro vs fp32 |");
    println!("|---|---:|---:|---:|---:|---:|");
    let pct = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{:.2}", 100.0 * v));
    let mut fp32_micro = None;
    for (dir, m) in &done {
        let r = evaluate_export(dir, &a.data, &ort, 32, None)?;
        let micro = r.offline.micro_auc;
        if fp32_micro.is_none() {
            fp32_micro = micro;
        }
        let c = r.causal.as_ref();
        println!(
            "| {} | {} | {} | {} | {} | {:+.2} pt |",
            m.precision.name(),
            pct(micro),
            pct(r.offline.macro_auc),
            pct(c.and_then(|c| c.micro_auc)),
            pct(c.and_then(|c| c.macro_auc)),
            100.0 * (micro.unwrap_or(f64::NAN) - fp32_micro.unwrap_or(f64::NAN))
        );
    }
    Ok(())
}
