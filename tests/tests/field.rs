//! The whole product line on a synthetic scene: train the `tiny` network -> export fp32 and calibrated
//! int8 -> the camera runtime on a recorded clip, reporting to a real mosquitto -> `sfn-host decode`
//! of the MQTT score stream -> `sfn-host validate` against the labels. What arrives over MQTT is
//! exactly what a deterministic replay of the same clip through the same export sends.

use std::net::TcpListener;
use std::time::Duration;

use sfn_e2e::mosquitto;
use sfn_edge::config::EdgeConfig;
use sfn_host::decode::{decode_stream, Input};
use sfn_host::replay::{replay, ReplayOptions};
use sfn_host::validate::{validate, ClipTrace};
use sfn_infer::BackendKind;

#[test]
fn train_export_run_report_decode_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // 1. Footage and a tiny model trained on its normal clips.
    let data = root.join("data");
    let synth = sfn_data::synth::SynthConfig { train_clips: 2, test_clips: 1, frames_per_clip: 40, seed: 21, ..Default::default() };
    sfn_data::synth::write_walkway(&data, &synth).unwrap();
    let model = root.join("model");
    let tc = sfn_trainer::train::TrainConfig { epochs: 2, batch_size: 8, seed: 21, ..Default::default() };
    let opts = sfn_trainer::train::TrainOptions {
        data: data.clone(),
        out: model.clone(),
        model: sfn_models::SfnConfig::preset("tiny").unwrap(),
        train: tc,
        resume: false,
        epochs_override: None,
        progress: false,
    };
    sfn_trainer::train::train(&opts).unwrap();
    // 2. Exports: fp32 and static int8 calibrated on the normal clips.
    let export = root.join("onnx");
    sfn_trainer::export::export(&sfn_trainer::export::ExportOptions { model, out: export.clone(), int8: true, weight_int8: false, calib: Some(data.clone()), calib_windows: 16, reduce_range: false })
        .unwrap();
    let int8 = export.join("int8");
    assert!(export.join("model.json").exists() && int8.join("model.json").exists());

    // 3. The camera runtime runs the int8 export on the test clip (on tract only when asked:
    //    `tract_int8`), reporting to mosquitto; the host decoder listens on the score topic.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _broker = mosquitto(root, port);
    let clip = data.join("testing/frames/01");
    let frames = std::fs::read_dir(&clip).unwrap().count();
    let scored = frames - 4;
    let listener = std::thread::spawn(move || {
        let mut got = Vec::new();
        let input = Input::Mqtt { host: "127.0.0.1".into(), port, topic: "sfn/e2e/score".into() };
        let d = decode_stream(&input, Some(scored as u64), Some(Duration::from_secs(20)), &mut |r| got.push(r.packet)).unwrap();
        (d, got)
    });
    std::thread::sleep(Duration::from_millis(300));
    let cfg_path = root.join("edge.toml");
    let toml = format!(
        "device = \"e2e\"\n[model]\ndir = \"{}\"\ntract_int8 = true\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\nstart_time_ms = 0\nfps = 10\n[alarm]\nthreshold = 3.0\n[sinks.mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nspool_dir = \"{}\"\n",
        int8.display(),
        clip.display(),
        root.join("spool").display()
    );
    std::fs::write(&cfg_path, toml).unwrap();
    let cfg = EdgeConfig::load(&cfg_path, &[]).unwrap();
    let mut rt = sfn_edge::setup::runtime(&cfg, true).unwrap();
    let mut src = sfn_edge::setup::source(&cfg).unwrap();
    let summary = rt.run(&mut *src, None, 1).unwrap();
    assert_eq!(summary.frames_in as usize, frames);
    drop(rt); // flushes the batched scores and says offline
    let (decoded, packets) = listener.join().unwrap();
    assert_eq!(packets.len(), scored, "{decoded:?}");

    // 4. What came over MQTT is what a replay of the same clip through the same export sends.
    let out = root.join("replay");
    let r =
        replay(&ReplayOptions { model: int8.clone(), inputs: vec![clip.clone()], out: out.clone(), backend: BackendKind::Tract, alarm: cfg.alarm.clone(), start_ms: 0, fps: 10.0, snapshots: None })
            .unwrap();
    assert_eq!(r.frames_scored, scored);
    let mut replayed = Vec::new();
    decode_stream(&Input::File(out.join("packets/01.bin")), None, None, &mut |r| replayed.push(r.packet)).unwrap();
    let key = |p: &sfn_wire::ScorePacket| (p.frame, p.timestamp.as_millis(), p.score.to_bits(), p.visual_z.to_bits(), p.alarm as u8, p.model_id);
    assert_eq!(packets.iter().map(key).collect::<Vec<_>>(), replayed.iter().map(key).collect::<Vec<_>>());

    // 5. Validation of the decoded stream against the labels: the intruder scores above the walkers.
    let labels = sfn_data::dataset::load_labels(&data).unwrap();
    let trace = ClipTrace::from_packets("01", &packets, Some(&labels["01"])).unwrap();
    let v = validate(&[trace], 10.0, 3, None);
    let auc = v.causal.micro_auc.expect("the clip holds normal and abnormal frames");
    assert!(auc > 0.5, "causal AUC {auc}");
}
