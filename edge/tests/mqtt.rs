//! `sfn-edge run` reporting to a real mosquitto (started by the test on a free loopback port): the
//! device comes online, its alarm arrives as a 32-byte packet with the JSON mirror, scores arrive
//! batched as COBS-framed packets, and a clean stop leaves "offline" retained.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use sfn_e2e::mosquitto;

#[test]
fn sfn_edge_reports_to_mosquitto() {
    let tmp = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _broker = mosquitto(tmp.path(), port);
    // Subscribe before the device starts.
    let mut o = MqttOptions::new("test-sub", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(o, 100);
    client.subscribe("sfn/cam9/#", QoS::AtLeastOnce).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(String, Vec<u8>, bool)>();
    std::thread::spawn(move || {
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) if tx.send((p.topic.clone(), p.payload.to_vec(), p.retain)).is_err() => break,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
                _ => {}
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));

    // The committed Ped2 model on a synthetic clip: with threshold -1e9 every frame is anomalous.
    let data = tmp.path().join("data");
    sfn_trainer::synth::write_walkway(&data, &sfn_trainer::synth::SynthConfig { train_clips: 1, test_clips: 1, frames_per_clip: 20, ..Default::default() }).unwrap();
    let clip = data.join("testing/frames/01");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/ped2-cpu/onnx");
    let cfg = tmp.path().join("edge.toml");
    std::fs::write(
        &cfg,
        format!(
            "device = \"cam9\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\n[alarm]\nthreshold = -1e9\nraise_after = 2\n[sinks.mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nspool_dir = \"{}\"\n",
            model.display(),
            clip.display(),
            tmp.path().join("spool").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["run", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut got: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if let Ok(m) = rx.recv_timeout(Duration::from_millis(100)) {
            got.push(m);
        }
        if got.iter().any(|(t, p, _)| t == "sfn/cam9/available" && p == b"offline") {
            break;
        }
    }
    let topic = |t: &str| got.iter().filter(|(tt, _, _)| tt == t).collect::<Vec<_>>();
    let avail: Vec<&[u8]> = topic("sfn/cam9/available").iter().map(|(_, p, _)| &p[..]).collect();
    assert_eq!(avail.first(), Some(&&b"online"[..]), "{avail:?}");
    assert_eq!(avail.last(), Some(&&b"offline"[..]), "{avail:?}");
    let alarms = topic("sfn/cam9/alarm");
    assert_eq!(alarms.len(), 1, "{got:?}");
    let p = sfn_wire::ScorePacket::decode(&alarms[0].1).unwrap();
    assert_eq!(p.alarm, sfn_wire::AlarmState::Raised);
    assert_eq!(p.frame, 5);
    let json: serde_json::Value = serde_json::from_slice(&topic("sfn/cam9/alarm/json")[0].1).unwrap();
    assert_eq!((json["device"].as_str(), json["state"].as_str(), json["start_frame"].as_u64()), (Some("cam9"), Some("raised"), Some(4)));
    // Scores: batches of COBS frames; every one decodes, frames 4.. in order.
    let mut d = sfn_wire::Deframer::<64>::new();
    let frames: Vec<u32> = topic("sfn/cam9/score").iter().flat_map(|(_, p, _)| d.feed(p).map(|r| r.unwrap().frame).collect::<Vec<_>>()).collect();
    assert!(!frames.is_empty() && frames.windows(2).all(|w| w[1] == w[0] + 1) && frames[0] == 4, "{frames:?}");
    // The spool is empty: every alarm was acknowledged.
    assert_eq!(std::fs::read_dir(tmp.path().join("spool")).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".sfna")).count(), 0);
}
