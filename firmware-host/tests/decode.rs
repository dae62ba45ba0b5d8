//! `sfn_host::decode`: files, UDP, MQTT (when a mosquitto binary is installed), spec parsing
//! and output formatting.

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sfn_host::decode::{decode_stream, json_line, table_header, table_row, DecodeError, Decoded, Input, Record};
use sfn_wire::{crc16_ccitt_false, AlarmState, Millis48, ScorePacket, BODY_LEN};

fn packet(seq: u16) -> ScorePacket {
    ScorePacket {
        seq,
        timestamp: Millis48::saturating(1_764_331_200_123 + u64::from(seq) * 40),
        frame: 1000 + u32::from(seq),
        score: seq as f32 * 0.5,
        visual_z: 1.0 + seq as f32,
        semantic_z: if seq.is_multiple_of(2) { f32::NAN } else { -0.25 },
        alarm: [AlarmState::Idle, AlarmState::Raised, AlarmState::Active, AlarmState::Cleared][usize::from(seq % 4)],
        model_id: [0xde, 0xad, 0xbe, 0xef],
        ..ScorePacket::default()
    }
}

fn framed(p: &ScorePacket) -> Vec<u8> {
    p.to_frame().unwrap().to_vec()
}

/// Minimal COBS encoder + delimiter (for packets the wire crate refuses to encode).
fn cobs_frame(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = 0;
    let mut code = 1u8;
    for &b in data {
        if b == 0 {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(b);
            code += 1;
            if code == 0xff {
                out[code_at] = code;
                code_at = out.len();
                out.push(0);
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out.push(0);
    out
}

/// A raw packet of `version` with a valid CRC.
fn raw_of_version(p: &ScorePacket, version: u8) -> Vec<u8> {
    let mut raw = p.to_bytes().unwrap();
    raw[0] = version;
    let crc = crc16_ccitt_false(&raw[..BODY_LEN]);
    raw[BODY_LEN..].copy_from_slice(&crc.to_le_bytes());
    raw.to_vec()
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    path
}

fn collect(input: &Input, limit: Option<u64>, timeout: Option<Duration>) -> Result<(Decoded, Vec<Record>), DecodeError> {
    let mut got = Vec::new();
    let d = decode_stream(input, limit, timeout, &mut |r| got.push(r.clone()))?;
    Ok((d, got))
}

#[test]
fn cobs_helper_matches_the_wire_encoder() {
    let p = packet(42);
    assert_eq!(cobs_frame(&p.to_bytes().unwrap()), framed(&p));
}

#[test]
fn file_with_garbage_bitflip_and_truncated_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    bytes.extend(framed(&packet(0)));
    bytes.extend(framed(&packet(1)));
    // Line noise, ended by a delimiter (as a sender that prefixes frames with 0x00 does).
    bytes.extend(b"\x13\x37 line noise \xff\x00");
    bytes.extend(framed(&packet(2)));
    // A frame with one bit flipped in the payload: CRC error.
    let mut flipped = framed(&packet(3));
    flipped[15] ^= 0x04;
    bytes.extend(&flipped);
    bytes.extend(framed(&packet(4)));
    // Empty frames are ignored.
    bytes.extend([0, 0, 0]);
    bytes.extend(framed(&packet(5)));
    // A truncated last frame.
    let tail = framed(&packet(6));
    bytes.extend(&tail[..20]);
    let path = write_file(dir.path(), "scores.bin", &bytes);

    for input in [
        Input::File(path.clone()),
        Input::parse(path.to_str().unwrap()).unwrap(),
        Input::Serial(path.clone()), // a regular file read as a serial stream: EOF ends it
    ] {
        let (d, got) = collect(&input, None, Some(Duration::from_secs(5))).unwrap();
        let seqs: Vec<u16> = got.iter().map(|r| r.packet.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 4, 5], "{input}");
        for r in &got {
            // Byte-wise: NaN != NaN.
            assert_eq!(r.packet.to_bytes(), packet(r.packet.seq).to_bytes());
            assert_eq!(r.source, path.display().to_string());
        }
        assert_eq!(d.packets, 5);
        assert_eq!(d.corrupt, 3, "garbage, bit flip, truncated tail");
        assert_eq!(d.other_version, 0);
        assert_eq!(d.bytes, bytes.len() as u64);
        assert!(!d.hit_limit);
        d.check().unwrap();
    }

    // With a limit: stops after that many packets.
    let (d, got) = collect(&Input::File(path), Some(3), None).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(d.packets, 3);
    assert_eq!(d.corrupt, 1);
    assert!(d.hit_limit);
}

/// Each corrupt frame is reported once, with its byte offset; another version once per version.
#[test]
fn corrupt_frames_are_reported_with_their_offsets() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let mut bytes = framed(&packet(0)); // bytes 0..34
    let mut flipped = framed(&packet(1)); // bytes 34..68
    flipped[10] ^= 0x01;
    bytes.extend(&flipped);
    bytes.extend(b"xyz\x00"); // bytes 68..72
    bytes.extend(cobs_frame(&raw_of_version(&packet(2), 7))); // 72..106
    bytes.extend(cobs_frame(&raw_of_version(&packet(3), 7))); // 106..140
    bytes.extend(&framed(&packet(4))[..10]); // 140..150, truncated
    let path = write_file(dir.path(), "log.bin", &bytes);

    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).with_max_level(tracing::Level::WARN).finish();
    let (d, _) = tracing::subscriber::with_default(subscriber, || collect(&Input::File(path), None, None).unwrap());
    assert_eq!((d.packets, d.corrupt, d.other_version), (1, 3, 2));
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 4, "{text}");
    assert!(warnings[0].contains("byte 34 (33 bytes)") && warnings[0].contains("CRC"), "{text}");
    assert!(warnings[1].contains("byte 68 (3 bytes)"), "{text}");
    assert!(warnings[2].contains("byte 72") && warnings[2].contains("version 7"), "{text}");
    assert!(warnings[3].contains("byte 140 (10 bytes)") && warnings[3].contains("truncated"), "{text}");
}

/// Garbage without a delimiter merges with the following frame: both are lost as one.
#[test]
fn undelimited_garbage_costs_the_next_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = framed(&packet(0));
    bytes.extend(b"noise");
    bytes.extend(framed(&packet(1)));
    bytes.extend(framed(&packet(2)));
    let path = write_file(dir.path(), "s.bin", &bytes);
    let (d, got) = collect(&Input::File(path), None, None).unwrap();
    assert_eq!(got.iter().map(|r| r.packet.seq).collect::<Vec<_>>(), [0, 2]);
    assert_eq!((d.packets, d.corrupt), (2, 1));
}

#[test]
fn file_of_version_2_packets_is_an_error_naming_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for seq in 0..4 {
        bytes.extend(cobs_frame(&raw_of_version(&packet(seq), 2)));
    }
    let path = write_file(dir.path(), "v2.bin", &bytes);
    let (d, got) = collect(&Input::File(path), None, None).unwrap();
    assert!(got.is_empty());
    assert_eq!((d.packets, d.corrupt, d.other_version), (0, 0, 4));
    assert_eq!(d.versions_found.iter().copied().collect::<Vec<_>>(), [2]);
    let err = d.check().unwrap_err();
    assert!(matches!(err, DecodeError::OtherVersion { found: 2, expected: 1 }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("version 2"), "{msg}");

    // One good packet among them: fine.
    bytes.extend(framed(&packet(9)));
    let dir2 = tempfile::tempdir().unwrap();
    let path = write_file(dir2.path(), "mixed.bin", &bytes);
    let (d, got) = collect(&Input::File(path), None, None).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(d.other_version, 4);
    d.check().unwrap();
}

#[test]
fn empty_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "empty.bin", b"");
    let (d, got) = collect(&Input::File(path.clone()), None, None).unwrap();
    assert!(got.is_empty());
    assert_eq!(d.frames(), 0);
    let err = d.check().unwrap_err();
    assert!(matches!(err, DecodeError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("empty.bin"), "{err}");

    // Only delimiters: still empty.
    let path = write_file(dir.path(), "zeros.bin", &[0; 10]);
    let (d, _) = collect(&Input::File(path), None, None).unwrap();
    assert!(matches!(d.check(), Err(DecodeError::Empty { .. })));
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = collect(&Input::File("/nonexistent/sfn/scores.bin".into()), None, None).unwrap_err();
    assert!(matches!(err, DecodeError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/sfn/scores.bin"), "{err}");
}

/// A serial line is read until silence: a FIFO stands in for the tty (its writer stays open
/// past the timeout), and /dev/null for a tty that reads 0 bytes (`stty min 0`).
#[test]
fn serial_stops_after_silence() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("tty");
    let ok = Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
    if ok {
        let path = fifo.clone();
        let writer = thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.write_all(&framed(&packet(0))).unwrap();
            f.write_all(&framed(&packet(1))).unwrap();
            f.write_all(&framed(&packet(2))[..5]).unwrap(); // cut off mid-frame
            f.flush().unwrap();
            thread::sleep(Duration::from_millis(1500));
        });
        let start = Instant::now();
        let input = Input::parse(&format!("serial:{}", fifo.display())).unwrap();
        let (d, got) = collect(&input, None, Some(Duration::from_millis(300))).unwrap();
        assert!(start.elapsed() < Duration::from_millis(1400), "stopped on silence");
        assert_eq!(got.iter().map(|r| r.packet.seq).collect::<Vec<_>>(), [0, 1]);
        assert_eq!((d.packets, d.corrupt), (2, 1), "the cut-off frame");
        writer.join().unwrap();
    } else {
        eprintln!("skipping the FIFO part: mkfifo failed");
    }

    let start = Instant::now();
    let (d, _) = collect(&Input::Serial("/dev/null".into()), None, Some(Duration::from_millis(200))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(matches!(d.check(), Err(DecodeError::Empty { .. })));
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Sends `probe` until it is not refused (ICMP port unreachable) any more, i.e. until the
/// receiver is bound: exactly one probe reaches it. Then sends `datagrams`.
fn udp_sender(port: u16, probe: Vec<u8>, datagrams: Vec<Vec<u8>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(("127.0.0.1", port)).unwrap();
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < Duration::from_secs(5), "receiver never bound");
            if s.send(&probe).is_err() {
                thread::sleep(Duration::from_millis(10));
                continue;
            }
            thread::sleep(Duration::from_millis(50));
            match s.take_error().unwrap() {
                Some(_) => continue, // refused: nobody listening yet
                None => break,
            }
        }
        for d in datagrams {
            let _ = s.send(&d); // the receiver may have stopped at its limit
            thread::sleep(Duration::from_millis(2));
        }
    })
}

#[test]
fn udp_datagrams_with_limit() {
    let port = free_udp_port();
    let raw = |seq| packet(seq).to_bytes().unwrap().to_vec();
    let mut batch = framed(&packet(1));
    batch.extend(framed(&packet(2)));
    let datagrams = vec![
        raw(0),
        batch,                          // COBS frames in one datagram
        raw_of_version(&packet(99), 2), // another version
        raw(3),
        raw(4), // beyond the limit
    ];
    let sender = udp_sender(port, b"garbage datagram".to_vec(), datagrams);
    let input = Input::parse(&format!("udp:127.0.0.1:{port}")).unwrap();
    let (d, got) = collect(&input, Some(4), Some(Duration::from_secs(5))).unwrap();
    sender.join().unwrap();
    assert_eq!(got.iter().map(|r| r.packet.seq).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(got.iter().all(|r| r.source.starts_with("127.0.0.1:")));
    assert_eq!(d.packets, 4);
    assert_eq!(d.corrupt, 1, "the garbage datagram");
    assert_eq!(d.other_version, 1);
    assert!(d.hit_limit);
    d.check().unwrap();
}

#[test]
fn udp_silence_times_out() {
    let port = free_udp_port();
    let start = Instant::now();
    let (d, got) = collect(&Input::Udp(format!("127.0.0.1:{port}")), Some(10), Some(Duration::from_millis(200))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(got.is_empty());
    assert!(!d.hit_limit);
    assert!(matches!(d.check(), Err(DecodeError::Empty { .. })));
}

#[test]
fn spec_parsing() {
    use Input::*;
    let cases: &[(&str, Input)] = &[
        ("file:/tmp/a.bin", File("/tmp/a.bin".into())),
        ("file:rel/a.bin", File("rel/a.bin".into())),
        ("file:///tmp/a.bin", File("/tmp/a.bin".into())),
        ("/var/log/sfn/scores.bin", File("/var/log/sfn/scores.bin".into())),
        ("scores.bin", File("scores.bin".into())),
        ("odd:name.bin", File("odd:name.bin".into())),
        ("serial:/dev/ttyUSB0", Serial("/dev/ttyUSB0".into())),
        ("udp:0.0.0.0:5005", Udp("0.0.0.0:5005".into())),
        ("udp://127.0.0.1:5005", Udp("127.0.0.1:5005".into())),
        ("udp:5005", Udp("0.0.0.0:5005".into())),
        ("udp:[::]:5005", Udp("[::]:5005".into())),
        ("udp:localhost:5005", Udp("localhost:5005".into())),
        ("mqtt://broker.local:1883/sfn/cam1/score", Mqtt { host: "broker.local".into(), port: 1883, topic: "sfn/cam1/score".into() }),
        ("mqtt://10.0.0.2:8883/sfn/cam1/#", Mqtt { host: "10.0.0.2".into(), port: 8883, topic: "sfn/cam1/#".into() }),
        ("mqtt://broker/sfn/+/alarm", Mqtt { host: "broker".into(), port: 1883, topic: "sfn/+/alarm".into() }),
        ("mqtt://[::1]:1884/#", Mqtt { host: "::1".into(), port: 1884, topic: "#".into() }),
    ];
    for (spec, want) in cases {
        let got = Input::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(&got, want, "{spec}");
        // Display writes a spec that parses back to the same input.
        assert_eq!(&Input::parse(&got.to_string()).unwrap(), want, "{spec} -> {got}");
    }
    assert_eq!(Input::parse("mqtt://broker/sfn/cam1/#").unwrap().to_string(), "mqtt://broker:1883/sfn/cam1/#");

    for bad in [
        "",
        "file:",
        "serial:",
        "udp:",
        "udp:0.0.0.0",
        "udp:0.0.0.0:",
        "udp:0.0.0.0:70000",
        "udp::5005",
        "udp:::1:5005",
        "udp:[::1",
        "mqtt://",
        "mqtt://broker",
        "mqtt://broker/",
        "mqtt://broker:99999/t",
        "mqtt://broker:x/t",
        "mqtt://:1883/t",
        "mqtt://user:pw@broker/t",
        "mqtt://broker/sfn/#/score",
        "mqtt://broker/sfn/cam#",
        "mqtt://broker/sfn/cam+/score",
        "mqtt:broker/t",
        "tcp://host:1234",
        "mqtts://broker/t",
    ] {
        match Input::parse(bad) {
            Err(e @ DecodeError::BadSpec { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("{bad:?}")), "{bad:?}: {msg}");
            }
            other => panic!("{bad:?}: expected BadSpec, got {other:?}"),
        }
    }
}

fn known_record(semantic_z: f32) -> Record {
    Record {
        source: "sfn/cam1/alarm".into(),
        packet: ScorePacket {
            seq: 42,
            timestamp: Millis48::saturating(1_764_331_200_123),
            frame: 9000,
            score: 2.5,
            visual_z: 3.0,
            semantic_z,
            alarm: AlarmState::Raised,
            model_id: [0xde, 0xad, 0xbe, 0xef],
            ..ScorePacket::default()
        },
    }
}

#[test]
fn table_and_json_formatting() {
    assert_eq!(table_header(), "  seq  time (UTC)                     frame      score   visual_z  semantic_z  alarm    model_id");
    assert_eq!(table_row(&known_record(1.25)), "   42  2025-11-28T12:00:00.123Z        9000      2.500      3.000       1.250  raised   deadbeef");
    assert_eq!(table_row(&known_record(f32::NAN)), "   42  2025-11-28T12:00:00.123Z        9000      2.500      3.000           -  raised   deadbeef");
    // Columns line up.
    assert_eq!(table_header().len(), table_row(&known_record(1.25)).len());

    assert_eq!(
        json_line(&known_record(1.25)),
        r#"{"source":"sfn/cam1/alarm","version":1,"seq":42,"timestamp_ms":1764331200123,"time":"2025-11-28T12:00:00.123Z","frame":9000,"score":2.5,"visual_z":3.0,"semantic_z":1.25,"alarm":"raised","model_id":"deadbeef"}"#
    );
    let line = json_line(&known_record(f32::NAN));
    assert!(line.contains(r#""semantic_z":null"#), "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(v["semantic_z"].is_null());
    assert_eq!(v["seq"], 42);
}

// --------------------------------------------------------------------------------------------
// MQTT, against a real mosquitto when one is installed.

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// Kills and reaps the broker we started when dropped.
struct Broker {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> Option<(Broker, u16)> {
    if !Path::new(MOSQUITTO).exists() {
        eprintln!("skipping: {MOSQUITTO} not installed");
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_file(dir.path(), "mosquitto.conf", format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n").as_bytes());
    let child = Command::new(MOSQUITTO).arg("-c").arg(&conf).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start mosquitto");
    let broker = Broker { child, _dir: dir };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(5), "mosquitto did not start");
        thread::sleep(Duration::from_millis(20));
    }
    Some((broker, port))
}

/// Publishes retained messages (so that a later subscriber gets them whatever the timing) and
/// waits for the broker's acknowledgements.
fn publish_retained(port: u16, messages: &[(&str, Vec<u8>)]) {
    use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
    let (client, mut conn) = Client::new(MqttOptions::new("sfn-test-pub", "127.0.0.1", port), 16);
    for (topic, payload) in messages {
        client.publish(*topic, QoS::AtLeastOnce, true, payload.clone()).unwrap();
    }
    let mut acks = 0;
    let start = Instant::now();
    while acks < messages.len() {
        assert!(start.elapsed() < Duration::from_secs(5), "publishes not acknowledged");
        match conn.recv_timeout(Duration::from_millis(500)) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acks += 1,
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => panic!("publisher: {e}"),
        }
    }
    client.disconnect().unwrap();
    for _ in 0..5 {
        if conn.recv_timeout(Duration::from_millis(100)).is_err() {
            break;
        }
    }
}

#[test]
fn mqtt_score_batch_and_alarm() {
    let Some((_broker, port)) = start_broker() else {
        return;
    };
    let mut batch = framed(&packet(10));
    batch.extend(framed(&packet(11)));
    batch.extend(framed(&packet(12)));
    publish_retained(
        port,
        &[
            ("sfn/cam1/score", batch),
            ("sfn/cam1/alarm", packet(13).to_bytes().unwrap().to_vec()),
            ("sfn/cam1/alarm/json", br#"{"seq":13}"#.to_vec()),
            ("sfn/cam1/status", br#"{"fps":12.5}"#.to_vec()),
            ("sfn/cam1/available", b"online".to_vec()),
            ("sfn/cam2/alarm", b"not a packet".to_vec()),
        ],
    );

    // Limit-based: all four packets of cam1.
    let input = Input::parse(&format!("mqtt://127.0.0.1:{port}/sfn/cam1/#")).unwrap();
    let (d, got) = collect(&input, Some(4), Some(Duration::from_secs(5))).unwrap();
    assert!(d.hit_limit);
    assert_eq!(d.packets, 4);
    assert_eq!(d.corrupt, 0);
    let mut batch_seqs: Vec<u16> = Vec::new();
    let mut alarm_seqs: Vec<u16> = Vec::new();
    for r in &got {
        match r.source.as_str() {
            "sfn/cam1/score" => batch_seqs.push(r.packet.seq),
            "sfn/cam1/alarm" => alarm_seqs.push(r.packet.seq),
            other => panic!("unexpected source {other}"),
        }
    }
    assert_eq!(batch_seqs, [10, 11, 12], "batch order kept");
    assert_eq!(alarm_seqs, [13]);

    // Silence-based, all devices: every retained message is seen and classified.
    let input = Input::parse(&format!("mqtt://127.0.0.1:{port}/sfn/+/#")).unwrap();
    let start = Instant::now();
    let (d, got) = collect(&input, None, Some(Duration::from_millis(700))).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(got.len(), 4);
    assert_eq!(d.packets, 4);
    assert_eq!(d.corrupt, 1, "cam2's bad alarm payload");
    assert_eq!(d.other_messages, 3, "alarm/json, status, available");
    assert!(!d.hit_limit);
}

#[test]
fn mqtt_unreachable_broker_is_an_error() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let input = Input::Mqtt { host: "127.0.0.1".into(), port, topic: "sfn/#".into() };
    let err = collect(&input, Some(1), Some(Duration::from_secs(3))).unwrap_err();
    assert!(matches!(err, DecodeError::Mqtt { .. }), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}
