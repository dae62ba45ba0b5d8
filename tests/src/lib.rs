//! End-to-end tests across crates live in `tests/` of this package (`cargo test -p sfn-e2e`). The
//! library is what those tests and the crates' own tests share: a real mosquitto for a test, and a
//! small exported model with synthetic footage.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use sfn_models::scoring::{CausalCalibration, ErrorPooling, RegionStats, SpeedCalibration, SpeedCue, SpeedFusion};
use sfn_models::SfnConfig;
use sfn_trainer::checkpoint;
use sfn_trainer::export::{export, ExportOptions};
use sfn_trainer::synth::{write_walkway, SynthConfig};
use sfn_trainer::train::seeded_init;

/// A mosquitto started for a test; killed when dropped.
pub struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts mosquitto on `127.0.0.1:port` (anonymous, no persistence) with its config and log in `dir`,
/// and waits until it accepts connections.
pub fn mosquitto(dir: &Path, port: u16) -> Broker {
    let conf = dir.join("mosquitto.conf");
    // Its log in `dir/mosquitto.log` (connections are logged there: tests count them).
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\nlog_dest file {}\n", dir.join("mosquitto.log").display())).unwrap();
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].iter().map(PathBuf::from).find(|p| p.is_file()).unwrap_or_else(|| "mosquitto".into());
    let child = Command::new(bin).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("mosquitto: run scripts/setup.sh");
    let end = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Broker(child)
}

/// Synthetic footage (1 training, 1 test clip of 30 frames) + a seeded tiny model exported to ONNX (fp32): (data root, export dir).
pub fn fixture(root: &Path) -> (PathBuf, PathBuf) {
    build_fixture(root, false)
}

/// [`fixture`] whose calibration also joins the appearance cue (its network fitted on the training
/// clip for 2 epochs, seeded), so the export carries `appearance.onnx`; the checkpoint is `root/model`.
pub fn fixture_with_appearance(root: &Path) -> (PathBuf, PathBuf) {
    build_fixture(root, true)
}

fn build_fixture(root: &Path, appearance: bool) -> (PathBuf, PathBuf) {
    let data = root.join("data");
    write_walkway(&data, &SynthConfig { train_clips: 1, test_clips: 1, frames_per_clip: 30, ..Default::default() }).unwrap();
    let ck = root.join("model");
    std::fs::create_dir_all(&ck).unwrap();
    let cfg = SfnConfig::tiny();
    let (_, vm) = seeded_init(&cfg, 3, &Device::Cpu).unwrap();
    checkpoint::write_json(&ck.join(checkpoint::CONFIG), &cfg).unwrap();
    checkpoint::save_weights(&vm, &ck.join(checkpoint::WEIGHTS)).unwrap();
    let mut cal = CausalCalibration::fit(&[0.5, 1.2, 0.8, 1.5], None, 3.0, 0.8, 0.2).unwrap();
    // Region-normalised pooling (32x48 frames, 8x8 boxes at stride 4: a 7x11 grid) with per-box
    // statistics that differ from box to box, so a wrong box order would change the scores.
    cal.pooling = ErrorPooling::WindowMaxZ { window: 8, stride: 4 };
    let boxes: Vec<Vec<f32>> = (0..6).map(|f| (0..77).map(|b| 0.01 + 0.002 * ((b * 7 + f * 3) % 11) as f32).collect()).collect();
    cal.regions = Some(RegionStats::fit(8, 4, [7, 11], boxes.iter().map(Vec::as_slice)).unwrap());
    // The speed cue (block matching between frames t and t+1) with statistics of its own.
    let cue = SpeedCue { radius: 2, block: 6, window: 8, stride: 4, weight: 2.0, fusion: SpeedFusion::Max, margin: 0.0 };
    let speeds: Vec<Vec<f32>> = (0..6).map(|f| (0..77).map(|b| 0.2 + 0.05 * ((b * 5 + f) % 7) as f32).collect()).collect();
    cal.speed = Some(SpeedCalibration::fit(cue, 32, 48, speeds.iter().map(Vec::as_slice)).unwrap());
    if appearance {
        let ds = sfn_trainer::data::Dataset::open(&data, "training", &sfn_trainer::train::frame_format(&cfg)).unwrap();
        let opts = sfn_trainer::appearance::AppearanceOptions { epochs: 2, batch: 64, ..sfn_trainer::appearance::AppearanceOptions::for_model(ck.clone(), data.clone(), 3) };
        let m = sfn_trainer::appearance::fit(&opts, &ds).unwrap();
        cal.appearance = Some(sfn_models::scoring::AppearanceJoin::new(m.config.boxes, m.z, cal.speed.as_ref(), &[0.5, 1.2, 0.8, 1.5]).unwrap());
    }
    checkpoint::write_json(&ck.join(checkpoint::CALIBRATION), &cal).unwrap();
    let out = root.join("onnx");
    export(&ExportOptions { model: ck, out: out.clone(), int8: false, weight_int8: false, calib: None, calib_windows: 0, reduce_range: false }).unwrap();
    (data, out)
}

/// The first test clip of a synthetic data root.
pub fn test_clip(data: &Path) -> PathBuf {
    let dir = data.join("testing/frames");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    clips.sort();
    clips.remove(0)
}
