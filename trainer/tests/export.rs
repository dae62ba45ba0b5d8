//! ONNX export checked by real consumers: candle vs tract vs ONNX Runtime on the same inputs (fp32 max
//! abs difference <= 1e-4), `onnx.checker.check_model(full_check=True)` on every exported file, int8
//! output error, and clear errors for bad input (tampered files, mismatched manifest, weights that do
//! not fit their config, unwritable output).
//!
//! Needs `scripts/setup.sh` (the repo venv with `onnx` and `onnxruntime`); fails, not skips, without it.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{Device, Tensor};
use sfn_infer::onnxruntime_options::OrtOptions;
use sfn_infer::{BackendKind, ExportedModel};
use sfn_models::config::FilterKind;
use sfn_models::scoring::{CausalCalibration, ErrorPooling};
use sfn_models::{SfnConfig, SfnVad};
use sfn_trainer::checkpoint;
use sfn_trainer::export::{export, ExportOptions};
use sfn_trainer::synth::{write_walkway, SynthConfig};
use sfn_trainer::train::seeded_init;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn venv_python() -> PathBuf {
    let p = repo().join(".venv/bin/python");
    assert!(p.exists(), "{} missing: run scripts/setup.sh", p.display());
    p
}

/// libonnxruntime from ORT_DYLIB_PATH or the repo venv's onnxruntime wheel.
fn ort_library() -> PathBuf {
    let venv = repo().join(".venv");
    sfn_trainer::export::onnxruntime_library(&venv).unwrap_or_else(|| panic!("no libonnxruntime.so in {}: run scripts/setup.sh", venv.display()))
}

fn ort() -> BackendKind {
    BackendKind::OnnxRuntime(OrtOptions { library: Some(ort_library()), ..Default::default() })
}

/// A checkpoint directory with seeded random weights for `cfg`, and a causal calibration.
fn checkpoint_dir(dir: &Path, cfg: &SfnConfig, seed: u64) -> SfnVad {
    std::fs::create_dir_all(dir).unwrap();
    let (model, vm) = seeded_init(cfg, seed, &Device::Cpu).unwrap();
    if cfg.decoder.warp_radius > 0 {
        // The residual head's last layer starts near zero, which leaves every shift weight at the
        // prior: large weights make the warp's weights differ from pixel to pixel and shift to shift.
        let data = vm.data().lock().unwrap();
        let w = data.get("decoder.frame_head.conv1.weight").unwrap();
        w.set(&Tensor::randn(0f32, 2.0, w.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    checkpoint::write_json(&dir.join(checkpoint::CONFIG), cfg).unwrap();
    checkpoint::save_weights(&vm, &dir.join(checkpoint::WEIGHTS)).unwrap();
    let mut cal = CausalCalibration::fit(&[0.01, 0.02, 0.015, 0.03], None, 3.0, 0.8, 0.2).unwrap();
    cal.pooling = ErrorPooling::WindowMax { window: 8, stride: 4 };
    checkpoint::write_json(&dir.join(checkpoint::CALIBRATION), &cal).unwrap();
    model
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// ||a - b|| / ||b||.
fn rel_rms(a: &[f32], b: &[f32]) -> f32 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den.max(1e-30)).sqrt() as f32
}

fn vec(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// candle's forward on `frames` [B,4,C,H,W] vs the export on `backend`: encoder outputs and decoder
/// outputs, with and without a caption. Returns the largest difference seen and the relative RMS
/// difference of the predicted frame without a caption (the path int8 calibration saw).
fn compare(model: &SfnVad, cfg: &SfnConfig, dir: &Path, backend: &BackendKind, frames: &Tensor, text: &Tensor) -> (f32, f32) {
    let (b, _, c, h, w) = frames.dims5().unwrap();
    let fl = c * h * w;
    let mut onnx = ExportedModel::open(dir, backend).unwrap();
    let mut worst = 0f32;
    let mut worst_rel = 0f32;
    for with_text in [false, true] {
        let t = with_text.then_some(text);
        let want = model.forward(frames, t).unwrap();
        let (mut ft, mut sk, mut mo, mut last, mut prev) = (vec![], vec![], vec![], vec![], vec![]);
        for s in 0..b {
            let win = frames.get(s).unwrap();
            let fr = vec(&win);
            let prevs: Vec<f32> = [0usize, 0, 1, 2].iter().flat_map(|&k| fr[k * fl..(k + 1) * fl].to_vec()).collect();
            let enc = onnx.encode(&fr, &prevs, 4).unwrap();
            // Encoder outputs against candle's per-frame encoders.
            let ce = model.encode_frame(&win).unwrap();
            worst = worst.max(max_abs(&enc.tokens.data, &vec(&ce.tokens)));
            worst = worst.max(max_abs(&enc.patch_embed.data, &vec(&ce.patch_embed)));
            let diffs = (win.narrow(0, 1, 3).unwrap() - win.narrow(0, 0, 3).unwrap()).unwrap();
            let cm = model.encode_motion(&diffs).unwrap();
            let ml = enc.motion.data.len() / 4;
            worst = worst.max(max_abs(&enc.motion.data[ml..], &vec(&cm)));
            ft.extend_from_slice(&enc.tokens.data);
            let tl = enc.patch_embed.data.len() / 4;
            sk.extend_from_slice(&enc.patch_embed.data[3 * tl..]);
            mo.extend_from_slice(&enc.motion.data[ml..]);
            last.extend_from_slice(&fr[3 * fl..]);
            prev.extend_from_slice(&fr[2 * fl..3 * fl]);
        }
        let tv = vec(text);
        let got = onnx.decode(&ft, &sk, &mo, with_text.then_some(&tv[..]), &last, Some(&prev), b).unwrap();
        assert_eq!(got.frame.shape, vec![b, c, h, w]);
        assert_eq!(got.text.shape, vec![b, cfg.text_dim]);
        let df = max_abs(&got.frame.data, &vec(&want.frame));
        let dt = max_abs(&got.text.data, &vec(&want.text));
        let rel = rel_rms(&got.frame.data, &vec(&want.frame));
        eprintln!("{} {:?} text={with_text}: frame max|diff| {df:.2e} (relative RMS {rel:.2e}), text max|diff| {dt:.2e}", onnx.backend(), onnx.manifest.precision);
        worst = worst.max(df).max(dt);
        if !with_text {
            worst_rel = rel;
        }
    }
    (worst, worst_rel)
}

fn variants() -> Vec<(&'static str, SfnConfig)> {
    // A: SFFM, plain head with the pixel stem: every exported op is exercised and the prediction is
    // the network's own (no residual frame to hide differences behind).
    let mut a = SfnConfig::tiny();
    a.decoder.residual = false;
    a.decoder.pixel_stem = 4;
    // B: the MLP ablation with the residual head (the preset default).
    let mut b = SfnConfig::tiny();
    b.sffm.kind = FilterKind::Mlp;
    // C: the prototype memory (no residual head, so the memory read is what the frame shows).
    let mut c = SfnConfig::tiny();
    c.sffm.kind = FilterKind::Memory;
    c.sffm.memory_slots = 32;
    c.decoder.residual = false;
    // D: the stem and head at half resolution (pixels folded into channels and the output unfolded).
    let mut d = SfnConfig::tiny();
    d.decoder.residual = false;
    d.decoder.pixel_stem = 4;
    d.decoder.head_scale = 2;
    // E: the head that warps the last frame by up to two pixels, plus its residual.
    let mut e = SfnConfig::tiny();
    e.decoder.pixel_stem = 4;
    e.decoder.warp_radius = 2;
    vec![("sffm-stem", a), ("mlp-residual", b), ("memory", c), ("sffm-stem-half", d), ("sffm-stem-warp", e)]
}

#[test]
fn fp32_parity_candle_tract_onnxruntime() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, cfg) in variants() {
        let ck = tmp.path().join(name);
        let model = checkpoint_dir(&ck, &cfg, 11);
        let out = tmp.path().join(format!("{name}-onnx"));
        export(&ExportOptions { model: ck, out: out.clone(), int8: false, weight_int8: false, calib: None, calib_windows: 0, reduce_range: false }).unwrap();
        let i = &cfg.image;
        let frames = Tensor::randn(0f32, 0.5, (3, 4, i.channels, i.height, i.width), &Device::Cpu).unwrap().clamp(-1f32, 1f32).unwrap();
        let text = Tensor::randn(0f32, 1.0, (3, cfg.text_dim), &Device::Cpu).unwrap();
        for backend in [BackendKind::Tract, ort()] {
            let (d, _) = compare(&model, &cfg, &out, &backend, &frames, &text);
            assert!(d <= 1e-4, "{name} on {backend:?}: max |candle - onnx| = {d:e} > 1e-4");
        }
    }
}

#[test]
fn sffm_routing_is_exported_not_densified() {
    // The decoder graph routes with TopK and scatters the gates; a dense mixture would have neither.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = variants().remove(0).1;
    let ck = tmp.path().join("m");
    checkpoint_dir(&ck, &cfg, 3);
    let out = tmp.path().join("onnx");
    export(&ExportOptions { model: ck, out: out.clone(), int8: false, weight_int8: false, calib: None, calib_windows: 0, reduce_range: false }).unwrap();
    let (_, _, dec) = sfn_infer::Manifest::open(&out).unwrap();
    let ops: Vec<&str> = dec.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
    let count = |op: &str| ops.iter().filter(|o| **o == op).count();
    assert_eq!(count("TopK"), cfg.decoder.vit.depth, "{ops:?}");
    assert_eq!(count("ScatterElements"), cfg.decoder.vit.depth);
}

fn synth_data(root: &Path) {
    let synth = SynthConfig { train_clips: 2, test_clips: 2, frames_per_clip: 16, ..Default::default() };
    write_walkway(root, &synth).unwrap();
}

/// Two normal windows of the synthetic walkway that are not among the 12 calibration windows (those
/// are every second one), and a unit-norm caption feature, as the sentence encoder gives
/// (deterministic).
fn normal_inputs(cfg: &SfnConfig, data: &Path) -> (Tensor, Tensor) {
    let i = &cfg.image;
    let ds = sfn_trainer::data::Dataset::open(data, "training", &sfn_trainer::train::frame_format(cfg)).unwrap();
    let idx = [(0usize, 5usize), (1, 9)];
    let five = Tensor::from_vec(ds.try_batch(&idx).unwrap(), (2, 5, i.channels, i.height, i.width), &Device::Cpu).unwrap();
    let frames = five.narrow(1, 0, 4).unwrap().contiguous().unwrap();
    let t: Vec<f32> = (0..2 * cfg.text_dim).map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) / (cfg.text_dim as f32 / 3.0).sqrt()).collect();
    (frames, Tensor::from_vec(t, (2, cfg.text_dim), &Device::Cpu).unwrap())
}

/// `onnx.checker.check_model(full_check=True)` passes on every file.
fn onnx_checker(files: &[PathBuf]) {
    let check =
        Command::new(venv_python()).args(["-c", "import sys, onnx\nfor p in sys.argv[1:]:\n    onnx.checker.check_model(p, full_check=True)\n    print('ok', p)"]).args(files).output().unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "onnx.checker failed:\n{stdout}\n{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), files.len(), "{stdout}");
}

/// The int8 export's bound on the frame's relative RMS error (see the test below for why ONNX
/// Runtime's is wider where its int8 pairs saturate).
fn int8_bound(backend: &BackendKind) -> f32 {
    if matches!(backend, BackendKind::OnnxRuntime(_)) && sfn_infer::onnxruntime_options::int8_pairs_saturate() {
        0.45
    } else {
        0.2
    }
}

#[test]
fn a_warping_head_exports_to_int8_within_the_same_bounds() {
    // The warp itself (padding, shifted slices, softmax, weighted sum) stays float; only the
    // convolutions around it are quantised.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    synth_data(&data);
    let (name, cfg) = variants().pop().unwrap();
    assert!(cfg.decoder.warp_radius > 0, "{name}");
    let ck = tmp.path().join("m");
    let model = checkpoint_dir(&ck, &cfg, 5);
    let out = tmp.path().join("onnx");
    let done = export(&ExportOptions { model: ck, out, int8: true, weight_int8: false, calib: Some(data.clone()), calib_windows: 12, reduce_range: false }).unwrap();
    onnx_checker(&done.iter().flat_map(|(dir, m)| [dir.join(&m.encoder.file), dir.join(&m.decoder.file)]).collect::<Vec<_>>());
    let (frames, text) = normal_inputs(&cfg, &data);
    let (dir, m) = &done[1];
    for backend in [BackendKind::Tract, ort()] {
        let (d, rel) = compare(&model, &cfg, dir, &backend, &frames, &text);
        assert!(d.is_finite() && rel < int8_bound(&backend), "{} on {backend:?}: int8 relative RMS error {rel} (max {d})", m.precision.name());
    }
}

#[test]
fn every_export_passes_onnx_checker_and_int8_error_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    synth_data(&data);
    let cfg = variants().remove(0).1;
    let ck = tmp.path().join("m");
    let model = checkpoint_dir(&ck, &cfg, 5);
    let out = tmp.path().join("onnx");
    let done = export(&ExportOptions { model: ck.clone(), out: out.clone(), int8: true, weight_int8: true, calib: Some(data.clone()), calib_windows: 12, reduce_range: false }).unwrap();
    assert_eq!(done.len(), 3);
    let mut files = vec![];
    for (dir, m) in &done {
        files.push(dir.join(&m.encoder.file));
        files.push(dir.join(&m.decoder.file));
    }
    onnx_checker(&files);

    // int8 sizes and output error against fp32 candle, on both runtimes.
    let fp32_bytes = done[0].1.encoder.bytes + done[0].1.decoder.bytes;
    let (frames, text) = normal_inputs(&cfg, &data);
    for (dir, m) in &done[1..] {
        let bytes = m.encoder.bytes + m.decoder.bytes;
        // Under 45% of fp32 for this tiny network: int8 weights take a quarter of the bytes, and what
        // stays fp32 (routers, norms, biases, scales) weighs more in a small model (the Ped2 model's
        // int8 export is 0.30x its fp32 one).
        assert!(bytes * 20 < fp32_bytes * 9, "{}: {bytes} bytes vs fp32 {fp32_bytes}", dir.display());
        for backend in [BackendKind::Tract, ort()] {
            // Max differences can be large where a token's top-k experts flip (an untrained router is
            // close to uniform, so flips are common); the frame as a whole must stay close. (A broken
            // scale, e.g. clipping at the wrong range, gave 0.5 and more.) The trained Ped2 model's
            // figures are in the benchmark.
            //
            // ONNX Runtime's x86 int8 kernels without VNNI add pairs of u8 x s8 products in 16 bits,
            // which saturate (ONNX Runtime's documentation, "reduce_range"): measured here on an AVX2
            // machine, 0.31-0.34 where tract gives 0.10-0.15 (the machines this passed on before stayed
            // under 0.2). There
            // the bound is the broken-scale level instead (docs/deployment.md says what it means for a
            // camera).
            let bound = int8_bound(&backend);
            let (d, rel) = compare(&model, &cfg, dir, &backend, &frames, &text);
            assert!(d.is_finite() && rel < bound, "{} on {backend:?}: int8 relative RMS error {rel} (max {d}, bound {bound})", m.precision.name());
        }
    }
    let q = done[1].1.quantization.as_ref().unwrap();
    assert_eq!(q.calibration_windows, 12);
    assert!(q.quantized_activations > 20 && q.quantized_weights > 20, "{q:?}");
    assert_eq!(q.weight_max, 127);

    // Static int8 with the reduced weight range: every int8 weight in [-63, 63], said in model.json,
    // and no saturation in ONNX Runtime on any CPU: the same bound on both back-ends.
    let reduced = tmp.path().join("reduced");
    let again = export(&ExportOptions { model: ck.clone(), out: reduced.clone(), int8: true, weight_int8: false, calib: Some(data.clone()), calib_windows: 12, reduce_range: true }).unwrap();
    let (dir, m) = &again[1];
    let q = m.quantization.as_ref().unwrap();
    assert!(q.weight_max == 63 && q.weights.contains("[-63, 63]"), "{q:?}");
    assert_eq!(sfn_infer::Manifest::read(dir).unwrap().quantization.unwrap().weight_max, 63);
    let (_, enc, dec) = sfn_infer::Manifest::open(dir).unwrap();
    let mut weights = 0;
    let int8 = 3; // TensorProto.DataType INT8
    for init in enc.graph.iter().chain(dec.graph.iter()).flat_map(|g| &g.initializer).filter(|t| t.data_type == int8) {
        assert!(init.raw_data.iter().all(|&b| (b as i8).unsigned_abs() <= 63), "{}", init.name);
        weights += usize::from(init.name.contains(".w_q__"));
    }
    assert_eq!(weights, q.quantized_weights);
    for backend in [BackendKind::Tract, ort()] {
        let (d, rel) = compare(&model, &cfg, dir, &backend, &frames, &text);
        assert!(d.is_finite() && rel < 0.2, "reduced range on {backend:?}: int8 relative RMS error {rel} (max {d})");
    }
    // The runtime's warning: only for the full-range static int8 export, on ONNX Runtime's CPU provider,
    // where the CPU saturates.
    use sfn_infer::int8_saturation_warning as warning;
    let full = &done[1].1;
    assert!(warning(full, &ort(), true).is_some_and(|w| w.contains("--int8-reduce-range")));
    assert!(warning(full, &ort(), false).is_none());
    assert!(warning(full, &BackendKind::Tract, true).is_none());
    assert!(warning(m, &ort(), true).is_none(), "reduced range");
    assert!(warning(&done[0].1, &ort(), true).is_none(), "fp32");
    assert!(warning(&done[2].1, &ort(), true).is_none(), "weight-only int8");
}

/// The appearance cue's graph: exported (in every precision, as fp32) only where the calibration
/// joins the cue; candle, tract and ONNX Runtime give the same box errors for 1, 5 and 20 boxes (20
/// runs tract's symbolic-batch plan); `onnx.checker` accepts it; no boxes, no call; a joined
/// calibration without the cue's files is refused by name.
#[test]
fn appearance_graph_parity_candle_tract_onnxruntime() {
    use sfn_models::scoring::AppearanceJoin;
    use sfn_trainer::appearance::{self, AppearanceOptions};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    synth_data(&data);
    let cfg = SfnConfig::tiny();
    let ck = tmp.path().join("m");
    checkpoint_dir(&ck, &cfg, 5);
    let ds = sfn_trainer::data::Dataset::open(&data, "training", &sfn_trainer::train::frame_format(&cfg)).unwrap();
    let fitted = appearance::fit(&AppearanceOptions { epochs: 1, batch: 64, ..AppearanceOptions::for_model(ck.clone(), data.clone(), 7) }, &ds).unwrap();
    // Not joined: the export has no appearance graph.
    let plain = tmp.path().join("plain");
    export(&ExportOptions { model: ck.clone(), out: plain.clone(), int8: false, weight_int8: false, calib: None, calib_windows: 0, reduce_range: false }).unwrap();
    assert!(!plain.join("appearance.onnx").exists());
    assert!(sfn_infer::Manifest::read(&plain).unwrap().appearance.is_none());
    // Joined.
    let cal_path = ck.join(checkpoint::CALIBRATION);
    let mut cal: CausalCalibration = checkpoint::read_json(&cal_path).unwrap();
    cal.appearance = Some(AppearanceJoin::new(fitted.config.boxes, fitted.z, None, &[0.01, 0.02, 0.015, 0.03]).unwrap());
    checkpoint::write_json(&cal_path, &cal).unwrap();
    let out = tmp.path().join("onnx");
    let done = export(&ExportOptions { model: ck.clone(), out: out.clone(), int8: true, weight_int8: false, calib: Some(data.clone()), calib_windows: 4, reduce_range: false }).unwrap();
    let files: Vec<PathBuf> = done.iter().map(|(dir, m)| dir.join(&m.appearance.as_ref().expect("joined: appearance.onnx listed").file)).collect();
    let check =
        Command::new(venv_python()).args(["-c", "import sys, onnx\nfor p in sys.argv[1:]:\n    onnx.checker.check_model(p, full_check=True)\n    print('ok', p)"]).args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "onnx.checker failed:\n{stdout}\n{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 2, "{stdout}");
    let (net, _) = appearance::load(&ck).unwrap().unwrap();
    let d = net.cfg.input_dim();
    for backend in [BackendKind::Tract, ort()] {
        let mut m = ExportedModel::open(&out, &backend).unwrap();
        assert!(m.has_appearance());
        assert_eq!(m.appearance_errors(&[], 0).unwrap(), Vec::<f32>::new());
        for n in [1usize, 5, 20] {
            let x = Tensor::randn(0f32, 0.5, (n, d), &Device::Cpu).unwrap();
            let want = vec(&net.box_errors(&x).unwrap());
            let got = m.appearance_errors(&vec(&x), n).unwrap();
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs() / b.abs().max(1e-6)).fold(0f32, f32::max);
            assert!(worst <= 1e-4, "{backend:?}, {n} boxes: relative |candle - onnx| {worst:e}");
        }
        let e = m.appearance_errors(&vec![0.0; d + 1], 1).unwrap_err().to_string();
        assert!(e.contains("boxes"), "{e}");
    }
    // A swapped appearance.onnx is refused before it runs, naming the file.
    let mut bytes = std::fs::read(out.join("appearance.onnx")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(out.join("appearance.onnx"), bytes).unwrap();
    let e = ExportedModel::open(&out, &BackendKind::Tract).err().expect("refused").to_string();
    assert!(e.contains("appearance.onnx") && e.contains("sha256"), "{e}");
    // A joined calibration whose cue is missing is refused, naming the file.
    std::fs::remove_file(ck.join(appearance::APPEARANCE)).unwrap();
    let e = export(&ExportOptions { model: ck, out: tmp.path().join("none"), int8: false, weight_int8: false, calib: None, calib_windows: 0, reduce_range: false }).unwrap_err().to_string();
    assert!(e.contains("appearance.json"), "{e}");
}

#[test]
fn bad_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SfnConfig::tiny();
    let ck = tmp.path().join("m");
    checkpoint_dir(&ck, &cfg, 1);
    let out = tmp.path().join("onnx");
    let opts = ExportOptions { model: ck.clone(), out: out.clone(), int8: false, weight_int8: false, calib: None, calib_windows: 0, reduce_range: false };
    export(&opts).unwrap();

    // A file changed behind the manifest's back.
    let dec = out.join("decoder.onnx");
    let orig = std::fs::read(&dec).unwrap();
    let mut bytes = orig.clone();
    bytes.push(0);
    std::fs::write(&dec, &bytes).unwrap();
    let err = ExportedModel::open(&out, &BackendKind::Tract).err().unwrap().to_string();
    assert!(err.contains("decoder.onnx") && err.contains("sha256"), "{err}");
    std::fs::write(&dec, &orig).unwrap();

    // A manifest whose I/O signature disagrees with the graph.
    let mpath = out.join("model.json");
    let text = std::fs::read_to_string(&mpath).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["encoder"]["inputs"][1]["name"] = "previous".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let err = ExportedModel::open(&out, &BackendKind::Tract).err().unwrap().to_string();
    assert!(err.contains("encoder.onnx") && err.contains("inputs") && err.contains("previous"), "{err}");
    std::fs::write(&mpath, &text).unwrap();
    ExportedModel::open(&out, &BackendKind::Tract).unwrap();

    // Wrong input sizes to a loaded model name the input.
    let mut model = ExportedModel::open(&out, &BackendKind::Tract).unwrap();
    let fl = cfg.image.channels * cfg.image.height * cfg.image.width;
    let err = model.encode(&vec![0.0; fl], &vec![0.0; fl - 1], 1).err().unwrap().to_string();
    assert!(err.contains("prev_frame"), "{err}");
    let mut nan = vec![0.0; fl];
    nan[7] = f32::NAN;
    let err = model.encode(&nan, &vec![0.0; fl], 1).err().unwrap().to_string();
    assert!(err.contains("`frame`") && err.contains("value 7"), "{err}");

    // This decoder has no pixel stem: frame t-1 is not needed. One with a stem refuses to run without it.
    let np = cfg.num_patches();
    let (ft, sk, mo) = (vec![0.0; 4 * np * cfg.appearance.dim], vec![0.0; np * cfg.appearance.dim], vec![0.0; 3 * (np + 1) * cfg.motion.dim]);
    model.decode(&ft, &sk, &mo, None, &vec![0.0; fl], None, 1).unwrap();
    let mut stem = cfg.clone();
    stem.decoder.pixel_stem = 2;
    let sck = tmp.path().join("stem");
    checkpoint_dir(&sck, &stem, 1);
    let sout = tmp.path().join("stem-onnx");
    export(&ExportOptions { model: sck, out: sout.clone(), ..opts.clone() }).unwrap();
    let mut sm = ExportedModel::open(&sout, &BackendKind::Tract).unwrap();
    let err = sm.decode(&ft, &sk, &mo, None, &vec![0.0; fl], None, 1).err().unwrap().to_string();
    assert!(err.contains("prev_frame") && err.contains("pixel stem"), "{err}");
    let err = sm.decode(&ft, &sk, &mo, None, &vec![0.0; fl], Some(&vec![0.0; fl - 1]), 1).err().unwrap().to_string();
    assert!(err.contains("prev_frame"), "{err}");
    sm.decode(&ft, &sk, &mo, None, &vec![0.0; fl], Some(&vec![0.0; fl]), 1).unwrap();

    // Weights that do not fit their config.
    let mut other = cfg.clone();
    other.model_dim = 48;
    other.decoder.vit.dim = 48;
    checkpoint::write_json(&ck.join(checkpoint::CONFIG), &other).unwrap();
    let err = export(&ExportOptions { out: tmp.path().join("x"), ..opts.clone() }).err().unwrap().to_string();
    assert!(err.contains("model.safetensors") && err.contains("shape"), "{err}");
    checkpoint::write_json(&ck.join(checkpoint::CONFIG), &cfg).unwrap();

    // An output path that cannot be a directory.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = export(&ExportOptions { out: file.join("sub"), ..opts.clone() }).err().unwrap().to_string();
    assert!(err.contains("a-file"), "{err}");

    // Static int8 without calibration data; the reduced range without static int8.
    let err = export(&ExportOptions { int8: true, ..opts.clone() }).err().unwrap().to_string();
    assert!(err.contains("--calib"), "{err}");
    let err = export(&ExportOptions { reduce_range: true, ..opts }).err().unwrap().to_string();
    assert!(err.contains("--int8-reduce-range") && err.contains("--int8"), "{err}");
}

#[test]
fn trtexec_script_reads_shapes_from_model_json() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SfnConfig::tiny();
    let ck = tmp.path().join("m");
    checkpoint_dir(&ck, &cfg, 2);
    let out = tmp.path().join("onnx");
    export(&ExportOptions { model: ck, out: out.clone(), int8: false, weight_int8: false, calib: None, calib_windows: 0, reduce_range: false }).unwrap();
    let run = Command::new("bash").arg(repo().join("scripts/trt-engines.sh")).args(["--dry-run", "--fp16", "--max-batch", "6"]).arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    let (h, w) = (cfg.image.height, cfg.image.width);
    let np = cfg.num_patches();
    assert!(stdout.contains(&format!("--minShapes=frame:1x1x{h}x{w}\\,prev_frame:1x1x{h}x{w}")), "{stdout}");
    assert!(stdout.contains(&format!("motion:6x3x{}x{}", np + 1, cfg.motion.dim)), "{stdout}");
    assert!(stdout.contains("--fp16") && stdout.contains("decoder.plan"), "{stdout}");
    // A directory without model.json is refused with its name.
    let run = Command::new("bash").arg(repo().join("scripts/trt-engines.sh")).arg(tmp.path()).output().unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("model.json"));
}
