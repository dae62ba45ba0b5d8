//! End-to-end tests of the `sfn-train` binary on small synthetic walkway datasets with the `tiny` preset:
//! train + eval and the report, exact resume, and rejection of bad input (non-zero exit, a message that
//! names the culprit, no panic, nothing half-written).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sfn_models::scoring::roc_auc;
use sfn_trainer::synth::{write_walkway, SynthConfig};

/// What a run of the binary gave.
struct Outcome {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `sfn-train` with `args`.
fn sfn_train<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Outcome {
    sfn_train_env(args, &[])
}

/// Runs `sfn-train` with `args` and the environment variables `envs` set.
fn sfn_train_env<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I, envs: &[(&str, &OsStr)]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_sfn-train")).args(args).envs(envs.iter().copied()).env("RUST_LOG", "warn").output().expect("cannot start sfn-train");
    Outcome { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

/// `sfn-train train --preset tiny --data DATA --out OUT --batch-size 8 --quiet EXTRA...`.
fn train(data: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&OsStr> = ["train", "--preset", "tiny", "--batch-size", "8", "--quiet", "--data"].iter().map(OsStr::new).collect();
    args.extend([data.as_os_str(), OsStr::new("--out"), out.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    sfn_train(args)
}

/// `sfn-train eval --model MODEL --data DATA --report REPORT --batch-size 8`.
fn eval(model: &Path, data: &Path, report: &Path) -> Outcome {
    sfn_train([
        OsStr::new("eval"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--report"),
        report.as_os_str(),
        OsStr::new("--batch-size"),
        OsStr::new("8"),
    ])
}

fn expect_ok(what: &str, o: &Outcome) {
    assert!(o.ok, "{what} failed\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
}

/// Expects failure without a panic, with every needle in stderr.
fn expect_err(what: &str, o: &Outcome, needles: &[&str]) {
    assert!(!o.ok, "{what}: expected failure\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("panicked"), "{what}: panic\n{}", o.stderr);
    for n in needles {
        assert!(o.stderr.contains(n), "{what}: stderr does not mention {n:?}\n{}", o.stderr);
    }
}

/// A small walkway dataset: `train` and `test` clips of `frames` frames.
fn synth(root: &Path, train: usize, test: usize, frames: usize) -> PathBuf {
    let cfg = SynthConfig { train_clips: train, test_clips: test, frames_per_clip: frames, ..SynthConfig::default() };
    write_walkway(root, &cfg).unwrap();
    root.to_path_buf()
}

/// Every file under `dir`: relative path -> bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &Value) {
    fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// Copies the files of a model dir.
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

/// `export --model MODEL --out OUT --int8 --calib DATA --calib-windows 8 --weight-int8`: all three precisions.
fn export_all(model: &Path, out: &Path, data: &Path) -> Outcome {
    sfn_train([
        OsStr::new("export"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
        OsStr::new("--int8"),
        OsStr::new("--calib"),
        data.as_os_str(),
        OsStr::new("--calib-windows"),
        OsStr::new("8"),
        OsStr::new("--weight-int8"),
    ])
}

/// `eval-onnx` of the export in `dir` on `backend` (ONNX Runtime from the repo's `.venv`), its report
/// written to `report`; with `candle`, its offline and causal micro AUC must be that eval report's.
fn eval_onnx_as_candle(dir: &Path, data: &Path, backend: &str, candle: Option<&Value>, report: &Path) {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(".venv");
    let lib = sfn_trainer::export::onnxruntime_library(&venv).expect("libonnxruntime: run scripts/setup.sh");
    let args = [
        OsStr::new("eval-onnx"),
        OsStr::new("--model"),
        dir.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--backend"),
        OsStr::new(backend),
        OsStr::new("--report"),
        report.as_os_str(),
    ];
    let o = sfn_train_env(args, &[("ORT_DYLIB_PATH", lib.as_os_str())]);
    expect_ok(&format!("eval-onnx on {backend} of {}", dir.display()), &o);
    if let Some(candle) = candle {
        let got = read_json(report);
        for (a, b) in [(&got["offline"]["micro_auc"], &candle["micro_auc"]), (&got["causal"]["micro_auc"], &candle["causal"]["micro_auc"])] {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() < 1e-6, "{backend} {}: AUC {a} vs candle {b}", dir.display());
        }
    }
}

/// Checks one score set (`report` top level or `report.causal`) against the labels file.
fn check_score_set(what: &str, set: &Value, labels: &Value, frames: usize) {
    let per_clip = set["per_clip"].as_object().unwrap_or_else(|| panic!("{what}: no per_clip"));
    assert_eq!(per_clip.len(), labels.as_object().unwrap().len(), "{what}");
    let (mut all_s, mut all_l) = (Vec::new(), Vec::new());
    let mut aucs = Vec::new();
    for (clip, c) in per_clip {
        let scores: Vec<f32> = c["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let l: Vec<u8> = c["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
        assert_eq!(scores.len(), frames - 4, "{what} clip {clip}");
        assert_eq!(l.len(), frames - 4, "{what} clip {clip}");
        let want: Vec<u8> = labels[clip].as_array().unwrap()[4..].iter().map(|v| v.as_u64().unwrap() as u8).collect();
        assert_eq!(l, want, "{what} clip {clip}: labels are those of frames 4..");
        // Synthetic test clips hold both classes, so every clip has an AUC.
        let auc = c["auc"].as_f64().unwrap_or_else(|| panic!("{what} clip {clip}: no auc"));
        assert!((0.0..=1.0).contains(&auc));
        assert_eq!(Some(auc), roc_auc(&scores, &l), "{what} clip {clip}");
        aucs.push(auc);
        all_s.extend(scores);
        all_l.extend(l);
    }
    // JSON round trip of f32 scores and f64 AUCs: equal up to the last bit of an f64.
    let micro = set["micro_auc"].as_f64().unwrap_or_else(|| panic!("{what}: no micro_auc"));
    let recomputed = roc_auc(&all_s, &all_l).unwrap();
    assert!((micro - recomputed).abs() < 1e-12, "{what}: micro {micro} vs recomputed {recomputed}");
    let mean = aucs.iter().sum::<f64>() / aucs.len() as f64;
    let macro_auc = set["macro_auc"].as_f64().unwrap_or_else(|| panic!("{what}: no macro_auc"));
    assert!((macro_auc - mean).abs() < 1e-12, "{what}: macro {macro_auc} vs mean {mean}");
}

#[test]
fn train_then_eval_writes_a_consistent_report() {
    let tmp = tempfile::tempdir().unwrap();
    let frames = 14;
    let data = synth(&tmp.path().join("data"), 2, 2, frames);
    let model = tmp.path().join("model");
    let o = train(&data, &model, &["--epochs", "2"]);
    expect_ok("train", &o);
    assert!(o.stdout.contains("trained 2 epochs"), "{}", o.stdout);
    for f in ["config.json", "model.safetensors", "optimizer.safetensors", "train.json", "train_state.json", "calibration.json"] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    let state = read_json(&model.join("train_state.json"));
    assert_eq!(state["finished"], true);
    // 2 clips x 10 windows, batch 8: 3 steps an epoch.
    assert_eq!(state["step"], 6);
    assert_eq!(state["samples"], 40);

    let report = tmp.path().join("out/report.json");
    let o = eval(&model, &data, &report);
    expect_ok("eval", &o);
    assert!(o.stdout.contains("micro"), "{}", o.stdout);
    let r = read_json(&report);
    let labels = read_json(&data.join("testing/labels.json"));
    assert_eq!(r["frames_scored"], 2 * (frames - 4));
    check_score_set("offline", &r, &labels, frames);
    check_score_set("causal", &r["causal"], &labels, frames);
    let plots = tmp.path().join("out/report_plots");
    for f in ["roc.png", "clip_01.png", "clip_02.png"] {
        let p = plots.join(f);
        let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(img.width() > 100 && img.height() > 100, "{}", p.display());
    }
}

#[test]
fn resume_is_bit_identical_to_a_straight_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(&tmp.path().join("data"), 2, 1, 12);
    let straight = tmp.path().join("straight");
    let split = tmp.path().join("split");
    let plain = tmp.path().join("plain");
    // Weight averages are kept (and must resume exactly too) in the straight and split runs.
    expect_ok("2 epochs", &train(&data, &straight, &["--epochs", "2", "--ema-decays", "0.9,0.5"]));
    expect_ok("1 epoch", &train(&data, &split, &["--epochs", "1", "--ema-decays", "0.9,0.5"]));
    expect_ok("2 epochs, no averages", &train(&data, &plain, &["--epochs", "2"]));
    let after_one = fs::read(split.join("model.safetensors")).unwrap();
    assert_eq!(read_json(&split.join("train.json"))["epochs"], 1);
    // --epochs is honoured on resume; other settings come from the dir.
    expect_ok("resume to 2", &train(&data, &split, &["--resume", "--epochs", "2"]));
    let tj = read_json(&split.join("train.json"));
    assert_eq!(tj, read_json(&straight.join("train.json")), "train.json after resume");
    let resumed = fs::read(split.join("model.safetensors")).unwrap();
    assert_ne!(resumed, after_one, "the resumed run trained nothing");
    assert!(resumed == fs::read(straight.join("model.safetensors")).unwrap(), "model.safetensors: resumed run differs from the straight run");
    for f in ["optimizer.safetensors", "calibration.json", "ema-0.9.safetensors", "ema-0.5.safetensors"] {
        assert!(fs::read(split.join(f)).unwrap() == fs::read(straight.join(f)).unwrap(), "{f} differs");
    }
    // The averages only read the weights: the trained model is the same without them, and they differ from it.
    assert!(fs::read(plain.join("model.safetensors")).unwrap() == resumed, "keeping weight averages changed the trained model");
    assert!(!plain.join("ema-0.9.safetensors").exists());
    assert!(fs::read(straight.join("ema-0.9.safetensors")).unwrap() != resumed);
    let (a, b) = (read_json(&split.join("train_state.json")), read_json(&straight.join("train_state.json")));
    for k in ["epoch", "step", "samples", "finished"] {
        assert_eq!(a[k], b[k], "train_state.json {k}");
    }
    assert_eq!(a["epochs"].as_array().unwrap().len(), 2);

    // Going back below the epochs already trained is refused, and changes nothing.
    let before = snapshot(&split);
    let o = train(&data, &split, &["--resume", "--epochs", "1"]);
    expect_err("resume to fewer epochs", &o, &["--epochs 1", "already trained 2", &split.display().to_string()]);
    assert!(snapshot(&split) == before, "a refused resume modified the model dir");
    // Other flags are ignored on resume, with a warning; a finished run has nothing left to train.
    let o = train(&data, &split, &["--resume", "--lr", "0.5"]);
    expect_ok("resume with --lr", &o);
    assert!(o.stderr.contains("ignored"), "{}", o.stderr);
    assert!(fs::read(split.join("model.safetensors")).unwrap() == resumed);
    assert_eq!(read_json(&split.join("train.json")), tj);
}

#[test]
fn train_rejects_bad_data() {
    let tmp = tempfile::tempdir().unwrap();
    let case = |name: &str| -> (PathBuf, PathBuf) {
        let data = synth(&tmp.path().join(name), 2, 1, 12);
        (data, tmp.path().join(format!("{name}-model")))
    };
    let no_model = |what: &str, out: &Path| assert!(!out.exists(), "{what}: {} was created", out.display());

    // Missing data folder.
    let missing = tmp.path().join("no-such-data");
    let out = tmp.path().join("missing-model");
    expect_err("missing data", &train(&missing, &out, &["--epochs", "1"]), &["no-such-data", "does not exist"]);
    no_model("missing data", &out);

    // A clip with fewer than 5 frames.
    let (data, out) = case("short");
    for t in 4..12 {
        fs::remove_file(data.join(format!("training/frames/02/{t:03}.png"))).unwrap();
    }
    expect_err("short clip", &train(&data, &out, &["--epochs", "1"]), &["clip 02", "4 frames", "training/frames/02"]);
    no_model("short clip", &out);

    // Frames of mixed sizes within a clip.
    let (data, out) = case("mixed");
    image::GrayImage::new(50, 30).save(data.join("training/frames/02/007.png")).unwrap();
    expect_err("mixed sizes", &train(&data, &out, &["--epochs", "1"]), &["clip 02", "007.png", "50x30", "72x48"]);
    no_model("mixed sizes", &out);

    // Garbage named .png.
    let (data, out) = case("garbage");
    fs::write(data.join("training/frames/01/003.png"), b"this is not a PNG").unwrap();
    expect_err("corrupt png", &train(&data, &out, &["--epochs", "1"]), &["cannot decode", "training/frames/01/003.png"]);
    no_model("corrupt png", &out);

    // A clip of JPEGs, one cut short.
    let (data, out) = case("jpeg");
    let dir = data.join("training/frames/03");
    fs::create_dir_all(&dir).unwrap();
    for t in 0..6u32 {
        let img = image::GrayImage::from_fn(72, 48, |x, y| image::Luma([((x * 3 + y * 5 + t * 7) % 256) as u8]));
        img.save(dir.join(format!("{t:03}.jpg"))).unwrap();
    }
    let cut = dir.join("002.jpg");
    let bytes = fs::read(&cut).unwrap();
    fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    expect_err("truncated jpg", &train(&data, &out, &["--epochs", "1"]), &["cannot decode", "training/frames/03/002.jpg", "truncated"]);
    no_model("truncated jpg", &out);
}

#[test]
fn train_rejects_bad_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(&tmp.path().join("data"), 1, 1, 10);

    // Unknown preset: the message lists the known ones.
    let out = tmp.path().join("preset-model");
    let mut args: Vec<&OsStr> = ["train", "--preset", "huge", "--quiet", "--data"].iter().map(OsStr::new).collect();
    args.extend([data.as_os_str(), OsStr::new("--out"), out.as_os_str()]);
    expect_err("unknown preset", &sfn_train(args), &["huge", "paper", "cpu-ped2", "tiny"]);
    assert!(!out.exists());

    // Zero epochs would leave a model dir without weights.
    let out = tmp.path().join("zero-model");
    expect_err("zero epochs", &train(&data, &out, &["--epochs", "0"]), &["epochs must be >= 1"]);
    assert!(!out.exists());

    // A weight-average decay outside (0, 1) is refused before anything is written.
    let out = tmp.path().join("bad-ema");
    expect_err("ema decay 1.5", &train(&data, &out, &["--epochs", "1", "--ema-decays", "0.9,1.5"]), &["ema_decays", "1.5", "(0, 1)"]);
    assert!(!out.exists());

    // --out already holds a checkpoint, no --resume: refused, checkpoint untouched.
    let out = tmp.path().join("model");
    expect_ok("train", &train(&data, &out, &["--epochs", "1"]));
    let before = snapshot(&out);
    let o = train(&data, &out, &["--epochs", "1"]);
    expect_err("existing checkpoint", &o, &["already holds a checkpoint", "--resume", &out.display().to_string()]);
    assert!(snapshot(&out) == before, "the existing checkpoint was modified");

    // --resume on an empty dir: refused, nothing written.
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    expect_err("resume empty", &train(&data, &empty, &["--resume"]), &["--resume", "holds no checkpoint", "train_state.json"]);
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn eval_rejects_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(&tmp.path().join("data"), 1, 2, 12);
    let model = tmp.path().join("model");
    expect_ok("train", &train(&data, &model, &["--epochs", "1"]));
    let reports = tmp.path().join("reports");
    // Runs eval, expects failure naming `needles`, and checks that no report or plot was written.
    let fails = |what: &str, model: &Path, data: &Path, needles: &[&str]| {
        let report = reports.join(format!("{what}.json"));
        expect_err(what, &eval(model, data, &report), needles);
        assert!(!report.exists(), "{what}: report written");
        assert!(!reports.join(format!("{what}_plots")).exists(), "{what}: plots written");
    };

    // Labels whose length differs from the frame count.
    let bad_labels = synth(&tmp.path().join("bad-labels"), 1, 2, 12);
    let path = bad_labels.join("testing/labels.json");
    let mut labels = read_json(&path);
    labels["02"].as_array_mut().unwrap().pop();
    write_json(&path, &labels);
    fails("labels", &model, &bad_labels, &["clip 02", "11 labels", "12 frames"]);

    // A config that no longer fits the weights (a valid config of another width).
    let wide = tmp.path().join("wide");
    copy_dir(&model, &wide);
    let mut cfg = read_json(&wide.join("config.json"));
    cfg["model_dim"] = 48.into();
    cfg["decoder"]["vit"]["dim"] = 48.into();
    write_json(&wide.join("config.json"), &cfg);
    fails("config-weights", &wide, &data, &[&wide.join("model.safetensors").display().to_string(), "shape"]);

    // An invalid config: named as such.
    let invalid = tmp.path().join("invalid");
    copy_dir(&model, &invalid);
    let mut cfg = read_json(&invalid.join("config.json"));
    cfg["model_dim"] = 48.into();
    write_json(&invalid.join("config.json"), &cfg);
    fails("invalid-config", &invalid, &data, &[&invalid.join("config.json").display().to_string(), "model_dim"]);

    // No calibration.json.
    let uncal = tmp.path().join("uncalibrated");
    copy_dir(&model, &uncal);
    fs::remove_file(uncal.join("calibration.json")).unwrap();
    fails("calibration", &uncal, &data, &[&uncal.join("calibration.json").display().to_string()]);
    // `calibrate` fits it from the training settings (a checkpoint taken mid-training has none), and
    // the model then evaluates.
    let o = sfn_train([OsStr::new("calibrate"), OsStr::new("--model"), uncal.as_os_str(), OsStr::new("--data"), data.as_os_str()]);
    expect_ok("calibrate without calibration.json", &o);
    let pooling = read_json(&uncal.join("train.json"))["error_pooling"].clone();
    assert_eq!(read_json(&uncal.join("calibration.json"))["pooling"], pooling);
    expect_ok("eval after calibrate", &eval(&uncal, &data, &reports.join("recalibrated.json")));

    // Missing test data.
    fails("no-data", &model, &tmp.path().join("nowhere"), &["nowhere", "does not exist"]);

    // The intact model still evaluates.
    expect_ok("eval", &eval(&model, &data, &reports.join("good.json")));
}

/// `sfn-train export` + `eval-onnx`: the exported model scores the test split exactly as candle does
/// (same micro AUC on tract and ONNX Runtime, fp32); int8 exports run; bad usage is refused.
#[test]
fn export_then_eval_onnx_matches_candle_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(&tmp.path().join("data"), 2, 2, 24);
    let model = tmp.path().join("model");
    expect_ok("train", &train(&data, &model, &["--epochs", "1"]));
    // Region-normalised pooling, re-calibrated on the training clips: candle, tract and ONNX
    // Runtime must agree with it too (the statistics travel in model.json).
    // With the speed cue folded in, so that its statistics and the frame pairs it reads agree too.
    let o = sfn_train([
        OsStr::new("calibrate"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--pooling"),
        OsStr::new("window_max_z_8s4"),
        OsStr::new("--speed"),
        OsStr::new("speed_r2_b6_8s4_z2"),
    ]);
    expect_ok("calibrate", &o);
    assert!(o.stdout.contains("window_max_z_8s4") && o.stdout.contains("77 regions") && o.stdout.contains("speed_r2_b6_8s4_z2"), "{}", o.stdout);
    let cal = read_json(&model.join("calibration.json"));
    assert_eq!((cal["pooling"]["kind"].as_str(), cal["regions"]["grid"].clone()), (Some("window_max_z"), serde_json::json!([7, 11])));
    assert_eq!((cal["speed"]["cue"]["radius"].as_u64(), cal["speed"]["regions"]["grid"].clone()), (Some(2), serde_json::json!([7, 11])));
    let o = sfn_train([OsStr::new("calibrate"), OsStr::new("--model"), model.as_os_str(), OsStr::new("--data"), data.as_os_str(), OsStr::new("--speed"), OsStr::new("speed_r9_b6_8s4_z2")]);
    expect_err("bad speed cue", &o, &["speed_r9_b6_8s4_z2", "speed.radius"]);
    let o = sfn_train([OsStr::new("calibrate"), OsStr::new("--model"), model.as_os_str(), OsStr::new("--data"), data.as_os_str(), OsStr::new("--pooling"), OsStr::new("window_z")]);
    expect_err("bad pooling", &o, &["window_z", "window_max_z_16s8"]);
    let report = tmp.path().join("report.json");
    expect_ok("eval", &eval(&model, &data, &report));
    let candle = read_json(&report);
    assert!(candle["pooling_comparison"]["window_max_8s4"].is_object(), "{}", candle["pooling_comparison"]);
    for row in ["window_max_z_8s4 + speed_r2_b6_8s4_z2", "window_max_z_8s4 alone", "speed_r2_b6_8s4_z2 alone"] {
        assert!(candle["pooling_comparison"][row].is_object(), "{row}: {}", candle["pooling_comparison"]);
    }
    // --clips scores a named subset only; an unknown clip is named in the error.
    let first = candle["per_clip"].as_object().unwrap().keys().next().unwrap().clone();
    let sub = tmp.path().join("subset.json");
    let o = sfn_train([
        OsStr::new("eval"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--report"),
        sub.as_os_str(),
        OsStr::new("--clips"),
        OsStr::new(&first),
    ]);
    expect_ok("eval --clips", &o);
    let keys: Vec<String> = read_json(&sub)["per_clip"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, vec![first.clone()]);
    let o = sfn_train([
        OsStr::new("eval"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--report"),
        sub.as_os_str(),
        OsStr::new("--clips"),
        OsStr::new("zz"),
    ]);
    expect_err("eval --clips unknown", &o, &["--clips", "\"zz\""]);
    let maps = std::fs::read_dir(tmp.path().join("report_plots")).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with("_error_map.png")).count();
    assert_eq!(maps, 2, "one error map per test clip");
    let out = tmp.path().join("onnx");
    let o = export_all(&model, &out, &data);
    expect_ok("export", &o);
    assert!(o.stdout.contains("fp32") && o.stdout.contains("int8_qdq") && o.stdout.contains("int8_weight_only"), "{}", o.stdout);
    for backend in ["tract", "onnxruntime"] {
        eval_onnx_as_candle(&out, &data, backend, Some(&candle), &tmp.path().join(format!("{backend}.json")));
    }
    for sub in ["int8", "int8-weights"] {
        let o = sfn_train([OsStr::new("eval-onnx"), OsStr::new("--model"), out.join(sub).as_os_str(), OsStr::new("--data"), data.as_os_str()]);
        expect_ok(sub, &o);
        assert!(o.stdout.contains("offline micro"), "{}", o.stdout);
    }
    // Speed statistics that do not fit the model's frames are refused by eval, naming calibration.json.
    let cal_path = model.join("calibration.json");
    let mut cal = read_json(&cal_path);
    cal["speed"]["regions"]["grid"] = serde_json::json!([2, 2]);
    std::fs::write(&cal_path, serde_json::to_string(&cal).unwrap()).unwrap();
    expect_err("eval with misfit speed statistics", &eval(&model, &data, &report), &["calibration.json", "speed", "32x48"]);
    // --int8 without --calib, --int8-reduce-range without --int8 are usage errors; a missing export
    // dir names model.json.
    let o = sfn_train([OsStr::new("export"), OsStr::new("--model"), model.as_os_str(), OsStr::new("--out"), out.as_os_str(), OsStr::new("--int8")]);
    expect_err("int8 without calib", &o, &["--calib"]);
    let o = sfn_train([OsStr::new("export"), OsStr::new("--model"), model.as_os_str(), OsStr::new("--out"), out.as_os_str(), OsStr::new("--int8-reduce-range")]);
    expect_err("reduced range without int8", &o, &["--int8-reduce-range", "--int8"]);
    let o = sfn_train([OsStr::new("eval-onnx"), OsStr::new("--model"), tmp.path().join("nope").as_os_str(), OsStr::new("--data"), data.as_os_str()]);
    expect_err("missing export", &o, &["model.json"]);
}

/// The semantic branch end to end: `captions` (the motion describer, real MiniLM embeddings) ->
/// `train --captions` (text loss logged) -> `eval` (semantic figures, combined scores) -> export with the
/// text spec in model.json -> `eval-onnx --captions` equal to candle's AUC.
#[test]
fn captions_train_eval_export_with_the_semantic_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(&tmp.path().join("data"), 2, 2, 20);
    let cache = tmp.path().join("captions.json");
    let o = sfn_train([
        OsStr::new("captions"),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--provider"),
        OsStr::new("motion"),
        OsStr::new("--frame-size"),
        OsStr::new("48x72"),
        OsStr::new("--out"),
        cache.as_os_str(),
        OsStr::new("--quiet"),
    ]);
    expect_ok("captions", &o);
    assert!(o.stdout.contains("clips captioned by motion-describer"), "{}", o.stdout);
    let c = read_json(&cache);
    assert_eq!(c["dim"], 384);
    // 2 + 2 clips of 20 frames: frames 3..20 of each are captioned.
    let n: usize = c["splits"].as_object().unwrap().values().flat_map(|s| s.as_object().unwrap().values()).map(|v| v.as_array().unwrap().iter().filter(|i| !i.is_null()).count()).sum();
    assert_eq!(n, 4 * 17);
    let model = tmp.path().join("model");
    let o = train(&data, &model, &["--epochs", "1", "--captions", cache.to_str().unwrap()]);
    expect_ok("train with captions", &o);
    let state = read_json(&model.join("train_state.json"));
    let text_loss = state["epochs"][0]["text"].as_f64().unwrap();
    assert!(text_loss > 0.0 && text_loss < 2.0, "text loss {text_loss}");
    let cal = read_json(&model.join("calibration.json"));
    assert!(cal["semantic_weight"].as_f64().unwrap() > 0.0 && cal["semantic_std"].as_f64().unwrap() > 0.0, "{cal}");
    let report = tmp.path().join("report.json");
    let o = eval(&model, &data, &report);
    expect_ok("eval", &o);
    assert!(o.stdout.contains("semantic only"), "{}", o.stdout);
    let r = read_json(&report);
    assert!(r["semantic"]["semantic_only"]["offline_micro_auc"].as_f64().is_some(), "{}", r["semantic"]);
    assert_eq!(r["semantic"]["semantic_error"].as_object().unwrap().len(), 2);
    let out = tmp.path().join("onnx");
    expect_ok("export", &sfn_train([OsStr::new("export"), OsStr::new("--model"), model.as_os_str(), OsStr::new("--out"), out.as_os_str()]));
    let m = read_json(&out.join("model.json"));
    assert_eq!(m["text"]["encoder"], "all-MiniLM-L6-v2");
    // Without the cache, scoring an export trained with captions is refused; with it, candle's AUC.
    let o = sfn_train([OsStr::new("eval-onnx"), OsStr::new("--model"), out.as_os_str(), OsStr::new("--data"), data.as_os_str()]);
    expect_err("eval-onnx without captions", &o, &["--captions", "model.json"]);
    let rj = tmp.path().join("onnx.json");
    let o = sfn_train([
        OsStr::new("eval-onnx"),
        OsStr::new("--model"),
        out.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--captions"),
        cache.as_os_str(),
        OsStr::new("--report"),
        rj.as_os_str(),
    ]);
    expect_ok("eval-onnx with captions", &o);
    let (a, b) = (read_json(&rj)["offline"]["micro_auc"].as_f64().unwrap(), r["micro_auc"].as_f64().unwrap());
    assert!((a - b).abs() < 1e-6, "onnx {a} vs candle {b}");
}

/// Captions that miss frames: the clip's first frames get no caption (nothing to fall back on) and
/// training refuses with the clip and frame named; a provider error mid-clip falls back, counted.
#[test]
fn captions_from_a_jsonl_with_holes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(&tmp.path().join("data"), 1, 1, 12);
    let jsonl = tmp.path().join("caps.jsonl");
    // Clip 01 (the name of both the training and the test clip): frames 4..12 except 7.
    let lines: String = (4..12).filter(|f| *f != 7).map(|f| format!("{{\"clip\": \"01\", \"frame\": {f}, \"caption\": \"people walk, frame {f}\"}}\n")).collect();
    fs::write(&jsonl, &lines).unwrap();
    let cache = tmp.path().join("c.json");
    let captions_from_jsonl = || {
        sfn_train([
            OsStr::new("captions"),
            OsStr::new("--data"),
            data.as_os_str(),
            OsStr::new("--provider"),
            OsStr::new("jsonl"),
            OsStr::new("--jsonl"),
            jsonl.as_os_str(),
            OsStr::new("--out"),
            cache.as_os_str(),
            OsStr::new("--quiet"),
        ])
    };
    let o = captions_from_jsonl();
    expect_ok("captions", &o);
    // In each split, frame 3 failed with nothing before it in its clip and frame 7 fell back to frame 6's caption.
    assert!(o.stdout.contains("2 fallbacks, 2 failures"), "{}", o.stdout);
    let c = read_json(&cache);
    let train_idx = c["splits"]["training"].as_object().unwrap().values().next().unwrap().as_array().unwrap().clone();
    assert!(train_idx[3].is_null() && !train_idx[4].is_null());
    assert_eq!(train_idx[7], train_idx[6]);
    let o = train(&data, &tmp.path().join("m"), &["--epochs", "1", "--captions", cache.to_str().unwrap()]);
    expect_err("train with a caption hole", &o, &["c.json", "frame 3", "no caption"]);
    // A malformed line is named with its line number.
    fs::write(&jsonl, "{\"clip\": \"000\", \"frame\": 3, \"caption\": \"ok\"}\nnot json\n").unwrap();
    let o = captions_from_jsonl();
    expect_err("malformed jsonl", &o, &["caps.jsonl:2"]);
    // An unreachable VLM endpoint: every clip fails, nothing to fall back on; the run still finishes
    // and says so (the cache records no captions), and training on it names the hole.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = sfn_train([
        OsStr::new("captions"),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--provider"),
        OsStr::new("openai"),
        OsStr::new("--endpoint"),
        OsStr::new(&format!("http://127.0.0.1:{port}/v1")),
        OsStr::new("--retries"),
        OsStr::new("0"),
        OsStr::new("--timeout"),
        OsStr::new("1"),
        OsStr::new("--out"),
        cache.as_os_str(),
        OsStr::new("--quiet"),
    ]);
    expect_ok("captions from an unreachable endpoint", &o);
    assert!(o.stdout.contains("0 clips captioned") && o.stdout.contains("18 failures"), "{}", o.stdout);
    assert!(o.stderr.contains("unreachable"), "{}", o.stderr);
}

#[test]
fn eval_folds_scores_each_fold_with_baselines_and_the_held_out_clips() {
    let tmp = tempfile::tempdir().unwrap();
    let frames = 16;
    let data = synth(&tmp.path().join("data"), 3, 4, frames);
    // Known labels: every clip normal for its first 10 frames, abnormal after.
    let labels: serde_json::Map<String, Value> = ["01", "02", "03", "04"].iter().map(|c| (c.to_string(), serde_json::json!([[0; 10].as_slice(), [1; 6].as_slice()].concat()))).collect();
    write_json(&data.join("testing/labels.json"), &Value::Object(labels));
    let model = tmp.path().join("model");
    expect_ok("train", &train(&data, &model, &["--epochs", "1", "--holdout", "03"]));
    assert_eq!(read_json(&model.join("train.json"))["holdout"], serde_json::json!(["03"]));
    // Speed cue and region statistics, so that every candidate is there.
    let o = sfn_train([
        OsStr::new("calibrate"),
        OsStr::new("--model"),
        model.as_os_str(),
        OsStr::new("--data"),
        data.as_os_str(),
        OsStr::new("--pooling"),
        OsStr::new("window_max_z_8s4"),
        OsStr::new("--speed"),
        OsStr::new("speed_r2_b6_8s4_z2"),
    ]);
    expect_ok("calibrate", &o);
    // Training fitted the appearance cue beside the network; `sfn-train appearance` fits it again
    // (bad settings refused, leaving the one there untouched).
    let fitted = fs::read(model.join("appearance.json")).expect("train writes appearance.json");
    let appearance = |extra: &[&str]| {
        let mut args = vec![OsStr::new("appearance"), OsStr::new("--model"), model.as_os_str(), OsStr::new("--data"), data.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        sfn_train(args)
    };
    expect_err("appearance without epochs", &appearance(&["--epochs", "0"]), &["--epochs 0"]);
    assert_eq!(fs::read(model.join("appearance.json")).unwrap(), fitted);
    let o = appearance(&["--epochs", "2"]);
    expect_ok("appearance", &o);
    assert!(o.stdout.contains("boxes of 2 clips"), "{}", o.stdout);
    let a = read_json(&model.join("appearance.json"));
    assert_eq!(a["training"]["clips"], serde_json::json!(["01", "02"]), "the held-out clip is not trained on");
    assert!(a["z"]["std"].as_f64().unwrap() > 0.0, "{a}");
    let report = tmp.path().join("folds.json");
    let run = |spec: &str| {
        sfn_train([
            OsStr::new("eval"),
            OsStr::new("--model"),
            model.as_os_str(),
            OsStr::new("--data"),
            data.as_os_str(),
            OsStr::new("--report"),
            report.as_os_str(),
            OsStr::new("--folds"),
            OsStr::new(spec),
        ])
    };
    let o = run("01,02/03,04");
    expect_ok("eval --folds", &o);
    assert!(o.stdout.contains("chosen on A") && o.stdout.contains("cross-validated"), "{}", o.stdout);
    let r = read_json(&report);
    assert_eq!(r["frames_scored"], 4 * (frames - 4));
    let f = &r["folds"];
    let rows: Vec<&str> = f["rows"].as_array().unwrap().iter().map(|r| r["candidate"].as_str().unwrap()).collect();
    for want in [
        "model: window_max_z_8s4 + speed_r2_b6_8s4_z2",
        "network alone: window_max_z_8s4",
        "speed cue alone",
        "copy: window_max_z_8s4",
        "copy: window_max_z_8s4 + speed_r2_b6_8s4_z2",
        "appearance alone",
        "model + appearance: window_max_z_8s4 + speed_r2_b6_8s4_z2 + appearance",
        "network + appearance: window_max_z_8s4 + appearance",
    ] {
        assert!(rows.contains(&want), "{want} missing from {rows:?}");
    }
    for row in f["rows"].as_array().unwrap() {
        for fold in ["A", "B"] {
            let a = row["per_fold"][fold]["offline_micro_auc"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&a), "{row}");
        }
    }
    let sel = f["selections"].as_array().unwrap();
    assert_eq!((sel[0]["chosen_on"].as_str(), sel[0]["reported_on"].as_str()), (Some("A"), Some("B")));
    assert_eq!((sel[1]["chosen_on"].as_str(), sel[1]["reported_on"].as_str()), (Some("B"), Some("A")));
    // The held-out clip is scored as normal footage: prediction against copying, alarms.
    let h = &f["heldout_normal"];
    assert_eq!(h["clips"], serde_json::json!(["03"]));
    assert_eq!(h["frames"], frames - 4);
    assert!(h["copy_moving_mse"].as_f64().unwrap() > 0.0 && h["moving_ratio"].as_f64().unwrap() > 0.0, "{h}");
    assert!(h["alarms"].as_u64().is_some(), "{h}");
    // The copying baseline is in every report's comparison table, not only with --folds.
    assert!(r["pooling_comparison"]["copy: window_max_z_8s4"].is_object(), "{}", r["pooling_comparison"]);
    assert!(r["pooling_comparison"]["appearance alone"].is_object(), "{}", r["pooling_comparison"]);

    // The appearance cue joined to the model's scoring (what the camera then runs): eval scores the
    // joined error as the model's and the error without it as a candidate; `off` drops it again.
    let calibrate = |value: &str| sfn_train([OsStr::new("calibrate"), OsStr::new("--model"), model.as_os_str(), OsStr::new("--data"), data.as_os_str(), OsStr::new("--appearance"), OsStr::new(value)]);
    expect_err("--appearance maybe", &calibrate("maybe"), &["--appearance", "maybe", "on or off"]);
    let o = calibrate("on");
    expect_ok("calibrate --appearance on", &o);
    assert!(o.stdout.contains("speed_r2_b6_8s4_z2 + appearance"), "{}", o.stdout);
    assert_eq!(read_json(&model.join("calibration.json"))["appearance"]["cues"], serde_json::json!(3.0), "a z-mean of 1 + lambda 2 cues");
    expect_ok("eval --folds, joined", &run("01,02/03,04"));
    let r = read_json(&report);
    let rows: Vec<&str> = r["folds"]["rows"].as_array().unwrap().iter().map(|r| r["candidate"].as_str().unwrap()).collect();
    assert_eq!(rows[0], "model: window_max_z_8s4 + speed_r2_b6_8s4_z2 + appearance", "{rows:?}");
    assert!(rows.contains(&"model without appearance: window_max_z_8s4 + speed_r2_b6_8s4_z2"), "{rows:?}");
    assert!(r["pooling_comparison"]["window_max_z_8s4 + speed_r2_b6_8s4_z2 + appearance"].is_object(), "{}", r["pooling_comparison"]);
    expect_ok("calibrate --appearance off", &calibrate("off"));
    assert!(read_json(&model.join("calibration.json")).get("appearance").is_none());
    let (a, hidden) = (model.join("appearance.json"), tmp.path().join("appearance.json"));
    fs::rename(&a, &hidden).unwrap();
    expect_err("--appearance on without the cue", &calibrate("on"), &["--appearance on", "appearance.json", "sfn-train appearance"]);
    fs::rename(&hidden, &a).unwrap();

    // Bad input names the clip or the fold, and writes no report.
    std::fs::remove_file(&report).unwrap();
    let good = read_json(&model.join("appearance.json"));
    let mut bad = good.clone();
    bad["z"]["std"] = serde_json::json!(0.0);
    write_json(&model.join("appearance.json"), &bad);
    expect_err("appearance z without spread", &run("01,02/03,04"), &["appearance.json", "z"]);
    write_json(&model.join("appearance.json"), &good);
    expect_err("unknown clip", &run("01,02/03,zz"), &["--folds", "zz"]);
    let labels: serde_json::Map<String, Value> =
        ["01", "02", "03", "04"].iter().map(|c| (c.to_string(), serde_json::json!(if *c == "01" { vec![0; 16] } else { [[0; 10].as_slice(), [1; 6].as_slice()].concat() }))).collect();
    write_json(&data.join("testing/labels.json"), &Value::Object(labels));
    expect_err("fold without abnormal frames", &run("01/02,03,04"), &["fold A (01) has no abnormal scored frame"]);
    expect_err("malformed", &run("01,02"), &["--folds", "A_CLIPS/B_CLIPS"]);
    expect_err(
        "--clips and --folds",
        &sfn_train([
            OsStr::new("eval"),
            OsStr::new("--model"),
            model.as_os_str(),
            OsStr::new("--data"),
            data.as_os_str(),
            OsStr::new("--report"),
            report.as_os_str(),
            OsStr::new("--folds"),
            OsStr::new("--clips"),
            OsStr::new("01"),
        ]),
        &["--clips and --folds"],
    );
    assert!(!report.exists());
    // On other footage whose training split lacks the held-out clip, eval still runs, with copying
    // fitted on that split whole.
    let other = synth(&tmp.path().join("other"), 2, 2, frames);
    let o = eval(&model, &other, &tmp.path().join("other.json"));
    expect_ok("eval on other footage", &o);
    assert!(read_json(&tmp.path().join("other.json"))["pooling_comparison"]["copy: window_max_z_8s4"].is_object());
    // A held-out clip that is not in the data is refused by train, naming it.
    expect_err("unknown holdout", &train(&data, &tmp.path().join("m2"), &["--epochs", "1", "--holdout", "07"]), &["07"]);
}

/// `calibrate --model MODEL --data DATA`.
fn calibrate(model: &Path, data: &Path) -> Outcome {
    sfn_train([OsStr::new("calibrate"), OsStr::new("--model"), model.as_os_str(), OsStr::new("--data"), data.as_os_str()])
}

/// Offline and causal scores of every clip of a report, in clip order.
fn report_scores(r: &Value) -> Vec<Value> {
    [&r["per_clip"], &r["causal"]["per_clip"]].iter().flat_map(|set| set.as_object().unwrap().values().map(|c| c["scores"].clone())).collect()
}

#[test]
fn an_ensemble_scores_the_mean_prediction_of_its_members() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synth(&tmp.path().join("data"), 2, 2, 14);
    let (one, other) = (tmp.path().join("one"), tmp.path().join("other"));
    expect_ok("train", &train(&data, &one, &["--epochs", "1"]));
    expect_ok("train seed 5", &train(&data, &other, &["--epochs", "1", "--seed", "5"]));
    let score = |dir: &Path, name: &str| {
        expect_ok(&format!("calibrate {name}"), &calibrate(dir, &data));
        let report = tmp.path().join(format!("{name}.json"));
        expect_ok(&format!("eval {name}"), &eval(dir, &data, &report));
        (fs::read(dir.join("calibration.json")).unwrap(), report_scores(&read_json(&report)))
    };
    let single = score(&one, "single");

    // A network twice is that network: the same calibration, byte for byte, and the same scores.
    let twice = tmp.path().join("twice");
    copy_dir(&one, &twice);
    write_json(&twice.join("ensemble.json"), &serde_json::json!({"members": ["model.safetensors", "model.safetensors"]}));
    assert_eq!(score(&twice, "twice"), single);

    // Two seeds: scores of their mean prediction, other than either member's.
    let pair = tmp.path().join("pair");
    copy_dir(&one, &pair);
    fs::copy(other.join("model.safetensors"), pair.join("member-5.safetensors")).unwrap();
    write_json(&pair.join("ensemble.json"), &serde_json::json!({"members": ["model.safetensors", "member-5.safetensors"]}));
    let both = score(&pair, "pair");
    assert_ne!(both.1, single.1);
    assert_ne!(both.1, score(&other, "seed 5").1);

    // Bad ensembles are refused naming the file, and leave the calibration as it was.
    let calibration = fs::read(pair.join("calibration.json")).unwrap();
    let refuse = |spec: Value, what: &str, needles: &[&str]| {
        write_json(&pair.join("ensemble.json"), &spec);
        expect_err(what, &calibrate(&pair, &data), needles);
        assert_eq!(fs::read(pair.join("calibration.json")).unwrap(), calibration, "{what}");
    };
    refuse(serde_json::json!({"members": []}), "no members", &["ensemble.json", "members"]);
    refuse(serde_json::json!({"members": ["gone.safetensors"]}), "missing member", &["gone.safetensors"]);
    refuse(serde_json::json!({"member": ["model.safetensors"]}), "unknown field", &["ensemble.json", "member"]);
    fs::write(pair.join("optimizer-copy.safetensors"), fs::read(one.join("optimizer.safetensors")).unwrap()).unwrap();
    refuse(serde_json::json!({"members": ["optimizer-copy.safetensors"]}), "not the config's weights", &["optimizer-copy.safetensors", "tensor"]);
    write_json(&pair.join("ensemble.json"), &serde_json::json!({"members": ["model.safetensors", "member-5.safetensors"]}));

    // The export runs both members in one encoder and one decoder graph and averages in the graph:
    // tract and ONNX Runtime score it as candle does; the int8 variants are ensembles too.
    let out = tmp.path().join("onnx");
    let o = export_all(&pair, &out, &data);
    expect_ok("export of an ensemble", &o);
    for sub in ["", "int8", "int8-weights"] {
        assert_eq!(read_json(&out.join(sub).join("model.json"))["members"], 2, "{sub}");
    }
    let candle = read_json(&tmp.path().join("pair.json"));
    let report = tmp.path().join("onnx.json");
    for backend in ["tract", "onnxruntime"] {
        eval_onnx_as_candle(&out, &data, backend, Some(&candle), &report);
    }
    for sub in ["int8", "int8-weights"] {
        eval_onnx_as_candle(&out.join(sub), &data, "tract", None, &report);
    }
    // One network exports as before: no `members` in its model.json.
    let single_out = tmp.path().join("single-onnx");
    expect_ok("export", &sfn_train([OsStr::new("export"), OsStr::new("--model"), one.as_os_str(), OsStr::new("--out"), single_out.as_os_str()]));
    assert!(read_json(&single_out.join("model.json")).get("members").is_none());
}
