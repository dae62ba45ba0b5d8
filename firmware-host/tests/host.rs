//! `sfn-host` end to end with the shipped synthetic-scene model: the demo (the README's main job), replay
//! determinism and equality with the live-source path, validation from packets equal to the replay's
//! report, and bad input named.

use std::path::{Path, PathBuf};
use std::process::Command;

use sfn_edge::alarm::AlarmConfig;
use sfn_edge::pipeline::Pipeline;
use sfn_edge::runtime::Runtime;
use sfn_edge::sink::FramedWriter;
use sfn_host::replay::{replay_clip, ClipInput, ReplayOptions};
use sfn_infer::BackendKind;
use sfn_sources::{ImageFolder, ImageFolderOptions, Pacing};

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/walkway-tiny/onnx")
}

fn host(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_sfn-host")).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn s(x: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(x)
}

#[test]
fn demo_replays_the_synthetic_scene_and_validation_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let (ok, stdout, stderr) = host(&[s("demo"), s("--out"), out.as_os_str()]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("frame-level AUC") && stdout.contains("scores (frame 4 on"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // The shipped model separates the intruder from the walkers on footage it was not trained on.
    let micro = r["micro_auc"].as_f64().unwrap();
    assert!(micro > 0.8, "causal micro AUC {micro}");
    assert!(r["alarm_metrics"]["events"].as_u64().unwrap() >= 1);
    assert!(out.join("plots/roc.png").exists());
    // The packets it wrote validate to the same figures.
    let rep = tmp.path().join("val.json");
    let labels = out.join("data/testing/labels.json");
    let (ok, stdout, stderr) = host(&[s("validate"), s("--packets"), out.join("packets").as_os_str(), s("--labels"), labels.as_os_str(), s("--report"), rep.as_os_str()]);
    assert!(ok, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&rep).unwrap()).unwrap();
    assert_eq!(v["micro_auc"], r["micro_auc"]);
    assert_eq!(v["offline"]["micro_auc"], r["offline"]["micro_auc"]);
    assert_eq!(v["alarm_metrics"], r["alarm_metrics"]);
    // The demo's alarm snapshots and contact sheets; validate draws the same sheets from the packets,
    // the event folders and the frames, pixel for pixel.
    let clips: Vec<String> = r["clips"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    assert!(std::fs::read_dir(out.join("events")).unwrap().count() >= 1);
    let rep2 = tmp.path().join("val2.json");
    let (ok, stdout, stderr) = host(&[
        s("validate"),
        s("--packets"),
        out.join("packets").as_os_str(),
        s("--labels"),
        labels.as_os_str(),
        s("--report"),
        rep2.as_os_str(),
        s("--snapshots"),
        out.join("events").as_os_str(),
        s("--frames"),
        out.join("data").as_os_str(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    for c in &clips {
        let a = std::fs::read(out.join(format!("contact/contact_{c}.png"))).unwrap();
        let b = std::fs::read(tmp.path().join(format!("val2.contact/contact_{c}.png"))).unwrap();
        assert!(a == b, "contact sheet of clip {c} differs between replay and validate");
    }
    let missing = tmp.path().join("no-events");
    let (ok, _, stderr) =
        host(&[s("validate"), s("--packets"), out.join("packets").as_os_str(), s("--labels"), labels.as_os_str(), s("--report"), rep2.as_os_str(), s("--snapshots"), missing.as_os_str()]);
    assert!(!ok && stderr.contains("--snapshots") && stderr.contains("no-events"), "{stderr}");
    // Bad input: labels of the wrong length, an unknown layout, packets of another format version.
    let mut l: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&labels).unwrap()).unwrap();
    let first = l.as_object().unwrap().keys().next().unwrap().clone();
    l[&first].as_array_mut().unwrap().pop();
    let bad = tmp.path().join("bad_labels.json");
    std::fs::write(&bad, l.to_string()).unwrap();
    let (ok, _, stderr) = host(&[s("validate"), s("--packets"), out.join("packets").as_os_str(), s("--labels"), bad.as_os_str(), s("--report"), rep.as_os_str()]);
    assert!(!ok && stderr.contains(&format!("clip {first}")) && stderr.contains("labels for"), "{stderr}");
    let (ok, _, stderr) = host(&[s("replay"), s("--model"), model().as_os_str(), s("--data"), labels.as_os_str(), s("--out"), tmp.path().join("x").as_os_str()]);
    assert!(!ok && stderr.contains("labels.json") && stderr.contains("not a dataset root"), "{stderr}");
    let mp4 = tmp.path().join("clip.mp4");
    std::fs::write(&mp4, b"not really a video").unwrap();
    let (ok, _, stderr) = host(&[s("replay"), s("--model"), model().as_os_str(), s("--data"), mp4.as_os_str(), s("--out"), tmp.path().join("y").as_os_str()]);
    if cfg!(feature = "video") {
        assert!(!ok && stderr.contains("clip.mp4"), "{stderr}");
    } else {
        assert!(!ok && stderr.contains("clip.mp4") && stderr.contains("`video` feature"), "{stderr}");
    }
    let v2 = tmp.path().join("v2.bin");
    let mut pkt = sfn_wire::ScorePacket::default().to_bytes().unwrap();
    pkt[0] = 2;
    let crc = sfn_wire::crc16_ccitt_false(&pkt[..30]).to_le_bytes();
    pkt[30..].copy_from_slice(&crc);
    let mut framed = vec![0u8; 40];
    let n = cobs_encode(&pkt, &mut framed);
    framed.truncate(n);
    framed.push(0);
    std::fs::write(&v2, &framed).unwrap();
    let (ok, _, stderr) = host(&[s("validate"), s("--packets"), v2.as_os_str(), s("--labels"), labels.as_os_str(), s("--report"), rep.as_os_str()]);
    assert!(!ok && stderr.contains('2') && stderr.to_lowercase().contains("version"), "{stderr}");
}

/// Plain COBS encoding (for the hand-made version-2 packet).
fn cobs_encode(input: &[u8], out: &mut [u8]) -> usize {
    let (mut code_at, mut o, mut code) = (0usize, 1usize, 1u8);
    for &b in input {
        if b == 0 {
            out[code_at] = code;
            code_at = o;
            o += 1;
            code = 1;
        } else {
            out[o] = b;
            o += 1;
            code += 1;
            if code == 0xFF {
                out[code_at] = code;
                code_at = o;
                o += 1;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    o
}

#[test]
fn replay_is_bit_identical_and_equals_the_live_path() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    sfn_data::synth::write_walkway(&data, &sfn_data::synth::SynthConfig { train_clips: 1, test_clips: 1, frames_per_clip: 24, seed: 5, ..Default::default() }).unwrap();
    let clip = ClipInput { name: "01".into(), dir: data.join("testing/frames/01") };
    let opts = ReplayOptions {
        model: model(),
        inputs: vec![data.clone()],
        out: tmp.path().into(),
        backend: BackendKind::Tract,
        alarm: AlarmConfig::default(),
        start_ms: 1_764_331_200_000,
        fps: 25.0,
        snapshots: None,
    };
    let (a, b) = (tmp.path().join("a.bin"), tmp.path().join("b.bin"));
    replay_clip(&opts, &clip, &a).unwrap();
    replay_clip(&opts, &clip, &b).unwrap();
    let pa = std::fs::read(&a).unwrap();
    assert_eq!(pa.len(), 20 * sfn_wire::MAX_FRAMED);
    assert_eq!(pa, std::fs::read(&b).unwrap(), "two replays differ");
    // The live path: a paced source (real time at 25 fps, as a camera delivers) into a runtime built
    // the way `sfn-edge run` builds it.
    let live = tmp.path().join("live.bin");
    let pipeline = Pipeline::open(&model(), &BackendKind::Tract, AlarmConfig::default()).unwrap();
    let mut rt = Runtime::new(pipeline, "01");
    rt.sinks.push(Box::new(FramedWriter::file(&live).unwrap()));
    let mut src = ImageFolder::open(&clip.dir, ImageFolderOptions { pacing: Pacing::RealTime { fps: 25.0 }, start_time_ms: Some(opts.start_ms), ..Default::default() }).unwrap();
    rt.run(&mut src, None, 1).unwrap();
    drop(rt);
    assert_eq!(std::fs::read(&live).unwrap(), pa, "live path and replay differ");
}

/// On Ped2 (in CI, where ../shared exists) the replay of the committed model's export reproduces the
/// trainer's evaluation of the checkpoint: the device computes what the trainer measured.
#[test]
fn replay_of_the_ped2_model_reproduces_its_evaluation() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = std::env::var_os("SFN_DATA").map(|d| PathBuf::from(d).join("ped2")).unwrap_or_else(|| repo.join("../shared/data/ped2"));
    if !data.join("testing").is_dir() {
        eprintln!("skipped: no Ped2 at {} (set SFN_DATA)", data.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The example config's alarm threshold.
    let alarm = AlarmConfig { threshold: 3.5, ..AlarmConfig::default() };
    // With snapshots on: they must not change a bit of the packets.
    let snapshots = Some(sfn_edge::snapshot::SnapshotConfig::default());
    let opts = ReplayOptions { model: repo.join("assets/ped2-cpu/onnx"), inputs: vec![data], out: tmp.path().into(), backend: BackendKind::Tract, alarm, start_ms: 0, fps: 10.0, snapshots };
    let r = sfn_host::replay::replay(&opts).unwrap();
    let eval: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo.join("assets/ped2-cpu/eval.json")).unwrap()).unwrap();
    let close = |a: Option<f64>, b: &serde_json::Value, what: &str| {
        let (a, b) = (a.unwrap(), b.as_f64().unwrap());
        assert!((a - b).abs() < 1e-4, "{what}: replay {a} vs eval.json {b}");
    };
    close(r.validation.causal.micro_auc, &eval["causal"]["micro_auc"], "causal micro");
    close(r.validation.causal.macro_auc, &eval["causal"]["macro_auc"], "causal macro");
    close(r.validation.offline.micro_auc, &eval["micro_auc"], "offline micro");
    close(r.validation.offline.macro_auc, &eval["macro_auc"], "offline macro");
    close(r.validation.offline_saturated.as_ref().expect("model.json has visual_z_max").micro_auc, &eval["offline_saturated"]["micro_auc"], "saturated offline micro");
    assert_eq!(r.frames_scored, 1288);
    // The packets are what the committed model's replay gave when it was committed (`sfn-host replay
    // --model assets/ped2-cpu/onnx --data PED2 --out OUT --threshold 3.5`, OUT/packets/*.bin copied to
    // assets/ped2-cpu/replay-packets): refactoring the runtime must not change what a camera sends. Every
    // field is compared exactly but the floats, which match to 1e-3 relative: tract's kernels differ
    // with the CPU (AVX2 and AVX-512 round the network's sums differently), so the exact bytes are one
    // machine's. The worst seen is 3.3e-4 relative, on an AMD EPYC with AVX-512 (five floats, all in
    // clip 11 frames 18-21; every other float agreed to 1e-5).
    let golden_dir = repo.join("assets/ped2-cpu/replay-packets");
    let mut n = 0;
    for entry in std::fs::read_dir(&golden_dir).unwrap() {
        let name = entry.unwrap().file_name();
        let golden = decode_packets(&golden_dir.join(&name));
        let now = decode_packets(&tmp.path().join("packets").join(&name));
        let name = name.to_string_lossy();
        assert_eq!(now.len(), golden.len(), "packets of {name}: count");
        for (a, b) in now.iter().zip(&golden) {
            let exact = |p: &sfn_wire::ScorePacket| (p.version, p.seq, p.timestamp, p.frame, p.alarm, p.model_id, p.has_semantic());
            assert_eq!(exact(a), exact(b), "packets of {name}, frame {}", b.frame);
            let semantic = if b.has_semantic() { Some((a.semantic_z, b.semantic_z, "semantic_z")) } else { None };
            for (x, y, what) in [(a.score, b.score, "score"), (a.visual_z, b.visual_z, "visual_z")].into_iter().chain(semantic) {
                assert!((x - y).abs() <= 1e-3 * y.abs().max(1.0), "packets of {name}, frame {}: {what} {x} vs {y}", b.frame);
            }
        }
        n += 1;
    }
    assert_eq!(n, 8);
    // A contact sheet per clip, and a snapshot for every alarm (the raise always gets one).
    for clip in &r.clips {
        assert!(tmp.path().join(format!("contact/contact_{clip}.png")).is_file(), "no contact sheet for {clip}");
    }
    let alarms = r.validation.alarms.len();
    let raised: usize = r.clips.iter().map(|c| sfn_host::contact::clip_snapshots(&tmp.path().join("events"), c).len()).sum();
    assert!(alarms > 0 && raised >= alarms, "{raised} snapshots for {alarms} alarms");
}

/// Numbers of a JSON value by path, for comparing calibrations field by field.
fn numbers(v: &serde_json::Value, path: String, out: &mut Vec<(String, f64)>) {
    match v {
        serde_json::Value::Number(n) => out.push((path, n.as_f64().unwrap())),
        serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| numbers(x, format!("{path}[{i}]"), out)),
        serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| numbers(x, format!("{path}.{k}"), out)),
        _ => {}
    }
}

/// `sfn-host calibrate` on the committed export, fitted on the model's own calibration footage (Ped2
/// training clips 01-14), gives the calibration `sfn-train calibrate` fitted on the candle checkpoint
/// (the committed calibration.json): every number within 1e-4 relative (values under 1e-3 in
/// magnitude, like the fused error's mean, which is 0 by construction, within 1e-7).
#[test]
fn host_calibration_of_the_export_equals_the_trainers() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = std::env::var_os("SFN_DATA").map(|d| PathBuf::from(d).join("ped2")).unwrap_or_else(|| repo.join("../shared/data/ped2"));
    if !data.join("training").is_dir() {
        eprintln!("skipped: no Ped2 at {} (set SFN_DATA)", data.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let clips: Vec<PathBuf> = (1..=14).map(|i| data.join(format!("training/frames/{i:02}"))).collect();
    let out = tmp.path().join("export");
    let opts = sfn_host::calibrate::CalibrateOptions { model: repo.join("assets/ped2-cpu/onnx"), inputs: clips, out: Some(out.clone()), backend: BackendKind::Tract };
    let r = sfn_host::calibrate::calibrate(&opts).unwrap();
    assert_eq!((r.clips.len(), r.frames), (14, 2194));
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("model.json")).unwrap()).unwrap();
    let trainer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(repo.join("assets/ped2-cpu/calibration.json")).unwrap()).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    numbers(&written["calibration"], String::new(), &mut a);
    numbers(&trainer, String::new(), &mut b);
    assert_eq!(a.iter().map(|x| &x.0).collect::<Vec<_>>(), b.iter().map(|x| &x.0).collect::<Vec<_>>());
    for ((k, x), (_, y)) in a.iter().zip(&b) {
        let scale = x.abs().max(y.abs());
        let ok = if scale < 1e-3 { (x - y).abs() <= 1e-7 } else { (x - y).abs() <= 1e-4 * scale };
        assert!(ok, "{k}: host {x} vs trainer {y}");
    }
    // The recalibrated export is a complete export: it loads and replays.
    let pipeline = Pipeline::open(&out, &BackendKind::Tract, AlarmConfig::default()).unwrap();
    assert!(!pipeline.uses_text());
}

/// Bad footage is refused by clip (and frame) name, and nothing is written.
#[test]
fn host_calibration_refuses_bad_footage_and_writes_nothing() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    sfn_data::synth::write_walkway(&data, &sfn_data::synth::SynthConfig { train_clips: 2, test_clips: 1, frames_per_clip: 12, seed: 3, ..Default::default() }).unwrap();
    let model = repo.join("assets/walkway-tiny/onnx");
    let run = |inputs: Vec<PathBuf>, out: &Path| {
        sfn_host::calibrate::calibrate(&sfn_host::calibrate::CalibrateOptions { model: model.clone(), inputs, out: Some(out.to_path_buf()), backend: BackendKind::Tract })
    };
    // The synthetic scene's own normal footage calibrates.
    let good = tmp.path().join("good");
    let r = run(vec![data.clone()], &good).unwrap();
    assert_eq!(r.clips.len(), 2);
    assert!(good.join("model.json").exists());
    // A frame of another size than its clip's first.
    let clip = data.join("training/frames/01");
    let first = std::fs::read_dir(&clip).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    let ext = first.extension().unwrap().to_string_lossy().into_owned();
    image::GrayImage::new(10, 7).save(clip.join(format!("999.{ext}"))).unwrap();
    let out = tmp.path().join("bad-size");
    let e = run(vec![data.clone()], &out).unwrap_err().to_string();
    assert!(e.contains("clip 01") && e.contains("10x7"), "{e}");
    assert!(!out.exists(), "nothing is written");
    // A clip with too few frames, and one with none.
    let short = tmp.path().join("short/07");
    std::fs::create_dir_all(&short).unwrap();
    std::fs::copy(&first, short.join(first.file_name().unwrap())).unwrap();
    let e = run(vec![short.clone()], &out).unwrap_err().to_string();
    assert!(e.contains("clip 07") && e.contains("1 frames"), "{e}");
    let empty = tmp.path().join("empty/08");
    std::fs::create_dir_all(&empty).unwrap();
    let e = run(vec![empty], &out).unwrap_err().to_string();
    assert!(e.contains("08"), "{e}");
    assert!(!out.exists(), "nothing is written");
}

/// `sfn-host threshold` on the demo's scene: the chosen threshold raises no alarm on the normal footage
/// and still detects the intruder in the labelled clips; the curve is written with its plot, and the
/// last line is the `--set` to paste.
#[test]
fn threshold_from_a_false_alarm_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let (ok, stdout, stderr) = host(&[s("demo"), s("--out"), out.as_os_str()]);
    assert!(ok, "{stdout}{stderr}");
    let data = out.join("data");
    let t = tmp.path().join("thr");
    let (ok, stdout, stderr) = host(&[s("threshold"), s("--model"), model().as_os_str(), s("--normal"), data.as_os_str(), s("--labels"), data.as_os_str(), s("--out"), t.as_os_str()]);
    assert!(ok, "{stdout}{stderr}");
    let r: sfn_host::threshold::ThresholdReport = serde_json::from_str(&std::fs::read_to_string(t.join("threshold.json")).unwrap()).unwrap();
    assert!(t.join("threshold.png").exists());
    assert_eq!(stdout.trim().lines().last(), Some(format!("--set alarm.threshold={}", r.chosen).as_str()), "{stdout}");
    assert_eq!(r.chosen_point.false_alarms, 0);
    // Every higher candidate is within the budget too, and the one just below is not (else it would be chosen).
    let i = r.curve.iter().position(|p| p.threshold == r.chosen).unwrap();
    assert!(r.curve[i..].iter().all(|p| p.false_alarms == 0));
    assert!(i == 0 || r.curve[i - 1].false_alarms > 0);
    let l = r.chosen_point.labelled.as_ref().unwrap();
    assert!(l.events >= 1 && l.detected_events == l.events, "{l:?}");
    // The same alarms as a replay at that threshold (the edge's hysteresis, the same scores).
    let rep = tmp.path().join("replay");
    let th = r.chosen.to_string();
    let (ok, stdout, stderr) = host(&[s("replay"), s("--model"), model().as_os_str(), s("--data"), data.as_os_str(), s("--out"), rep.as_os_str(), s("--threshold"), s(&th)]);
    assert!(ok, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(rep.join("report.json")).unwrap()).unwrap();
    assert_eq!(v["alarm_metrics"]["detected_events"].as_u64(), Some(l.detected_events as u64));
    assert_eq!(v["alarm_metrics"]["false_alarms"].as_u64(), Some(l.false_alarms as u64));
    // Bad input is named.
    let (ok, _, stderr) = host(&[s("threshold"), s("--model"), model().as_os_str(), s("--normal"), tmp.path().join("nowhere").as_os_str(), s("--out"), t.as_os_str()]);
    assert!(!ok && stderr.contains("nowhere"), "{stderr}");
}

/// The score packets of a packet file (COBS frames, each ending in 0x00).
fn decode_packets(path: &Path) -> Vec<sfn_wire::ScorePacket> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.split_inclusive(|&b| b == 0).map(|f| sfn_wire::ScorePacket::decode_framed(&mut f.to_vec()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).collect()
}
