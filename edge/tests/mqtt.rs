//! `sfn-edge run` reporting to a real mosquitto (started by the test on a free loopback port): the
//! device comes online, its alarm arrives as a 32-byte packet with the JSON mirror, scores arrive
//! batched as COBS-framed packets, the alarm's snapshot arrives as a retained JPEG of the source size
//! (and lands in its event folder), and a clean stop leaves "offline" retained.

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
    let mut sub = Subscriber::new("test-sub", port, &["sfn/cam9/#"]);

    // The committed Ped2 model on a synthetic clip: with threshold -1e9 every frame is anomalous.
    let data = tmp.path().join("data");
    sfn_trainer::synth::write_walkway(&data, &sfn_trainer::synth::SynthConfig { train_clips: 1, test_clips: 1, frames_per_clip: 20, ..Default::default() }).unwrap();
    let clip = data.join("testing/frames/01");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/ped2-cpu/onnx");
    let cfg = tmp.path().join("edge.toml");
    std::fs::write(
        &cfg,
        format!(
            "device = \"cam9\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\n[alarm]\nthreshold = -1e9\nraise_after = 2\n[sinks.mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nspool_dir = \"{}\"\n[snapshot]\ndir = \"events\"\nmin_interval_s = 0.0\nclip_before = 2\nclip_after = 4\n",
            model.display(),
            clip.display(),
            tmp.path().join("spool").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["run", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    assert!(sub.until(5, |g| g.iter().any(|(t, p, _)| t == "sfn/cam9/available" && p == b"offline")), "{:?}", sub.got);
    let got = &sub.got;
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
    // The snapshot: a JPEG of the source frame's size, retained for whoever subscribes later.
    let first = std::fs::read_dir(&clip).unwrap().map(|e| e.unwrap().path()).min().unwrap();
    let (w, h) = image::image_dimensions(first).unwrap();
    let snaps = topic("sfn/cam9/alarm/snapshot");
    assert!(!snaps.is_empty(), "no snapshot published");
    let mut late = Subscriber::new("late-sub", port, &["sfn/cam9/alarm/snapshot"]);
    assert!(late.until(5, |g| !g.is_empty()), "no retained snapshot");
    let (jpeg, retained) = &late.on("sfn/cam9/alarm/snapshot")[0];
    assert!(*retained);
    assert_eq!(image::guess_format(jpeg).unwrap(), image::ImageFormat::Jpeg);
    let img = image::load_from_memory(jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (w, h));
    assert_eq!(jpeg, &snaps.last().unwrap().1, "the retained one is the last published");
    // Its event folder: the JSON, the snapshots, the clip around the raise (frame 4 before it, 5..8).
    let events: Vec<_> = std::fs::read_dir(tmp.path().join("events")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].file_name().unwrap().to_string_lossy().ends_with("-cam9"));
    let mut clip_files: Vec<String> = std::fs::read_dir(events[0].join("clip")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    clip_files.sort();
    assert_eq!(clip_files, ["000004.jpg", "000005.jpg", "000006.jpg", "000007.jpg", "000008.jpg"]);
    assert!(events[0].join("event.json").is_file() && events[0].join("snapshot-000005.jpg").is_file());
    // The spool is empty: every alarm was acknowledged.
    assert_eq!(std::fs::read_dir(tmp.path().join("spool")).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".sfna")).count(), 0);
}

/// Two cameras of one process report over one MQTT connection, each on its own topics; with Home
/// Assistant discovery the second camera's entities also require the connection's availability.
#[test]
fn several_cameras_share_one_mqtt_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _broker = mosquitto(tmp.path(), port);
    let mut sub = Subscriber::new("multi-sub", port, &["sfn/#", "homeassistant/#"]);
    let (data, onnx) = sfn_e2e::fixture(tmp.path());
    let clip = sfn_e2e::test_clip(&data);
    let cfg = tmp.path().join("edge.toml");
    let source = format!("[camera.source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = false\n", clip.display());
    std::fs::write(
        &cfg,
        format!(
            "device = \"site\"\n[model]\ndir = \"{}\"\n[alarm]\nthreshold = -1e9\n[sinks.mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nspool_dir = \"{}\"\n[sinks.mqtt.home_assistant]\n[[camera]]\nname = \"gate\"\n{source}[[camera]]\nname = \"yard\"\n{source}",
            onnx.display(),
            tmp.path().join("spool").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["run", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let offline = |g: &[(String, Vec<u8>, bool)], t: &str| g.iter().any(|(tt, p, _)| tt == t && p == b"offline");
    assert!(sub.until(5, |g| offline(g, "sfn/site-gate/available") && offline(g, "sfn/site-yard/available")), "{:?}", sub.got);
    for cam in ["site-gate", "site-yard"] {
        assert_eq!(count(&sub.got, &format!("sfn/{cam}/alarm")), 1, "{cam}");
        assert!(count(&sub.got, &format!("sfn/{cam}/score")) >= 1, "{cam}");
    }
    // One connection at the broker, under the first camera's client id.
    let log = std::fs::read_to_string(tmp.path().join("mosquitto.log")).unwrap();
    let reporters = log.lines().filter(|l| l.contains("New client connected") && l.contains(" as sfn-")).count();
    assert_eq!(reporters, 1, "{log}");
    assert!(log.contains("as sfn-site-gate"), "{log}");
    let yard: serde_json::Value = serde_json::from_slice(&sub.on("homeassistant/binary_sensor/sfn_site-yard/alarm/config")[0].0).unwrap();
    assert_eq!((yard["availability_mode"].as_str(), yard["availability"][1]["topic"].as_str()), (Some("all"), Some("sfn/site-gate/available")));
}

/// Collects what a subscriber receives: (topic, payload, retain flag).
struct Subscriber {
    client: Client,
    rx: std::sync::mpsc::Receiver<(String, Vec<u8>, bool)>,
    got: Vec<(String, Vec<u8>, bool)>,
}

impl Subscriber {
    fn new(id: &str, port: u16, filters: &[&str]) -> Subscriber {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        // Snapshots are larger than rumqttc's default 10 KiB limit.
        o.set_max_packet_size(2 << 20, 2 << 20);
        let (client, mut conn) = Client::new(o, 100);
        for f in filters {
            client.subscribe(*f, QoS::AtLeastOnce).unwrap();
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (sub_tx, sub_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(Event::Incoming(Packet::Publish(p))) if tx.send((p.topic.clone(), p.payload.to_vec(), p.retain)).is_err() => break,
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    _ => {}
                }
            }
        });
        for _ in filters {
            sub_rx.recv_timeout(Duration::from_secs(5)).expect("SUBACK");
        }
        Subscriber { client, rx, got: Vec::new() }
    }

    /// Receives until `done` holds for what was received (or `secs` pass); true if it did.
    fn until(&mut self, secs: u64, done: impl Fn(&[(String, Vec<u8>, bool)]) -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while !done(&self.got) {
            if Instant::now() > end {
                return false;
            }
            if let Ok(m) = self.rx.recv_timeout(Duration::from_millis(50)) {
                self.got.push(m);
            }
        }
        true
    }

    fn on(&self, topic: &str) -> Vec<(Vec<u8>, bool)> {
        self.got.iter().filter(|(t, _, _)| t == topic).map(|(_, p, r)| (p.clone(), *r)).collect()
    }
}

fn count(got: &[(String, Vec<u8>, bool)], topic: &str) -> usize {
    got.iter().filter(|(t, _, _)| t == topic).count()
}

/// Home Assistant discovery: retained configs for the alarm binary_sensor and the score sensor on
/// connect, published again when Home Assistant's birth message (`homeassistant/status` = online)
/// arrives, and nothing for other payloads; the status carries the score the sensor reads.
#[test]
fn home_assistant_discovery_on_connect_and_on_birth() {
    let tmp = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _broker = mosquitto(tmp.path(), port);
    let mut sub = Subscriber::new("ha-sub", port, &["homeassistant/#", "sfn/hacam/#"]);
    let (data, onnx) = sfn_e2e::fixture(tmp.path());
    let cfg = tmp.path().join("edge.toml");
    std::fs::write(
        &cfg,
        format!(
            "device = \"hacam\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = true\nfps = 8\n[alarm]\nthreshold = -1e9\n[health]\nperiod_s = 0.5\n[sinks.mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nspool_dir = \"{}\"\n[sinks.mqtt.home_assistant]\nname = \"Hall camera\"\n",
            onnx.display(),
            sfn_e2e::test_clip(&data).display(),
            tmp.path().join("spool").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["run", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "warn").spawn().unwrap();
    let alarm_cfg = "homeassistant/binary_sensor/sfn_hacam/alarm/config";
    let score_cfg = "homeassistant/sensor/sfn_hacam/score/config";
    assert!(sub.until(10, |g| count(g, alarm_cfg) == 1 && count(g, score_cfg) == 1), "{:?}", sub.got);
    // Not a birth message: nothing again. Then Home Assistant comes online: configs again.
    sub.client.publish("homeassistant/status", QoS::AtLeastOnce, false, "offline").unwrap();
    sub.client.publish("homeassistant/other", QoS::AtLeastOnce, false, "online").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    sub.client.publish("homeassistant/status", QoS::AtLeastOnce, false, "online").unwrap();
    assert!(sub.until(5, |g| count(g, alarm_cfg) == 2 && count(g, score_cfg) == 2), "{:?}", sub.got);
    assert!(sub.until(5, |g| g.iter().any(|(t, p, _)| t == "sfn/hacam/status" && serde_json::from_slice::<serde_json::Value>(p).is_ok_and(|v| v["score_peak"].is_number()))), "{:?}", sub.got);
    assert!(child.wait().unwrap().success());
    assert!(sub.until(5, |g| g.iter().any(|(t, p, _)| t == "sfn/hacam/available" && p == b"offline")));
    assert_eq!(count(&sub.got, alarm_cfg), 2, "exactly once on connect and once on birth");

    let alarm: serde_json::Value = serde_json::from_slice(&sub.on(alarm_cfg)[0].0).unwrap();
    assert_eq!(alarm["device_class"], "problem");
    assert_eq!(alarm["state_topic"], "sfn/hacam/alarm/json");
    assert_eq!(alarm["availability_topic"], "sfn/hacam/available");
    assert_eq!(alarm["device"]["name"], "Hall camera");
    assert_eq!(alarm["device"]["sw_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(alarm["device"]["model_id"].as_str().map(str::len), Some(8));
    let score: serde_json::Value = serde_json::from_slice(&sub.on(score_cfg)[0].0).unwrap();
    assert_eq!((score["state_topic"].as_str(), score["value_template"].as_str()), (Some("sfn/hacam/status"), Some("{{ value_json.score_peak }}")));
    // The alarm JSON the binary sensor's template reads.
    let raised: serde_json::Value = serde_json::from_slice(&sub.on("sfn/hacam/alarm/json")[0].0).unwrap();
    assert_eq!(raised["state"], "raised");

    // A hub that starts later finds the configs retained.
    let mut late = Subscriber::new("ha-late", port, &["homeassistant/#"]);
    assert!(late.until(5, |g| g.len() == 2), "{:?}", late.got);
    assert!(late.got.iter().all(|(_, _, retain)| *retain), "{:?}", late.got);
}

/// SIGTERM while an alarm is up: exit 0 within 5 s; with the broker away the alarm stays in the spool,
/// and after a restart with the broker back every alarm arrives once, in order, then `offline`.
#[test]
fn sigterm_with_an_alarm_up_loses_no_alarm_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (data, onnx) = sfn_e2e::fixture(tmp.path());
    let spool = tmp.path().join("spool");
    let spooled = || std::fs::read_dir(&spool).map_or(0, |d| d.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".sfna")).count());
    // Run k starts its clock at k * 100 s, so its alarm is told apart by start_ms.
    let run_until_alarm = |k: u64| {
        let cfg = tmp.path().join(format!("edge{k}.toml"));
        let log = tmp.path().join(format!("alarms{k}.jsonl"));
        std::fs::write(
            &cfg,
            format!(
                "device = \"termcam\"\n[model]\ndir = \"{}\"\n[source]\nkind = \"folder\"\npath = \"{}\"\nrealtime = true\nfps = 10\nstart_time_ms = {}\n[alarm]\nthreshold = -1e9\n[sinks]\njson_file = \"{}\"\n[sinks.mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nspool_dir = \"{}\"\n",
                onnx.display(),
                sfn_e2e::test_clip(&data).display(),
                k * 100_000,
                log.display(),
                spool.display()
            ),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sfn-edge")).args(["run", "--config", cfg.to_str().unwrap()]).env("RUST_LOG", "off").stderr(std::process::Stdio::piped()).spawn().unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&log).unwrap_or_default().contains("\"raised\"") {
            assert!(Instant::now() < end, "no alarm raised");
            std::thread::sleep(Duration::from_millis(20));
        }
        let t0 = Instant::now();
        assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        // Stopped mid-clip (30 frames at 10 fps), not at its end.
        let summary: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
        assert!(summary["frames_in"].as_u64().unwrap() < 25, "{summary}");
    };
    // Two runs while the broker is away: both alarms wait in the spool.
    run_until_alarm(1);
    assert_eq!(spooled(), 1);
    run_until_alarm(2);
    assert_eq!(spooled(), 2);
    // The broker is back: the third run delivers the two spooled alarms first, then its own.
    let _broker = mosquitto(tmp.path(), port);
    let mut sub = Subscriber::new("term-sub", port, &["sfn/termcam/#"]);
    run_until_alarm(3);
    assert!(sub.until(5, |g| g.iter().any(|(t, p, _)| t == "sfn/termcam/available" && p == b"offline")), "{:?}", sub.got);
    let starts: Vec<u64> = sub.on("sfn/termcam/alarm/json").iter().map(|(p, _)| serde_json::from_slice::<serde_json::Value>(p).unwrap()["start_ms"].as_u64().unwrap() / 100_000).collect();
    assert_eq!(starts, [1, 2, 3], "each alarm once, in order");
    assert_eq!(sub.on("sfn/termcam/alarm").len(), 3);
    assert_eq!(spooled(), 0);
}
