//! The own-camera loop of docs/own-camera.md end to end, on synthetic footage served as a network stream:
//! synthetic walkway clips encoded to MPEG-TS and served by the `ffmpeg` CLI over TCP are recorded into
//! the training layout (`sfn-edge record`, two sessions), a `tiny` model is trained and calibrated on
//! them (`sfn-train train`), exported (`sfn-train export`), the threshold is chosen from a false-alarm
//! budget on a third recorded session (`sfn-host threshold`), and the runtime (`sfn-edge run`) reading a
//! clip with an intruder from the stream raises an alarm on the intruder, and none on the normal stream.
//! Each step calls what its command calls, with the config the commands read.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfn_edge::alarm::AlarmState;
use sfn_edge::config::EdgeConfig;
use sfn_edge::record::{record, RecordOptions};
use sfn_edge::setup;
use sfn_host::threshold::{threshold, ThresholdOptions};
use sfn_infer::BackendKind;
use sfn_models::SfnConfig;
use sfn_trainer::export::{export, ExportOptions};
use sfn_trainer::synth::{write_walkway, SynthConfig};
use sfn_trainer::train::{train, TrainConfig, TrainOptions};

const FPS: f64 = 10.0;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The PNG frames of `clip` encoded once (MPEG-4 part 2, as a cheap IP camera would) and looped by
/// `ffmpeg` as MPEG-TS to the first client on `port`, at 10x real time (the test need not wait).
fn serve_clip(clip: &Path, port: u16) -> Server {
    let child = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-readrate", "10", "-stream_loop", "-1", "-framerate", "10", "-i"])
        .arg(clip.join("%03d.png"))
        .args(["-c:v", "mpeg4", "-q:v", "2", "-f", "mpegts"])
        .arg(format!("tcp://127.0.0.1:{port}?listen=1"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the ffmpeg CLI (scripts/setup.sh installs it)");
    std::thread::sleep(Duration::from_millis(500));
    Server(child)
}

/// The camera's config: the stream on `port`, the model where step 4 puts it.
fn camera_config(dir: &Path, port: u16, export_dir: &Path) -> EdgeConfig {
    let path = dir.join(format!("edge-{port}.toml"));
    let text = format!("device = \"synthcam\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"stream\"\npath = \"tcp://127.0.0.1:{port}\"\nfps = {FPS}\n", export_dir.display());
    std::fs::write(&path, text).unwrap();
    EdgeConfig::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// `sfn-edge run --set alarm.threshold=T --max-frames N` on the camera: (frame, alarm state) of every scored frame.
fn run_camera(cfg: &EdgeConfig, frames: u64) -> Vec<(u64, AlarmState, f32)> {
    let mut rt = setup::runtime(cfg, false).unwrap_or_else(|e| panic!("{e:#}"));
    let mut source = setup::source(cfg).unwrap_or_else(|e| panic!("{e:#}"));
    let seen: Arc<Mutex<Vec<(u64, AlarmState, f32)>>> = Arc::default();
    let s2 = seen.clone();
    rt.on_frame = Some(Box::new(move |o| s2.lock().unwrap().push((o.index, o.alarm, o.score))));
    rt.run(&mut source, Some(frames), 50).unwrap_or_else(|e| panic!("{e}"));
    let v = seen.lock().unwrap().clone();
    v
}

#[test]
fn record_train_threshold_run_from_a_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = tmp.path().join("synth");
    let frames = 120;
    // Normal clips 01 and 02 are two recording sessions for training, 03 a third for the threshold.
    write_walkway(&synth, &SynthConfig { train_clips: 3, test_clips: 1, frames_per_clip: frames, ..Default::default() }).unwrap();
    let export_dir = tmp.path().join("runs/synthcam/onnx");
    let normal_clip = |k: usize| synth.join(format!("training/frames/{k:02}"));

    // 2. Record one loop of a normal clip per session, as clips of 6 s.
    let record_session = |clip: &Path, out: &Path| {
        let port = free_port();
        let _server = serve_clip(clip, port);
        let cfg = camera_config(tmp.path(), port, &export_dir);
        let mut source = setup::source(&cfg).unwrap_or_else(|e| panic!("{e:#}"));
        let rec = RecordOptions { out: out.to_path_buf(), clip_frames: (6.0 * FPS) as u64, every: 1, max_source_frames: Some(frames as u64), max_bytes: None };
        record(source.as_mut(), &rec, None, 50).unwrap_or_else(|e| panic!("{e}"))
    };
    let mydata = tmp.path().join("mydata");
    let first = record_session(&normal_clip(1), &mydata);
    let second = record_session(&normal_clip(2), &mydata);
    assert_eq!((first.frames_written, second.frames_written), (frames as u64, frames as u64), "{first:?} {second:?}");
    // The second session's clips are numbered after the first's.
    assert_eq!(first.clips.len() + second.clips.len(), 4, "{first:?} {second:?}");
    assert!(second.clips.iter().all(|c| !first.clips.contains(c)), "{first:?} {second:?}");
    let heldout = tmp.path().join("heldout");
    record_session(&normal_clip(3), &heldout);

    // 3. Train the tiny preset on the recording (the causal calibration is fitted at the end).
    let model_dir = tmp.path().join("runs/synthcam");
    let mut tc = TrainConfig::for_preset("tiny");
    tc.holdout.clear();
    let opts = TrainOptions { data: mydata.clone(), out: model_dir.clone(), model: SfnConfig::preset("tiny").unwrap(), train: tc, resume: false, epochs_override: None, progress: false };
    train(&opts).unwrap_or_else(|e| panic!("{e}"));

    // 4. Export.
    export(&ExportOptions { model: model_dir, out: export_dir.clone(), int8: false, weight_int8: false, calib: None, calib_windows: 0, reduce_range: false }).unwrap_or_else(|e| panic!("{e}"));

    // 5. The threshold for at most 1 false alarm an hour on footage the model was not trained on, with
    // the config's hysteresis.
    let alarm = sfn_edge::alarm::AlarmConfig::default();
    let topts = ThresholdOptions {
        model: export_dir.clone(),
        normal: vec![heldout],
        labelled: None,
        backend: BackendKind::Tract,
        raise_after: alarm.raise_after,
        clear_after: alarm.clear_after,
        fps: FPS,
        budget_per_hour: 1.0,
        out: tmp.path().join("threshold"),
    };
    let report = threshold(&topts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.chosen_point.false_alarms, 0, "{:?}", report.chosen_point);
    let t = report.chosen;

    // 6. Run with that threshold: the clip with the intruder, served as a stream, raises an alarm while
    // the intruder is in view; the held-out normal clip, served the same way, none.
    let labels: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(synth.join("testing/labels.json")).unwrap()).unwrap();
    let labels: Vec<u8> = serde_json::from_value(labels["01"].clone()).unwrap();
    let enters = labels.iter().position(|&l| l == 1).expect("an intruder") as u64;
    let leaves = labels.iter().rposition(|&l| l == 1).unwrap() as u64;
    let run = |clip: &Path| {
        let port = free_port();
        let _server = serve_clip(clip, port);
        let mut cfg = camera_config(tmp.path(), port, &export_dir);
        cfg.alarm.threshold = t;
        // One loop: the seam where a loop restarts is a jump no camera makes.
        run_camera(&cfg, frames as u64)
    };
    let states = run(&synth.join("testing/frames/01"));
    assert_eq!(states.len(), frames - 4, "frames 4.. are scored");
    let raised: Vec<u64> = states.iter().filter(|(_, a, _)| *a == AlarmState::Raised).map(|(i, _, _)| *i).collect();
    assert!(!raised.is_empty(), "no alarm on the intruder at threshold {t}: {states:?}");
    // Raised while the intruder is in view (after the hysteresis's raise_after frames), never before it comes.
    assert!(raised.iter().all(|&i| i >= enters && i <= leaves + alarm.raise_after as u64), "alarms at {raised:?}, intruder in frames {enters}..={leaves}, threshold {t}: {states:?}");

    let peak = |s: &[(u64, AlarmState, f32)]| s.iter().map(|x| x.2).fold(f32::MIN, f32::max);
    eprintln!("threshold {t}; intruder in frames {enters}..={leaves}: alarm raised at {raised:?}, peak score {}", peak(&states));
    let states = run(&normal_clip(3));
    eprintln!("normal stream: peak score {}", peak(&states));
    assert_eq!(states.len(), frames - 4, "frames 4.. are scored");
    assert!(states.iter().all(|(_, a, _)| *a == AlarmState::Idle), "an alarm on normal footage at threshold {t}: {states:?}");
}
