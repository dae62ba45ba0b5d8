//! The edge runtime end to end on a small exported model and synthetic footage (real frames on disk,
//! the real encoder/decoder graphs on tract): the streaming pipeline with its per-frame encoder cache
//! reproduces the batch evaluation exactly; captions never stall scoring; alarms reach the sinks; the
//! `sfn-edge` binary's own tests are in `edge/tests/runtime.rs`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use sfn_captions::{CaptionError, CaptionProvider, Clip};
use sfn_e2e::{fixture, fixture_with_appearance, test_clip};
use sfn_edge::alarm::AlarmConfig;
use sfn_edge::captions::{CaptionBudget, CaptionScheduler, CaptionWorker, Embedder};
use sfn_edge::pipeline::{FrameOutput, Pipeline};
use sfn_edge::runtime::{Captioning, Runtime};
use sfn_edge::sink::JsonLines;
use sfn_infer::{BackendKind, ExportedModel};
use sfn_models::scoring::causal_scores;
use sfn_models::SfnConfig;
use sfn_sources::{ImageFolder, ImageFolderOptions};
use sfn_trainer::data::Dataset;
use sfn_trainer::export::onnx_errors;
use sfn_trainer::train::frame_format;

/// The test clip through the trainer's batch ONNX evaluation (every frame, batches of 8) and, read
/// from disk frame by frame, through the streaming runtime (tract): the batch visual errors, their
/// causal scores, the runtime's outputs and the frames it read.
fn batch_and_stream(data: &Path, onnx: &Path) -> (Vec<f32>, Vec<f32>, Vec<FrameOutput>, u64) {
    let mut m = ExportedModel::open(onnx, &BackendKind::Tract).unwrap();
    let cfg: SfnConfig = serde_json::from_value(m.manifest.config.clone()).unwrap();
    let ds = Dataset::open(data, "testing", &frame_format(&cfg)).unwrap();
    let cal = m.manifest.calibration.clone().unwrap();
    let batch = onnx_errors(&mut m, &ds, cal.pooling, 8).unwrap().remove(0);
    let causal = causal_scores(&batch, None, &cal);
    let pipeline = Pipeline::open(onnx, &BackendKind::Tract, AlarmConfig { threshold: 1e9, ..Default::default() }).unwrap();
    let mut rt = Runtime::new(pipeline, "test");
    let seen: Arc<Mutex<Vec<FrameOutput>>> = Arc::default();
    let s2 = seen.clone();
    rt.on_frame = Some(Box::new(move |o| s2.lock().unwrap().push(o.clone())));
    let mut src = ImageFolder::open(test_clip(data), ImageFolderOptions::default()).unwrap();
    let summary = rt.run(&mut src, None, 3).unwrap();
    let outs = seen.lock().unwrap().clone();
    (batch, causal, outs, summary.frames_in)
}

#[test]
fn streaming_equals_batch_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let (batch, causal, outs, frames_in) = batch_and_stream(&data, &onnx);
    assert_eq!(frames_in, 30);
    assert_eq!(outs.len(), batch.len(), "frames 4.. are scored");
    for (k, o) in outs.iter().enumerate() {
        assert_eq!(o.index, k as u64 + 4);
        let (a, b) = (o.visual_error, batch[k]);
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "frame {}: streaming {a} vs batch {b}", o.index);
        assert!((o.score - causal[k]).abs() <= 1e-3 * causal[k].abs().max(1.0), "frame {}: score {} vs {}", o.index, o.score, causal[k]);
        assert_eq!(o.appearance_error, None);
    }
}

/// With the appearance cue joined, the camera's pipeline runs `appearance.onnx` on each frame's
/// moving boxes: its appearance error is candle's (the trainer's eval), and its joined visual error
/// and score are the batch evaluation's. An export whose calibration joins the cue but that lacks the
/// graph is refused at open, naming model.json.
#[test]
fn the_appearance_cue_streams_as_candle_and_the_batch_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture_with_appearance(tmp.path());
    let mut m = ExportedModel::open(&onnx, &BackendKind::Tract).unwrap();
    let cfg: SfnConfig = serde_json::from_value(m.manifest.config.clone()).unwrap();
    let ds = Dataset::open(&data, "testing", &frame_format(&cfg)).unwrap();
    let cal = m.manifest.calibration.clone().unwrap();
    assert!(cal.appearance.is_some() && m.has_appearance());
    let (net, _) = sfn_trainer::appearance::load(&tmp.path().join("model")).unwrap().unwrap();
    let candle = sfn_trainer::appearance::frame_errors(&net, &ds).unwrap().remove(0);
    assert!(candle.iter().filter(|&&a| a > 0.0).count() > 5, "the walkers move: {candle:?}");
    let (batch, causal, outs, _) = batch_and_stream(&data, &onnx);
    assert_eq!(outs.len(), batch.len());
    for (k, o) in outs.iter().enumerate() {
        let a = o.appearance_error.expect("the calibration joins the cue");
        assert!((a - candle[k]).abs() <= 1e-4 * candle[k].abs().max(1e-3), "frame {}: appearance {a} vs candle {}", o.index, candle[k]);
        assert!((o.visual_error - batch[k]).abs() <= 1e-5 * batch[k].abs().max(1e-3), "frame {}: streaming {} vs batch {}", o.index, o.visual_error, batch[k]);
        assert!((o.score - causal[k]).abs() <= 1e-3 * causal[k].abs().max(1.0), "frame {}: score {} vs {}", o.index, o.score, causal[k]);
    }
    // Several cameras on one batched model share the graph: each share's errors are the plain model's.
    let opts = sfn_infer::batch::BatchOptions { max_batch: 4, deadline: std::time::Duration::from_millis(10) };
    let batched = ExportedModel::open(&onnx, &BackendKind::Tract).unwrap().batched(opts).unwrap();
    let (mut a, mut b) = (batched.share().unwrap(), batched.share().unwrap());
    let frames = &ds.clips[0].frames;
    let j = cal.appearance.unwrap();
    for t in 5..12 {
        let boxes = j.boxes.describe(&frames[t - 1], &frames[t], 1, 32, 48).unwrap();
        let flat: Vec<f32> = boxes.iter().flat_map(|b| b.values.iter().copied()).collect();
        let want = m.appearance_errors(&flat, boxes.len()).unwrap();
        let other = if t % 2 == 0 { &mut a } else { &mut b };
        assert_eq!(other.appearance_errors(&flat, boxes.len()).unwrap(), want, "frame {t}");
    }
    // `sfn-host calibrate` refits the cue's z constants on a scene's footage through the export: the
    // statistics of candle's appearance errors on the same clip, and the new export carries the graph.
    let train = Dataset::open(&data, "training", &frame_format(&cfg)).unwrap();
    let want = sfn_models::scoring::AppearanceZ::fit(&sfn_trainer::appearance::frame_errors(&net, &train).unwrap().concat()).unwrap();
    let out = tmp.path().join("scene");
    let opts = sfn_host::calibrate::CalibrateOptions { model: onnx.clone(), inputs: vec![data.clone()], out: Some(out.clone()), backend: BackendKind::Tract };
    let r = sfn_host::calibrate::calibrate(&opts).unwrap();
    let got = r.calibration.appearance.expect("the refit keeps the cue").z;
    for (a, b, what) in [(got.mean, want.mean, "mean"), (got.std, want.std, "std")] {
        assert!((a - b).abs() <= 1e-4 * b.abs(), "appearance z {what}: host {a} vs candle {b}");
    }
    let p = Pipeline::open(&out, &BackendKind::Tract, AlarmConfig::default()).unwrap();
    assert!(p.scoring_name().ends_with(" + appearance"), "{}", p.scoring_name());
    // The same calibration on an export without the graph.
    let (_, plain) = fixture(&tmp.path().join("plain"));
    let path = plain.join("model.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    manifest["calibration"] = serde_json::to_value(&cal).unwrap();
    std::fs::write(&path, serde_json::to_string(&manifest).unwrap()).unwrap();
    let e = Pipeline::open(&plain, &BackendKind::Tract, AlarmConfig::default()).err().expect("refused").to_string();
    assert!(e.contains("model.json") && e.contains("appearance.onnx"), "{e}");
}

/// Speed statistics that do not fit the model's frames are refused when the pipeline opens, by name.
#[test]
fn speed_statistics_of_another_geometry_are_refused_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, onnx) = fixture(tmp.path());
    let path = onnx.join("model.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["calibration"]["speed"]["regions"]["grid"] = serde_json::json!([3, 5]);
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
    let e = Pipeline::open(&onnx, &BackendKind::Tract, AlarmConfig::default()).err().expect("refused");
    let msg = e.to_string();
    assert!(msg.contains("calibration.speed") && msg.contains("32x48") && msg.contains("model.json"), "{msg}");
}

/// A relative pooling whose floor was never fitted (a hand-edited manifest) is refused when the pipeline
/// opens, naming the field, rather than scoring every frame as an error.
#[test]
fn an_unfitted_relative_floor_is_refused_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, onnx) = fixture(tmp.path());
    let path = onnx.join("model.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["calibration"]["pooling"] = serde_json::json!({"kind": "relative_window_max", "window": 8, "stride": 4, "change_milli": 100, "floor_micro": 0});
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
    let msg = Pipeline::open(&onnx, &BackendKind::Tract, AlarmConfig::default()).err().expect("refused").to_string();
    assert!(msg.contains("calibration.pooling") && msg.contains("not fitted") && msg.contains("model.json"), "{msg}");
}

/// A provider that blocks until the test lets it go.
struct Blocking {
    release: Arc<Mutex<mpsc::Receiver<()>>>,
}

impl CaptionProvider for Blocking {
    fn name(&self) -> String {
        "blocking test provider".into()
    }
    fn caption(&mut self, _clip: &Clip) -> Result<String, CaptionError> {
        let _ = self.release.lock().unwrap().recv();
        Ok("someone walks".into())
    }
}

struct FixedEmbedder(usize);

impl Embedder for FixedEmbedder {
    fn embed(&mut self, _text: &str) -> Result<Vec<f32>, String> {
        Ok(vec![1.0 / (self.0 as f32).sqrt(); self.0])
    }
}

#[test]
fn scoring_never_waits_on_a_caption() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let pipeline = Pipeline::open(&onnx, &BackendKind::Tract, AlarmConfig::default()).unwrap();
    let dim = pipeline.manifest().text_dim;
    let (tx, rx) = mpsc::channel();
    let worker = CaptionWorker::spawn(Box::new(Blocking { release: Arc::new(Mutex::new(rx)) }), Box::new(FixedEmbedder(dim)));
    let mut rt = Runtime::new(pipeline, "test");
    // Period 0 and the whole wall time as budget: the runtime would refresh on every frame if it could.
    rt.captions = Some(Captioning::new(worker, CaptionScheduler::new(CaptionBudget { period_ms: 0, max_share: 1.0, deadline_ms: 60_000 }), 1, 24, 36));
    let mut src = ImageFolder::open(test_clip(&data), ImageFolderOptions::default()).unwrap();
    // The provider is stuck in its first call for the whole run: every frame is still scored.
    let s = rt.run(&mut src, None, 3).unwrap();
    assert_eq!((s.frames_in, s.frames_scored), (30, 26));
    let c = s.captions.unwrap();
    assert_eq!(c.started, 1, "{c:?}");
    assert_eq!(c.refreshed, 0);
    assert!(c.skipped_busy >= 25, "{c:?}");
    tx.send(()).unwrap();
}

#[test]
fn alarms_and_frames_reach_a_json_sink() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    // A threshold every frame exceeds: raised on frame 4 + 1, active to the end.
    let pipeline = Pipeline::open(&onnx, &BackendKind::Tract, AlarmConfig { threshold: -1e9, raise_after: 2, clear_after: 2 }).unwrap();
    let mut rt = Runtime::new(pipeline, "cam-test");
    let log = tmp.path().join("events.jsonl");
    rt.sinks.push(Box::new(JsonLines::file(&log).unwrap()));
    let mut src = ImageFolder::open(test_clip(&data), ImageFolderOptions::default()).unwrap();
    let s = rt.run(&mut src, None, 3).unwrap();
    assert_eq!(s.alarms, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let frames = lines.iter().filter(|l| l["kind"] == "frame").count();
    let alarms: Vec<&serde_json::Value> = lines.iter().filter(|l| l["device"] == "cam-test").collect();
    assert_eq!(frames, 26);
    assert_eq!(alarms.len(), 1, "{text}");
    assert_eq!(alarms[0]["state"], "raised");
    assert_eq!(alarms[0]["start_frame"], 4);
}

/// Frame-source faults mid-stream: two frames of the clip become unreadable (a truncated JPEG, an
/// empty file). Each is counted and skipped, scoring goes on, and the window restarts after the
/// gap (no motion is computed across it), so the frames after the gap score exactly as the same
/// frames do in a clip that starts there. A source that keeps failing ends the run with an error
/// naming the file instead of spinning.
#[test]
fn source_faults_mid_stream_are_counted_and_scoring_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    let clip = test_clip(&data);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&clip).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 30);
    let faulty = tmp.path().join("faulty");
    let tail = tmp.path().join("tail");
    std::fs::create_dir_all(&faulty).unwrap();
    std::fs::create_dir_all(&tail).unwrap();
    for (i, f) in files.iter().enumerate() {
        let name = f.file_name().unwrap();
        let bytes = std::fs::read(f).unwrap();
        match i {
            12 => std::fs::write(faulty.join(name), &bytes[..bytes.len() / 3]).unwrap(),
            13 => std::fs::write(faulty.join(name), b"").unwrap(),
            _ => std::fs::write(faulty.join(name), &bytes).unwrap(),
        }
        if i >= 14 {
            std::fs::write(tail.join(name), &bytes).unwrap();
        }
    }
    let run = |dir: &Path| {
        let pipeline = Pipeline::open(&onnx, &BackendKind::Tract, AlarmConfig::default()).unwrap();
        let mut rt = Runtime::new(pipeline, "test");
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        rt.on_frame = Some(Box::new(move |o: &FrameOutput| g.lock().unwrap().push(o.clone())));
        let mut src = ImageFolder::open(dir, ImageFolderOptions::default()).unwrap();
        let s = rt.run(&mut src, None, 3).unwrap();
        let v = got.lock().unwrap().clone();
        (s, v)
    };
    let (s, outs) = run(&faulty);
    assert_eq!((s.source_errors, s.frames_in), (2, 28), "{s:?}");
    // 4 frames of context at the start and again after the gap.
    assert_eq!(s.frames_scored, 28 - 8, "{s:?}");
    let (s_tail, outs_tail) = run(&tail);
    assert_eq!(s_tail.frames_scored, 16 - 4);
    let after: Vec<f32> = outs.iter().rev().take(outs_tail.len()).rev().map(|o| o.visual_error).collect();
    let alone: Vec<f32> = outs_tail.iter().map(|o| o.visual_error).collect();
    assert_eq!(after, alone, "after the gap the window restarts");
    // So does a pooling held over frames: its kept values are forgotten with the window (else the
    // first frame after the gap would take the minimum with one before it).
    let path = onnx.join("model.json");
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["calibration"]["pooling"] = serde_json::json!({"kind": "relative_window_max", "window": 8, "stride": 4, "change_milli": 100, "floor_micro": 3829, "frames": 2});
    // Without the speed cue the visual error is the held ratio itself.
    m["calibration"].as_object_mut().unwrap().remove("speed");
    std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
    let ((_, held), (_, held_tail)) = (run(&faulty), run(&tail));
    let after: Vec<f32> = held.iter().rev().take(held_tail.len()).rev().map(|o| o.visual_error).collect();
    assert_eq!(after, held_tail.iter().map(|o| o.visual_error).collect::<Vec<_>>(), "after the gap the kept values are forgotten");
    assert_ne!(held.iter().map(|o| o.visual_error).collect::<Vec<_>>(), outs.iter().map(|o| o.visual_error).collect::<Vec<_>>());

    // Three unreadable frames in a row: the run ends with an error naming the file.
    for f in &files[15..18] {
        std::fs::write(faulty.join(f.file_name().unwrap()), b"not a jpeg").unwrap();
    }
    let pipeline = Pipeline::open(&onnx, &BackendKind::Tract, AlarmConfig::default()).unwrap();
    let mut rt = Runtime::new(pipeline, "test");
    let mut src = ImageFolder::open(&faulty, ImageFolderOptions::default()).unwrap();
    let e = rt.run(&mut src, None, 3).unwrap_err().to_string();
    assert!(e.contains(&files[17].file_name().unwrap().to_string_lossy().to_string()), "{e}");
}

/// On tract an int8 export runs as the fp32 export `sfn-train export` wrote beside it (tract runs int8
/// slower); ONNX Runtime keeps the int8 one; an int8 export with no fp32 beside it is run as it is.
#[test]
fn tract_runs_the_fp32_export_beside_an_int8_one() {
    use sfn_edge::config::EdgeConfig;
    use sfn_edge::setup::model_dir_for_backend;
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = fixture(tmp.path());
    let out = tmp.path().join("both");
    let model = tmp.path().join("model");
    sfn_trainer::export::export(&sfn_trainer::export::ExportOptions { model, out: out.clone(), int8: true, weight_int8: false, calib: Some(data), calib_windows: 4, reduce_range: false }).unwrap();
    let int8 = out.join("int8");
    let cfg = |dir: &Path, backend: &str| {
        let path = tmp.path().join("edge.toml");
        std::fs::write(&path, format!("device = \"cam1\"\n[model]\ndir = \"{}\"\nbackend = \"{backend}\"\n[source]\nkind = \"folder\"\npath = \"frames\"\n", dir.display())).unwrap();
        EdgeConfig::load(&path, &[]).unwrap()
    };
    assert_eq!(model_dir_for_backend(&cfg(&int8, "tract")), out);
    assert_eq!(model_dir_for_backend(&cfg(&int8, "onnxruntime")), int8);
    assert_eq!(model_dir_for_backend(&cfg(&out, "tract")), out);
    let mut keep = cfg(&int8, "tract");
    keep.model.tract_int8 = true;
    assert_eq!(model_dir_for_backend(&keep), int8);
    // Alone, the int8 export runs (on tract, with a warning).
    let alone = tmp.path().join("alone");
    std::fs::rename(&int8, &alone).unwrap();
    assert_eq!(model_dir_for_backend(&cfg(&alone, "tract")), alone);
    let rt = sfn_edge::setup::runtime(&cfg(&alone, "tract"), false).unwrap();
    assert_eq!(rt.pipeline.manifest().precision, sfn_infer::manifest::Precision::Int8Qdq);
}

/// The box of the region that set the score lies on the synthetic intruder (pixel overlap, in the
/// source frame's coordinates), and the JSON sink carries it with the cue.
#[test]
fn the_region_that_set_the_score_lies_on_the_intruder() {
    use sfn_scoring::{Cue, Region};
    let tmp = tempfile::tempdir().unwrap();
    let (data, onnx) = fixture(tmp.path());
    // The fixture's footage again (the generator is deterministic), for the intruder's boxes.
    let synth = sfn_data::synth::SynthConfig { train_clips: 1, test_clips: 1, frames_per_clip: 30, ..Default::default() };
    let summary = sfn_data::synth::write_walkway(&tmp.path().join("again"), &synth).unwrap();
    let span = summary.intruders[0].clone();
    let intruder_at = |frame: u64| -> Option<Region> {
        let k = (frame as usize).checked_sub(span.first_frame).filter(|&k| k < span.boxes.len())?;
        let [x, y, width, height] = span.boxes[k];
        Some(Region { x, y, width, height })
    };
    let pipeline = Pipeline::open(&onnx, &BackendKind::Tract, AlarmConfig { threshold: 1e9, ..Default::default() }).unwrap();
    let mut rt = Runtime::new(pipeline, "test");
    let lines = tmp.path().join("frames.jsonl");
    rt.sinks.push(Box::new(JsonLines::file(&lines).unwrap()));
    let seen: Arc<Mutex<Vec<FrameOutput>>> = Arc::default();
    let s2 = seen.clone();
    rt.on_frame = Some(Box::new(move |o| s2.lock().unwrap().push(o.clone())));
    let mut src = ImageFolder::open(test_clip(&data), ImageFolderOptions::default()).unwrap();
    rt.run(&mut src, None, 3).unwrap();
    drop(rt);
    let outs = seen.lock().unwrap().clone();
    // Scored frame t compares frame t with t-1: the intruder is where it was in either.
    let on_intruder = |o: &FrameOutput| {
        let r = o.region.expect("box poolings give a region");
        assert!(r.x + r.width <= synth.width as u32 && r.y + r.height <= synth.height as u32, "{r:?} outside the 72x48 source");
        [o.index, o.index - 1].iter().filter_map(|&f| intruder_at(f)).any(|b| b.overlap(&r) > 0)
    };
    let in_view: Vec<&FrameOutput> = outs.iter().filter(|o| intruder_at(o.index).is_some()).collect();
    assert!(in_view.len() >= 5, "{span:?}");
    let peak = in_view.iter().max_by(|a, b| a.score.total_cmp(&b.score)).unwrap();
    assert!(on_intruder(peak), "peak frame {}: {:?} ({:?}), intruder {:?}", peak.index, peak.region, peak.cue, intruder_at(peak.index));
    // Where the speed cue set the score while the intruder was in view, its box is on the intruder.
    let by_speed: Vec<&&FrameOutput> = in_view.iter().filter(|o| o.cue == Cue::Speed).collect();
    assert!(!by_speed.is_empty());
    assert!(by_speed.iter().all(|o| on_intruder(o)), "{:?}", by_speed.iter().map(|o| (o.index, o.region, intruder_at(o.index))).collect::<Vec<_>>());
    // The JSON sink's frame lines carry the cue and the box.
    let text = std::fs::read_to_string(&lines).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().find(|l| l.contains(&format!("\"index\":{}", peak.index))).unwrap()).unwrap();
    assert_eq!(line["cue"], serde_json::to_value(peak.cue).unwrap());
    assert_eq!(line["region"]["x"], peak.region.unwrap().x);
}
