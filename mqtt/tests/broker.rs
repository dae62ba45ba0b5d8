//! Integration tests against a real mosquitto (installed by `scripts/setup.sh`).
//!
//! Every test spawns its own `mosquitto -c FILE` on a free loopback port (found by binding port
//! 0), with a config in a temporary directory, and kills it when done (a Drop guard). Subscribers
//! are rumqttc clients. "Broker away" is either a real broker kill/restart on the same port, or a
//! small TCP proxy in front of the broker that refuses connections (when the subscriber must stay
//! connected meanwhile).

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use sfn_mqtt::{Reporter, ReporterOptions, Stats, TlsOptions};

// ------------------------------------------------------------------------------------------
// Harness

fn mosquitto_bin() -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("mosquitto");
            if p.is_file() {
                return p;
            }
        }
    }
    let p = PathBuf::from("/usr/sbin/mosquitto");
    assert!(p.is_file(), "mosquitto not found on PATH nor in /usr/sbin: run `bash scripts/setup.sh`");
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < end, "timed out after {timeout:?} waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A mosquitto process; killed on drop.
struct Broker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    persistence: bool,
    extra: String,
}

impl Broker {
    /// Start mosquitto on `port` with its config, log (and database) in `dir`.
    fn start(dir: &Path, port: u16, persistence: bool) -> Broker {
        Broker::start_with(dir, port, persistence, "")
    }

    /// Same, with `extra` appended to the config (more listeners).
    fn start_with(dir: &Path, port: u16, persistence: bool, extra: &str) -> Broker {
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        // per_listener_settings must come before the listeners it affects.
        let (global, extra) = match extra.strip_prefix("per_listener_settings true\n") {
            Some(rest) => ("per_listener_settings true\n", rest),
            None => ("", extra),
        };
        let mut text = format!("{global}listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nuser root\n");
        if persistence {
            // Autosave after every change, so a subscriber's session survives even SIGKILL.
            text += &format!("persistence true\npersistence_location {}/\nautosave_interval 1\nautosave_on_changes true\n", dir.display());
        } else {
            text += "persistence false\n";
        }
        text += extra;
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("mosquitto.log")).unwrap();
        let child = Command::new(mosquitto_bin()).arg("-c").arg(&conf).stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawn mosquitto");
        let mut b = Broker { child: Some(child), port, dir: dir.to_path_buf(), persistence, extra: format!("{global}{extra}") };
        wait_until("mosquitto to accept connections", Duration::from_secs(5), || {
            if let Some(status) = b.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("mosquitto exited ({status}); log:\n{}", b.log());
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        b
    }

    fn restart(&mut self) {
        assert!(self.child.is_none(), "stop it first");
        *self = Broker::start_with(&self.dir.clone(), self.port, self.persistence, &self.extra.clone());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// SIGKILL: no goodbye, no database save.
    fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM: mosquitto closes its sockets and saves its database.
    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let ok = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status().unwrap().success();
            assert!(ok, "kill -TERM failed");
            c.wait().unwrap();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// A TCP proxy to the broker that can refuse connections ("broker away" for the reporter while
/// the test's subscriber, connected directly, stays on).
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: u16, up: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Proxy { port, up: Arc::new(AtomicBool::new(up)), stop: Arc::new(AtomicBool::new(false)), conns: Arc::new(Mutex::new(Vec::new())) };
        let (up, stop, conns) = (p.up.clone(), p.stop.clone(), p.conns.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((down, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(2));
                    continue;
                };
                if !up.load(Ordering::SeqCst) {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                }
                down.set_nonblocking(false).unwrap();
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                conns.lock().unwrap().extend([down.try_clone().unwrap(), upstream.try_clone().unwrap()]);
                for (mut r, mut w) in [(down.try_clone().unwrap(), upstream.try_clone().unwrap()), (upstream, down)] {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut r, &mut w);
                        let _ = w.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        p
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

#[derive(Clone, Debug)]
struct Msg {
    topic: String,
    payload: Vec<u8>,
    qos: QoS,
    retain: bool,
}

/// A rumqttc subscriber on its own thread, collecting what arrives.
struct Sub {
    msgs: Arc<Mutex<Vec<Msg>>>,
    subscribed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    client: Client,
}

impl Sub {
    /// Connect as `id` and subscribe to `filter`; `persistent`: clean_session = false.
    fn start(port: u16, id: &str, filter: &str, qos: QoS, persistent: bool) -> Sub {
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        o.set_clean_session(!persistent);
        // Snapshots are larger than rumqttc's default 10 KiB limit.
        o.set_max_packet_size(2 << 20, 2 << 20);
        let (client, mut conn) = Client::new(o, 64);
        let s = Sub { msgs: Arc::default(), subscribed: Arc::default(), stop: Arc::default(), client: client.clone() };
        let (msgs, subscribed, stop) = (s.msgs.clone(), s.subscribed.clone(), s.stop.clone());
        let filter = filter.to_string();
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match conn.recv_timeout(Duration::from_millis(50)) {
                    Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                        client.try_subscribe(filter.clone(), qos).unwrap();
                    }
                    Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => subscribed.store(true, Ordering::SeqCst),
                    Ok(Ok(Event::Incoming(Packet::Publish(p)))) => msgs.lock().unwrap().push(Msg { topic: p.topic.clone(), payload: p.payload.to_vec(), qos: p.qos, retain: p.retain }),
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => thread::sleep(Duration::from_millis(20)), // broker away: retry
                    Err(rumqttc::RecvTimeoutError::Timeout) => {}
                    Err(rumqttc::RecvTimeoutError::Disconnected) => break,
                }
            }
        });
        wait_until("subscription", Duration::from_secs(5), || s.subscribed.load(Ordering::SeqCst));
        s
    }

    fn msgs(&self) -> Vec<Msg> {
        self.msgs.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&[Msg]) -> bool) -> Vec<Msg> {
        wait_until(what, timeout, || cond(&self.msgs.lock().unwrap()));
        self.msgs()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
    }
}

fn options(device: &str, port: u16, spool: &Path) -> ReporterOptions {
    let mut o = ReporterOptions::new(device, spool);
    o.port = port;
    o.keep_alive = Duration::from_secs(5);
    o.backoff_min = Duration::from_millis(20);
    o.backoff_max = Duration::from_millis(200);
    o
}

fn wait_stats(r: &Reporter, what: &str, timeout: Duration, mut cond: impl FnMut(&Stats) -> bool) -> Stats {
    let end = Instant::now() + timeout;
    loop {
        let s = r.stats();
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?} waiting for {what}; stats: {s:?}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Log to the test's captured output (shown for failing tests); RUST_LOG overrides the level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("sfn_mqtt=debug,rumqttc=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

fn spool_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("alarm-")).collect();
    v.sort();
    v
}

fn alarm_packet(i: u32) -> Vec<u8> {
    let mut p = b"AL".to_vec();
    p.extend_from_slice(&i.to_le_bytes());
    p
}

fn alarm_index(m: &Msg) -> u32 {
    if m.topic.ends_with("/json") {
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        v["i"].as_u64().unwrap() as u32
    } else {
        assert_eq!(&m.payload[..2], b"AL");
        u32::from_le_bytes(m.payload[2..6].try_into().unwrap())
    }
}

/// Indices in order of first arrival, and how many arrivals were duplicates.
fn first_arrivals(msgs: &[Msg], topic: &str) -> (Vec<u32>, usize) {
    let mut seen = HashSet::new();
    let mut order = Vec::new();
    let mut dups = 0;
    for m in msgs.iter().filter(|m| m.topic == topic) {
        let i = alarm_index(m);
        if seen.insert(i) {
            order.push(i);
        } else {
            dups += 1;
        }
    }
    (order, dups)
}

// ------------------------------------------------------------------------------------------
// Tests

#[test]
fn several_devices_share_one_connection_and_shut_down_one_by_one() {
    init_logging();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = Broker::start(&tmp.path().join("broker"), port, false);
    let sub = Sub::start(port, "t-shared-1", "sfn/#", QoS::AtLeastOnce, false);
    let mut opts = vec![options("gate", port, &tmp.path().join("spool/gate")), options("yard", port, &tmp.path().join("spool/yard"))];
    opts[0].client_id = Some("sfn-site".into());
    let mut rs = Reporter::start_shared(opts).unwrap();
    let yard = rs.pop().unwrap();
    let gate = rs.pop().unwrap();
    assert_eq!((gate.topics().alarm.as_str(), yard.topics().alarm.as_str()), ("sfn/gate/alarm", "sfn/yard/alarm"));
    gate.push_alarm(alarm_packet(1), r#"{"i":1}"#).unwrap();
    yard.push_alarm(alarm_packet(2), r#"{"i":2}"#).unwrap();
    yard.push_score(vec![0x02, 0x07, 0x00]).unwrap();
    wait_stats(&gate, "gate's alarm acked", Duration::from_secs(10), |s| s.alarms_acked == 1);
    wait_stats(&yard, "yard's alarm acked", Duration::from_secs(10), |s| s.alarms_acked == 1);
    let m = sub.wait_for("both online, both alarms, the score", Duration::from_secs(5), |m| m.iter().filter(|m| m.payload == b"online").count() == 2 && m.iter().any(|m| m.topic == "sfn/yard/score"));
    let on = |t: &str| m.iter().filter(|x| x.topic == t).map(|x| x.payload.clone()).collect::<Vec<_>>();
    assert_eq!(on("sfn/gate/alarm"), vec![alarm_packet(1)]);
    assert_eq!(on("sfn/yard/alarm"), vec![alarm_packet(2)]);
    assert_eq!(on("sfn/gate/available"), vec![b"online".to_vec()]);
    assert_eq!(on("sfn/yard/available"), vec![b"online".to_vec()]);
    // One client at the broker for both devices.
    let log = broker.log();
    assert_eq!(log.matches("New client connected").count(), 2, "the subscriber and one reporter connection: {log}");
    assert!(log.contains("as sfn-site"), "{log}");
    // The gate shuts down alone: its offline goes out, the yard keeps reporting on the connection.
    let g = gate.shutdown();
    assert!(g.alarms_acked == 1 && g.queued_alarms == 0, "{g:?}");
    sub.wait_for("gate offline", Duration::from_secs(5), |m| m.iter().any(|m| m.topic == "sfn/gate/available" && m.payload == b"offline"));
    yard.push_alarm(alarm_packet(3), r#"{"i":3}"#).unwrap();
    wait_stats(&yard, "yard's second alarm acked", Duration::from_secs(10), |s| s.alarms_acked == 2);
    assert!(!sub.msgs().iter().any(|m| m.topic == "sfn/yard/available" && m.payload == b"offline"));
    let y = yard.shutdown();
    assert_eq!(y.alarms_acked, 2);
    sub.wait_for("yard offline", Duration::from_secs(5), |m| m.iter().any(|m| m.topic == "sfn/yard/available" && m.payload == b"offline"));
    assert_eq!(broker.log().matches("New client connected").count(), 2, "no reconnection on the way");
    // Devices of one connection must name one broker and differ.
    let mut bad = vec![options("a", port, &tmp.path().join("s/a")), options("b", port + 1, &tmp.path().join("s/b"))];
    assert!(matches!(Reporter::start_shared(bad.clone()), Err(sfn_mqtt::Error::Options(m)) if m.contains("broker")));
    bad[1] = options("a", port, &tmp.path().join("s/c"));
    assert!(matches!(Reporter::start_shared(bad), Err(sfn_mqtt::Error::Options(m)) if m.contains("twice")));
}

#[test]
fn snapshot_is_retained_for_late_subscribers_and_oversized_ones_are_refused() {
    init_logging();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(&tmp.path().join("broker"), port, false);
    let r = Reporter::start(options("snap", port, &tmp.path().join("spool"))).unwrap();
    assert_eq!(r.topics().snapshot, "sfn/snap/alarm/snapshot");
    // Larger than the other payloads may be: a full-resolution JPEG.
    let big: Vec<u8> = (0..600_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let publisher = r.snapshots();
    std::thread::spawn(move || publisher.set(big)).join().unwrap().unwrap();
    wait_stats(&r, "snapshot acked", Duration::from_secs(10), |s| s.snapshots_acked == 1);
    let late = Sub::start(port, "t-snap-1", "sfn/snap/alarm/snapshot", QoS::AtLeastOnce, false);
    let m = late.wait_for("retained snapshot", Duration::from_secs(5), |m| !m.is_empty());
    let want: Vec<u8> = (0..600_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    assert!(m[0].payload == want && m[0].retain && m[0].qos == QoS::AtLeastOnce);
    let e = r.set_snapshot(vec![0u8; sfn_mqtt::MAX_SNAPSHOT_BYTES + 1]).unwrap_err();
    assert!(matches!(e, sfn_mqtt::Error::PayloadTooLarge { what: "snapshot", .. }), "{e}");
    let stats = r.shutdown();
    assert_eq!((stats.snapshots_pushed, stats.snapshots_acked), (1, 1));
}

#[test]
fn availability_online_retained_and_offline_on_clean_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(&tmp.path().join("broker"), port, false);
    let sub = Sub::start(port, "t-avail-1", "sfn/avail/#", QoS::AtLeastOnce, false);
    let r = Reporter::start(options("avail", port, &tmp.path().join("spool"))).unwrap();
    assert_eq!(r.topics().available, "sfn/avail/available");
    r.set_status(r#"{"fps":12.5,"model":"sfn-s"}"#).unwrap();
    let m = sub.wait_for("online + status", Duration::from_secs(5), |m| m.len() >= 2);
    assert_eq!((m[0].topic.as_str(), m[0].payload.as_slice()), ("sfn/avail/available", &b"online"[..]));
    assert_eq!(m[1].topic, "sfn/avail/status");

    // A subscriber arriving later gets both as retained messages.
    let late = Sub::start(port, "t-avail-2", "sfn/avail/#", QoS::AtLeastOnce, false);
    let m = late.wait_for("retained online + status", Duration::from_secs(5), |m| m.len() >= 2);
    let online = m.iter().find(|m| m.topic == "sfn/avail/available").expect("availability");
    assert_eq!((online.payload.as_slice(), online.retain, online.qos), (&b"online"[..], true, QoS::AtLeastOnce));
    let status = m.iter().find(|m| m.topic == "sfn/avail/status").expect("status");
    assert_eq!(status.payload, br#"{"fps":12.5,"model":"sfn-s"}"#);
    assert!(status.retain);
    drop(late);

    let t = Instant::now();
    let stats = r.shutdown();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert!(!stats.connected);
    sub.wait_for("offline", Duration::from_secs(5), |m| m.iter().any(|m| m.payload == b"offline"));
    // And it stays: retained for whoever comes next.
    let late = Sub::start(port, "t-avail-3", "sfn/avail/available", QoS::AtLeastOnce, false);
    let m = late.wait_for("retained offline", Duration::from_secs(5), |m| !m.is_empty());
    assert_eq!((m[0].payload.as_slice(), m[0].retain), (&b"offline"[..], true));
}

/// Not a test on its own: the reporter process that `last_will_offline_when_the_reporter_process_dies`
/// spawns (this same test binary, with SFN_MQTT_CHILD_PORT set) and then SIGKILLs.
#[test]
fn child_reporter_process() {
    let Ok(port) = std::env::var("SFN_MQTT_CHILD_PORT") else { return };
    let spool = std::env::var("SFN_MQTT_CHILD_SPOOL").unwrap();
    let r = Reporter::start(options("will", port.parse().unwrap(), Path::new(&spool))).unwrap();
    wait_stats(&r, "connect", Duration::from_secs(5), |s| s.connected);
    println!("READY");
    thread::sleep(Duration::from_secs(30));
    panic!("child reporter was not killed");
}

/// Kills the child process if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn last_will_offline_when_the_reporter_process_dies() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(&tmp.path().join("broker"), port, false);
    let sub = Sub::start(port, "t-will", "sfn/will/available", QoS::AtLeastOnce, false);
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["child_reporter_process", "--exact", "--nocapture", "--test-threads=1"])
            .env("SFN_MQTT_CHILD_PORT", port.to_string())
            .env("SFN_MQTT_CHILD_SPOOL", tmp.path().join("spool"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.unwrap().contains("READY")), "child reporter did not connect");
    sub.wait_for("online", Duration::from_secs(5), |m| m.iter().any(|m| m.payload == b"online"));

    // SIGKILL: no DISCONNECT, the kernel just closes the socket; the broker sends the will.
    let t = Instant::now();
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let m = sub.wait_for("last will", Duration::from_secs(5), |m| m.iter().any(|m| m.payload == b"offline"));
    eprintln!("last will arrived {:?} after the kill", t.elapsed());
    assert_eq!(m.last().unwrap().qos, QoS::AtLeastOnce);
    let late = Sub::start(port, "t-will-2", "sfn/will/available", QoS::AtLeastOnce, false);
    let m = late.wait_for("retained will", Duration::from_secs(5), |m| !m.is_empty());
    assert_eq!((m[0].payload.as_slice(), m[0].retain), (&b"offline"[..], true));
}

#[test]
fn alarms_arrive_qos1_with_json_mirror_and_spool_is_emptied() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let spool = tmp.path().join("spool");
    let _broker = Broker::start(&tmp.path().join("broker"), port, false);
    let sub = Sub::start(port, "t-alarm", "sfn/alarm-dev/alarm/#", QoS::AtLeastOnce, false);
    let r = Reporter::start(options("alarm-dev", port, &spool)).unwrap();
    wait_stats(&r, "connect", Duration::from_secs(5), |s| s.connected);
    for i in 0..20 {
        r.push_alarm(alarm_packet(i), format!(r#"{{"i":{i},"label":"fall"}}"#)).unwrap();
    }
    let m = sub.wait_for("40 messages", Duration::from_secs(5), |m| m.len() >= 40);
    assert_eq!(m.len(), 40);
    for (k, pair) in m.chunks(2).enumerate() {
        assert_eq!(pair[0].topic, "sfn/alarm-dev/alarm");
        assert_eq!(pair[0].payload, alarm_packet(k as u32));
        assert_eq!(pair[1].topic, "sfn/alarm-dev/alarm/json");
        assert_eq!(pair[1].payload, format!(r#"{{"i":{k},"label":"fall"}}"#).into_bytes());
        for msg in pair {
            // Delivered at the subscription's QoS 1: it was published with QoS 1.
            assert_eq!((msg.qos, msg.retain), (QoS::AtLeastOnce, false));
        }
    }
    let s = wait_stats(&r, "acks", Duration::from_secs(5), |s| s.alarms_acked == 20);
    assert_eq!((s.alarms_pushed, s.spooled, s.dropped_alarms, s.queued_alarms), (20, 0, 0, 0));
    assert!(spool_files(&spool).is_empty());
    // Oversized payloads are refused up front.
    assert!(matches!(r.push_score(vec![0; 65]), Err(sfn_mqtt::Error::ScoreTooLarge(65))));
    r.shutdown();
}

#[test]
fn scores_arrive_batched() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(&tmp.path().join("broker"), port, false);
    let sub = Sub::start(port, "t-score", "sfn/score-dev/score", QoS::AtLeastOnce, false);
    let mut o = options("score-dev", port, &tmp.path().join("spool"));
    o.batch_max = 4;
    o.batch_interval = Duration::from_millis(500);
    let r = Reporter::start(o).unwrap();
    wait_stats(&r, "connect", Duration::from_secs(5), |s| s.connected);
    // COBS-style frames: 0x00 terminates each, so the concatenation splits back apart.
    let frame = |i: u8| vec![0x03, i, 0xEE, 0x00];
    let t = Instant::now();
    for i in 0..10u8 {
        r.push_score(frame(i)).unwrap();
    }
    let m = sub.wait_for("2 full batches", Duration::from_secs(5), |m| m.len() >= 2);
    let full_after = t.elapsed();
    let m = if m.len() < 3 { sub.wait_for("the partial batch", Duration::from_secs(5), |m| m.len() >= 3) } else { m };
    let partial_after = t.elapsed();
    let batches: Vec<Vec<u8>> = m.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(batches[0], (0..4).flat_map(frame).collect::<Vec<_>>());
    assert_eq!(batches[1], (4..8).flat_map(frame).collect::<Vec<_>>());
    assert_eq!(batches[2], (8..10).flat_map(frame).collect::<Vec<_>>());
    assert!(m.iter().all(|m| m.qos == QoS::AtMostOnce && !m.retain));
    // Splitting a batch on the delimiter gives the frames back.
    let parts: Vec<&[u8]> = batches[2].split_inclusive(|&b| b == 0).collect();
    assert_eq!(parts, vec![&frame(8)[..], &frame(9)[..]]);
    assert!(full_after < Duration::from_millis(500), "full batches did not wait ({full_after:?})");
    assert!(partial_after >= Duration::from_millis(500), "partial batch waited the interval ({partial_after:?})");
    eprintln!("full batches after {full_after:?}, partial batch after {partial_after:?}");
    let s = r.shutdown();
    assert_eq!((s.scores_pushed, s.scores_published, s.score_batches, s.dropped_scores), (10, 10, 3, 0));
}

#[test]
fn ring_drops_oldest_scores_while_away_and_counts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = Broker::start(&tmp.path().join("broker"), port, false);
    let proxy = Proxy::start(port, false);
    let sub = Sub::start(port, "t-ring", "sfn/ring-dev/score", QoS::AtLeastOnce, false);
    let mut o = options("ring-dev", proxy.port, &tmp.path().join("spool"));
    o.batch_max = 4;
    o.ring_max = 8;
    let r = Reporter::start(o).unwrap();
    for i in 0..20u8 {
        r.push_score(vec![i, 0]).unwrap();
    }
    let s = wait_stats(&r, "scores queued, a connect refused", Duration::from_secs(5), |s| s.scores_pushed == 20 && s.connect_failures >= 1);
    assert!(!s.connected && s.connect_failures >= 1, "{s:?}");
    assert_eq!((s.dropped_scores, s.queued_scores), (12, 8));
    proxy.set_up(true);
    let m = sub.wait_for("ring flush", Duration::from_secs(5), |m| m.len() >= 2);
    let got: Vec<Vec<u8>> = m.iter().map(|m| m.payload.clone()).collect();
    assert_eq!(got, vec![vec![12, 0, 13, 0, 14, 0, 15, 0], vec![16, 0, 17, 0, 18, 0, 19, 0]]);
    let s = r.shutdown();
    assert_eq!((s.scores_published, s.dropped_scores, s.queued_scores), (8, 12, 0));
}

#[test]
fn spool_survives_a_restart_of_the_reporter() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let spool = tmp.path().join("spool");

    // Run 1: no broker at all. Alarms go to disk only.
    let r = Reporter::start(options("restart-dev", port, &spool)).unwrap();
    for i in 0..5 {
        r.push_alarm(alarm_packet(i), format!(r#"{{"i":{i}}}"#)).unwrap();
    }
    let s = wait_stats(&r, "spooled", Duration::from_secs(5), |s| s.alarms_pushed == 5);
    assert_eq!((s.spooled, s.queued_alarms, s.alarms_acked), (5, 5, 0));
    assert_eq!(spool_files(&spool).len(), 5);
    // A second reporter on the same spool is refused while the first holds it.
    let e = Reporter::start(options("restart-dev", port, &spool)).unwrap_err();
    assert!(matches!(e, sfn_mqtt::Error::SpoolLocked(_)), "{e}");
    let t = Instant::now();
    r.shutdown();
    assert!(t.elapsed() < Duration::from_secs(1), "shutdown while away is immediate");
    assert_eq!(spool_files(&spool).len(), 5, "alarms stay on disk");

    // Run 2: broker up; the new reporter delivers the old alarms first, then its own.
    let _broker = Broker::start(&tmp.path().join("broker"), port, false);
    let sub = Sub::start(port, "t-restart", "sfn/restart-dev/alarm", QoS::AtLeastOnce, false);
    let r = Reporter::start(options("restart-dev", port, &spool)).unwrap();
    wait_stats(&r, "connect", Duration::from_secs(5), |s| s.connected);
    r.push_alarm(alarm_packet(5), r#"{"i":5}"#).unwrap();
    let m = sub.wait_for("6 alarms", Duration::from_secs(5), |m| m.len() >= 6);
    let got: Vec<u32> = m.iter().map(alarm_index).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
    let s = wait_stats(&r, "acks", Duration::from_secs(5), |s| s.alarms_acked == 6);
    // The recovered ones count as delivered from the spool; the new one went straight out.
    assert_eq!((s.alarms_recovered, s.alarms_pushed, s.delivered_from_spool, s.spooled), (5, 1, 5, 0));
    assert_eq!(s.queued_alarms, 0);
    assert!(spool_files(&spool).is_empty());
    r.shutdown();
}

/// Alarms keep coming while mosquitto dies and comes back on the same port.
///
/// The subscriber has a persistent session (clean_session = false, QoS 1) on a broker with
/// persistence, so that it misses nothing the broker accepted: otherwise alarms resent by the
/// reporter before the subscriber itself reconnected would be lost to the *test*.
/// - `hard = false`: SIGTERM. mosquitto saves everything it acknowledged, so EVERY alarm must
///   arrive, first arrivals exactly in push order.
/// - `hard = true`: SIGKILL. The broker may lose messages it had already acknowledged (its
///   autosave can lag), which is no fault of the reporter; what the reporter guarantees is that
///   every alarm without a PUBACK at the moment of the kill is delivered again, in order.
///
/// Duplicates are allowed: an alarm that reached the broker whose PUBACK was lost with the
/// connection is published again (QoS 1 redelivery), and the broker may redeliver too.
fn broker_outage_mid_stream(device: &str, hard: bool) {
    init_logging();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let spool = tmp.path().join("spool");
    let mut broker = Broker::start(&tmp.path().join("broker"), port, true);
    let topic = format!("sfn/{device}/alarm");
    let sub = Sub::start(port, &format!("t-{device}"), &format!("{topic}/#"), QoS::AtLeastOnce, true);
    let r = Reporter::start(options(device, port, &spool)).unwrap();
    wait_stats(&r, "connect", Duration::from_secs(5), |s| s.connected);

    let restarted = AtomicBool::new(false);
    let (pushed, acked_at_cut, spooled_files_seen) = thread::scope(|scope| {
        let producer = scope.spawn(|| {
            let mut i = 0u32;
            let mut after = 0;
            // An alarm every 10 ms (far above a real camera's rate; each costs an fsync) until
            // 30 alarms after the restart.
            while after < 30 {
                r.push_alarm(alarm_packet(i), format!(r#"{{"i":{i}}}"#)).unwrap();
                i += 1;
                if restarted.load(Ordering::SeqCst) {
                    after += 1;
                }
                thread::sleep(Duration::from_millis(10));
            }
            i
        });
        wait_stats(&r, "alarms flowing", Duration::from_secs(10), |s| s.alarms_acked >= 30);
        if hard {
            broker.kill_hard();
        } else {
            broker.terminate();
        }
        // Once the reporter saw the connection end, every PUBACK of it has been counted.
        let acked_at_cut = wait_stats(&r, "disconnect noticed", Duration::from_secs(10), |s| !s.connected).alarms_acked;
        thread::sleep(Duration::from_millis(300));
        let s = r.stats();
        assert!(s.queued_alarms > 5, "alarms pile up while the broker is away: {s:?}");
        let files = spool_files(&spool).len();
        broker.restart();
        restarted.store(true, Ordering::SeqCst);
        (producer.join().unwrap(), acked_at_cut, files)
    });
    assert!(spooled_files_seen > 5, "spool files during the outage: {spooled_files_seen}");
    let n = pushed;

    let s = wait_stats(&r, "all acked", Duration::from_secs(10), |s| s.alarms_acked == n as u64);
    assert_eq!((s.alarms_pushed, s.dropped_alarms, s.queued_alarms), (n as u64, 0, 0));
    assert!(s.reconnects >= 1, "{s:?}");
    assert!(s.spooled > 0 && s.delivered_from_spool > 0 && s.delivered_from_spool <= s.spooled, "{s:?}");
    assert_eq!(s.alarms_pushed + s.alarms_recovered, s.alarms_acked + s.dropped_alarms + s.queued_alarms as u64);
    assert!(spool_files(&spool).is_empty(), "spool cleaned: {:?}", spool_files(&spool));

    let json_topic = format!("{topic}/json");
    let need: Vec<u32> = if hard { (acked_at_cut as u32..n).collect() } else { (0..n).collect() };
    let msgs = sub.wait_for("every alarm at the subscriber", Duration::from_secs(10), |m| {
        let got: HashSet<u32> = m.iter().filter(|m| m.topic == topic).map(alarm_index).collect();
        let got_json: HashSet<u32> = m.iter().filter(|m| m.topic == json_topic).map(alarm_index).collect();
        need.iter().all(|i| got.contains(i) && got_json.contains(i))
    });
    for t in [&topic, &json_topic] {
        let (order, dups) = first_arrivals(&msgs, t);
        if hard {
            let tail: Vec<u32> = order.into_iter().filter(|&i| i >= acked_at_cut as u32).collect();
            assert_eq!(tail, need, "{t}: unacknowledged alarms in order");
        } else {
            assert_eq!(order, need, "{t}: every alarm, in order");
        }
        let got: HashSet<u32> = msgs.iter().filter(|m| &m.topic == t).map(alarm_index).collect();
        let lost_by_broker = (0..acked_at_cut as u32).filter(|i| !got.contains(i)).count();
        eprintln!(
            "{device} {t}: {n} alarms, {acked_at_cut} acked before the cut ({lost_by_broker} of them lost by the \
             broker), {} spooled, {} delivered from spool, {dups} duplicate arrivals",
            s.spooled, s.delivered_from_spool
        );
    }
    r.shutdown();
}

#[test]
fn broker_terminated_mid_stream_every_alarm_arrives_in_order() {
    broker_outage_mid_stream("outage-term", false);
}

#[test]
fn broker_killed_mid_stream_unacked_alarms_are_redelivered_in_order() {
    broker_outage_mid_stream("outage-kill", true);
}

/// A throwaway PKI made for one test: a CA, a server certificate for 127.0.0.1/localhost and a
/// client certificate signed by it, and an unrelated self-signed "rogue" CA. PEM files in `dir`:
/// ca.pem, server.pem/.key, client.pem/.key, rogue-ca.pem (keys PKCS#8, EC P-256).
fn make_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    let ca_params = |cn: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        p.distinguished_name.push(DnType::CommonName, cn);
        p
    };
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params("sfn-test-ca");
    write("ca.pem", ca.self_signed(&ca_key).unwrap().pem());
    let issuer = Issuer::new(ca, ca_key);
    for (name, sans, eku) in [("server", vec!["localhost".to_string(), "127.0.0.1".to_string()], ExtendedKeyUsagePurpose::ServerAuth), ("client", vec![], ExtendedKeyUsagePurpose::ClientAuth)] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, format!("sfn-test-{name}"));
        p.extended_key_usages = vec![eku];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        write(&format!("{name}.pem"), p.signed_by(&key, &issuer).unwrap().pem());
        write(&format!("{name}.key"), key.serialize_pem());
    }
    let rogue_key = KeyPair::generate().unwrap();
    write("rogue-ca.pem", ca_params("sfn-rogue-ca").self_signed(&rogue_key).unwrap().pem());
}

#[test]
fn tls_with_client_certificate_against_mosquitto() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("pki");
    make_pki(&certs);
    let (port, tls_port) = (free_port(), free_port());
    let extra = format!(
        "listener {tls_port} 127.0.0.1\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n\
         require_certificate true\n",
        certs.display()
    );
    let _broker = Broker::start_with(&tmp.path().join("broker"), port, false, &extra);
    wait_until("TLS listener", Duration::from_secs(5), || TcpStream::connect(("127.0.0.1", tls_port)).is_ok());
    let sub = Sub::start(port, "t-tls", "sfn/tls-dev/#", QoS::AtLeastOnce, false);

    let mut o = options("tls-dev", tls_port, &tmp.path().join("spool"));
    o.tls = Some(TlsOptions::new(certs.join("ca.pem")).with_client_auth(certs.join("client.pem"), certs.join("client.key")));
    let r = Reporter::start(o).unwrap();
    wait_stats(&r, "TLS connect", Duration::from_secs(5), |s| s.connected);
    r.push_alarm(alarm_packet(1), r#"{"i":1}"#).unwrap();
    let m = sub.wait_for("online + alarm", Duration::from_secs(5), |m| m.iter().any(|m| m.topic == "sfn/tls-dev/alarm"));
    assert!(m.iter().any(|m| m.topic == "sfn/tls-dev/available" && m.payload == b"online"));
    wait_stats(&r, "ack over TLS", Duration::from_secs(5), |s| s.alarms_acked == 1);
    r.shutdown();

    // A CA the broker's certificate does not chain to: the reporter must refuse the broker.
    let mut o = options("tls-dev-2", tls_port, &tmp.path().join("spool2"));
    o.tls = Some(TlsOptions::new(certs.join("rogue-ca.pem")).with_client_auth(certs.join("client.pem"), certs.join("client.key")));
    let r = Reporter::start(o).unwrap();
    let s = wait_stats(&r, "refused handshake", Duration::from_secs(5), |s| s.connect_failures >= 2);
    assert!(!s.connected);
    r.shutdown();

    // Without a client certificate the broker (require_certificate) refuses us.
    let mut o = options("tls-dev-3", tls_port, &tmp.path().join("spool3"));
    o.tls = Some(TlsOptions::new(certs.join("ca.pem")));
    let r = Reporter::start(o).unwrap();
    let s = wait_stats(&r, "refused by broker", Duration::from_secs(5), |s| s.connect_failures >= 2);
    assert!(!s.connected);
    r.shutdown();

    // Bad paths are reported at start, naming the file.
    let mut o = options("tls-dev-4", tls_port, &tmp.path().join("spool4"));
    o.tls = Some(TlsOptions::new(certs.join("ca.pem")).with_client_auth(certs.join("client.pem"), "/nonexistent/dev.key"));
    let e = Reporter::start(o).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/dev.key"), "{e}");
}

/// Username/password against a broker listener with `allow_anonymous false`, a password file made
/// by `mosquitto_passwd` and an ACL that lets the device write only its own topics.
/// - the right password: alarms delivered, and the device never subscribes to anything (the
///   runtime takes no commands over MQTT, so there is no topic to command it through);
/// - a wrong password or none: refused, alarms kept (spooled) and delivered once the password is right;
/// - an anonymous client can neither connect to the secured listener nor publish to the device's topics.
#[test]
fn username_password_and_acl_against_mosquitto() {
    init_logging();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("broker");
    std::fs::create_dir_all(&dir).unwrap();
    let passwd = dir.join("passwd");
    let ok = Command::new(mosquitto_bin().with_file_name("mosquitto_passwd"))
        .arg("-c")
        .arg("-b")
        .arg(&passwd)
        .args(["cam-1", "s3cret pass"])
        .status()
        .or_else(|_| Command::new("mosquitto_passwd").arg("-c").arg("-b").arg(&passwd).args(["cam-1", "s3cret pass"]).status())
        .expect("mosquitto_passwd (installed with mosquitto by scripts/setup.sh)");
    assert!(ok.success(), "mosquitto_passwd failed");
    let acl = dir.join("acl");
    // The device user may write its own topics and read nothing; "monitor" reads all devices.
    std::fs::write(&acl, "user cam-1\ntopic write sfn/cam-1/#\n\nuser monitor\ntopic read sfn/#\n").unwrap();
    let (port, secure) = (free_port(), free_port());
    let extra = format!("listener {secure} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\nlog_type all\n", passwd.display(), acl.display());
    let broker = Broker::start_with(&dir, port, false, &format!("per_listener_settings true\n{extra}"));
    wait_until("secured listener", Duration::from_secs(5), || TcpStream::connect(("127.0.0.1", secure)).is_ok());
    let sub = Sub::start(port, "t-auth", "sfn/cam-1/#", QoS::AtLeastOnce, false);

    // Wrong password: refused; alarms wait in the spool.
    let spool = tmp.path().join("spool");
    let mut o = options("cam-1", secure, &spool);
    o.credentials = Some(("cam-1".into(), "wrong".into()));
    let r = Reporter::start(o).unwrap();
    r.push_alarm(alarm_packet(0), r#"{"i":0}"#).unwrap();
    let s = wait_stats(&r, "refused login", Duration::from_secs(5), |s| s.connect_failures >= 2);
    assert!(!s.connected && s.alarms_acked == 0, "{s:?}");
    assert_eq!(spool_files(&spool).len(), 1);
    r.shutdown();

    // No credentials at all: refused too.
    let mut o = options("cam-1", secure, &tmp.path().join("spool-anon"));
    o.client_id = Some("anon-cam".into());
    let r = Reporter::start(o).unwrap();
    let s = wait_stats(&r, "refused anonymous", Duration::from_secs(5), |s| s.connect_failures >= 2);
    assert!(!s.connected);
    r.shutdown();

    // The right password: the spooled alarm and a new one arrive, in order.
    let mut o = options("cam-1", secure, &spool);
    o.credentials = Some(("cam-1".into(), "s3cret pass".into()));
    let r = Reporter::start(o).unwrap();
    wait_stats(&r, "login", Duration::from_secs(5), |s| s.connected);
    r.push_alarm(alarm_packet(1), r#"{"i":1}"#).unwrap();
    let m = sub.wait_for("both alarms", Duration::from_secs(5), |m| first_arrivals(m, "sfn/cam-1/alarm").0.len() >= 2);
    assert_eq!(first_arrivals(&m, "sfn/cam-1/alarm").0, vec![0, 1]);
    wait_stats(&r, "acks", Duration::from_secs(5), |s| s.alarms_acked == 2);
    r.shutdown();
    assert!(spool_files(&spool).is_empty());

    // The broker saw the device log in and publish, never subscribe.
    let log = broker.log();
    assert!(log.contains("Received PUBLISH from sfn-cam-1"), "device publishes not logged:\n{log}");
    assert!(!log.contains("Received SUBSCRIBE from sfn-cam-1"), "the device subscribed to something:\n{log}");

    // An anonymous client cannot publish into the device's topics on the secured listener.
    let mut mo = MqttOptions::new("intruder", "127.0.0.1", secure);
    mo.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(mo, 10);
    let refused = (0..50).find_map(|_| match conn.recv_timeout(Duration::from_millis(100)) {
        Ok(Ok(Event::Incoming(Packet::ConnAck(a)))) => Some(a.code != rumqttc::ConnectReturnCode::Success),
        Ok(Err(_)) => Some(true),
        _ => None,
    });
    assert_eq!(refused, Some(true), "anonymous connect to the secured listener must be refused");
    drop(client);
}

/// A full disk under the alarm spool (bounded by `spool_max`), while the broker is away.
///
/// The spool lives on a 16 KiB tmpfs: room for a few alarm files (a tmpfs file takes a 4 KiB
/// page). The test runs itself again as a child in user + mount namespaces of its own
/// (`unshare -rm`, no root needed; the mount dies with the child), where it mounts the tmpfs.
/// Expected: no crash, every write failure counted, alarms that did not fit on disk kept in
/// memory; when the broker returns, the newest `spool_max` alarms arrive in order (the oldest
/// beyond the bound are dropped and counted) and the spool empties; once there is room again,
/// alarms are spooled to disk as before.
#[test]
fn full_disk_under_the_spool() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(&exe)
        .args(["--exact", "full_disk_child", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env("SFN_FULL_DISK_CHILD", "1")
        .output()
        .expect("run unshare (util-linux)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child in its own mount namespace failed:\n{text}");
    assert!(text.contains("1 passed"), "the child test did not run:\n{text}");
    eprintln!("{text}");
}

/// The body of [`full_disk_under_the_spool`]; does nothing unless run as its child.
#[test]
#[ignore = "run by full_disk_under_the_spool inside its own mount namespace"]
fn full_disk_child() {
    if std::env::var_os("SFN_FULL_DISK_CHILD").is_none() {
        return;
    }
    init_logging();
    let tmp = tempfile::tempdir().unwrap();
    let fs = tmp.path().join("small-fs");
    std::fs::create_dir_all(&fs).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"]).arg(&fs).status().unwrap();
    assert!(st.success(), "mount tmpfs");
    let spool = fs.join("spool");

    let port = free_port();
    let _broker = Broker::start(&tmp.path().join("broker"), port, false);
    let proxy = Proxy::start(port, false);
    let sub = Sub::start(port, "t-full", "sfn/full-dev/alarm", QoS::AtLeastOnce, false);
    let mut o = options("full-dev", proxy.port, &spool);
    o.spool_max = 20;
    let r = Reporter::start(o).unwrap();

    // 30 alarms while the broker is away: the disk fills after a few files.
    // One at a time, so that each is written (or fails to be) before the next arrives.
    for i in 0..30 {
        r.push_alarm(alarm_packet(i), format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(200))).unwrap();
        wait_stats(&r, "alarm handled", Duration::from_secs(5), |s| s.alarms_pushed == u64::from(i) + 1);
    }
    let s = wait_stats(&r, "30 alarms handled", Duration::from_secs(10), |s| s.alarms_pushed == 30 && s.queued_alarms == 20);
    let on_disk = spool_files(&spool).len();
    eprintln!("disk full: {on_disk} alarm files on disk, stats {s:?}");
    assert!((1..20).contains(&on_disk), "the 16 KiB disk holds some alarms, not 20: {on_disk}");
    assert!(s.spool_errors > 0, "write failures are counted: {s:?}");
    assert_eq!(s.dropped_alarms, 10, "the 10 oldest beyond spool_max are dropped: {s:?}");
    assert!(std::fs::read_dir(&spool).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")), "no half-written files left");

    // The broker comes back: the 20 newest alarms arrive, in order; the spool empties.
    proxy.set_up(true);
    let m = sub.wait_for("20 alarms", Duration::from_secs(10), |m| first_arrivals(m, "sfn/full-dev/alarm").0.len() >= 20);
    assert_eq!(first_arrivals(&m, "sfn/full-dev/alarm").0, (10..30).collect::<Vec<u32>>());
    let s = wait_stats(&r, "acks", Duration::from_secs(10), |s| s.alarms_acked == 20);
    assert_eq!((s.queued_alarms, s.dropped_alarms), (0, 10));
    assert!(spool_files(&spool).is_empty(), "{:?}", spool_files(&spool));

    // Room again: a new alarm during a second outage is spooled to disk without errors.
    proxy.set_up(false);
    for c in proxy.conns.lock().unwrap().drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
    wait_stats(&r, "second outage", Duration::from_secs(10), |s| !s.connected);
    let errors = r.stats().spool_errors;
    r.push_alarm(alarm_packet(30), r#"{"i":30}"#).unwrap();
    wait_stats(&r, "spooled", Duration::from_secs(5), |s| s.alarms_pushed == 31 && s.queued_alarms == 1);
    assert_eq!(spool_files(&spool).len(), 1);
    assert_eq!(r.stats().spool_errors, errors);
    proxy.set_up(true);
    wait_stats(&r, "last ack", Duration::from_secs(10), |s| s.alarms_acked == 21);
    r.shutdown();
    let _ = Command::new("umount").arg(&fs).status();
}
