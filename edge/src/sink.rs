//! Where scored frames and alarms go: JSON lines (stdout or a file), COBS-framed score packets
//! (`sfn-wire`) to a file, a UDP peer or a serial device, and MQTT (`sfn-mqtt`, in `main`).
//!
//! A sink error is counted and logged by the caller, never fatal: one broken sink must not stop the
//! others or the scoring.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sfn_wire::{Millis48, ScorePacket};

use crate::alarm::{AlarmEvent, AlarmState};
use crate::pipeline::FrameOutput;

/// A sink failure, naming the sink.
#[derive(Debug, thiserror::Error)]
#[error("{sink}: {reason}")]
pub struct SinkError {
    pub sink: String,
    pub reason: String,
}

/// One destination.
pub trait Sink: Send {
    fn name(&self) -> String;
    /// Every scored frame, with its encoded packet (32 bytes) and the COBS frame of it.
    fn score(&mut self, out: &FrameOutput, packet: &[u8], framed: &[u8]) -> Result<(), SinkError>;
    /// An alarm raised or cleared (also carried in the frame's packet).
    fn alarm(&mut self, _state: AlarmState, _event: &AlarmEvent, _packet: &[u8], _json: &str) -> Result<(), SinkError> {
        Ok(())
    }
    /// Periodic health status (JSON).
    fn status(&mut self, _json: &str) -> Result<(), SinkError> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Messages waiting to go out (MQTT while the broker is away).
    fn queue_depth(&self) -> usize {
        0
    }
    /// Where alarm snapshots go on this sink, if it carries them (MQTT).
    fn snapshot_publisher(&self) -> Option<sfn_mqtt::SnapshotPublisher> {
        None
    }
}

/// The packet of a scored frame.
pub fn packet(out: &FrameOutput, seq: u16, model_id: [u8; 4]) -> ScorePacket {
    ScorePacket {
        seq,
        timestamp: Millis48::saturating(out.timestamp_ms),
        frame: out.index.min(u64::from(u32::MAX)) as u32,
        score: out.score,
        visual_z: out.visual_z,
        semantic_z: out.semantic_z.unwrap_or(f32::NAN),
        alarm: out.alarm.into(),
        model_id,
        ..ScorePacket::default()
    }
}

/// The JSON mirror of an alarm.
#[derive(Serialize)]
pub struct AlarmJson<'a> {
    pub device: &'a str,
    pub state: AlarmState,
    #[serde(flatten)]
    pub event: &'a AlarmEvent,
}

/// JSON lines of frames and alarms to stdout or a file.
pub struct JsonLines {
    name: String,
    out: Box<dyn Write + Send>,
}

impl JsonLines {
    pub fn stdout() -> Self {
        JsonLines { name: "stdout".into(), out: Box::new(std::io::stdout()) }
    }

    pub fn file(path: &Path) -> Result<Self, SinkError> {
        let f = OpenOptions::new().create(true).append(true).open(path).map_err(|e| SinkError { sink: path.display().to_string(), reason: e.to_string() })?;
        Ok(JsonLines { name: path.display().to_string(), out: Box::new(BufWriter::new(f)) })
    }

    fn line<T: Serialize>(&mut self, v: &T) -> Result<(), SinkError> {
        let s = serde_json::to_string(v).map_err(|e| SinkError { sink: self.name.clone(), reason: e.to_string() })?;
        writeln!(self.out, "{s}").map_err(|e| SinkError { sink: self.name.clone(), reason: e.to_string() })
    }
}

impl Sink for JsonLines {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn score(&mut self, out: &FrameOutput, _packet: &[u8], _framed: &[u8]) -> Result<(), SinkError> {
        #[derive(Serialize)]
        struct Line<'a> {
            kind: &'static str,
            #[serde(flatten)]
            out: &'a FrameOutput,
        }
        self.line(&Line { kind: "frame", out })
    }
    /// Alarm lines are flushed at once (frame lines are buffered): a reader tailing the file sees an
    /// alarm when it happens, and a crash cannot lose it.
    fn alarm(&mut self, _state: AlarmState, _event: &AlarmEvent, _packet: &[u8], json: &str) -> Result<(), SinkError> {
        writeln!(self.out, "{json}").and_then(|_| self.out.flush()).map_err(|e| SinkError { sink: self.name.clone(), reason: e.to_string() })
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| SinkError { sink: self.name.clone(), reason: e.to_string() })
    }
}

/// COBS-framed packets appended to a file or written to a device (a serial port set up beforehand,
/// e.g. `stty -F /dev/ttyUSB0 115200 raw`).
pub struct FramedWriter {
    name: String,
    out: BufWriter<File>,
    device: bool,
}

impl FramedWriter {
    /// A packet log file (appended).
    pub fn file(path: &Path) -> Result<Self, SinkError> {
        let f = OpenOptions::new().create(true).append(true).open(path).map_err(|e| SinkError { sink: path.display().to_string(), reason: e.to_string() })?;
        Ok(FramedWriter { name: path.display().to_string(), out: BufWriter::new(f), device: false })
    }

    /// A serial device (written unbuffered, frame by frame).
    pub fn serial(path: &PathBuf) -> Result<Self, SinkError> {
        let f = OpenOptions::new().write(true).open(path).map_err(|e| SinkError { sink: format!("serial {}", path.display()), reason: e.to_string() })?;
        Ok(FramedWriter { name: format!("serial {}", path.display()), out: BufWriter::new(f), device: true })
    }
}

impl Sink for FramedWriter {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn score(&mut self, _out: &FrameOutput, _packet: &[u8], framed: &[u8]) -> Result<(), SinkError> {
        self.out.write_all(framed).map_err(|e| SinkError { sink: self.name.clone(), reason: e.to_string() })?;
        if self.device {
            self.out.flush().map_err(|e| SinkError { sink: self.name.clone(), reason: e.to_string() })?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| SinkError { sink: self.name.clone(), reason: e.to_string() })
    }
}

/// One UDP datagram per packet (the 32-byte packet; datagrams delimit themselves).
pub struct Udp {
    peer: String,
    socket: UdpSocket,
}

impl Udp {
    pub fn new(peer: &str) -> Result<Self, SinkError> {
        let err = |reason: String| SinkError { sink: format!("udp {peer}"), reason };
        let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| err(e.to_string()))?;
        socket.connect(peer).map_err(|e| err(e.to_string()))?;
        Ok(Udp { peer: peer.into(), socket })
    }
}

impl Sink for Udp {
    fn name(&self) -> String {
        format!("udp {}", self.peer)
    }
    fn score(&mut self, _out: &FrameOutput, packet: &[u8], _framed: &[u8]) -> Result<(), SinkError> {
        self.socket.send(packet).map(|_| ()).map_err(|e| SinkError { sink: self.name(), reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(index: u64, alarm: AlarmState) -> FrameOutput {
        FrameOutput {
            index,
            timestamp_ms: 1_764_000_000_000 + index * 100,
            visual_error: 0.01,
            appearance_error: None,
            semantic_error: None,
            visual_z: 1.5,
            semantic_z: None,
            score: 2.5,
            alarm,
            event: None,
            cue: sfn_scoring::Cue::Prediction,
            region: None,
            infer_us: 5,
        }
    }

    #[test]
    fn packets_reach_a_file_and_a_udp_peer_and_decode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.bin");
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(FramedWriter::file(&path).unwrap()), Box::new(Udp::new(&peer.local_addr().unwrap().to_string()).unwrap())];
        for i in 0..5u64 {
            let o = out(i, if i == 3 { AlarmState::Raised } else { AlarmState::Idle });
            let p = packet(&o, i as u16, [1, 2, 3, 4]);
            let bytes = p.to_bytes().unwrap();
            let frame = p.to_frame().unwrap();
            for s in sinks.iter_mut() {
                s.score(&o, &bytes, &frame).unwrap();
            }
        }
        for s in sinks.iter_mut() {
            s.flush().unwrap();
        }
        let data = std::fs::read(&path).unwrap();
        let mut d = sfn_wire::Deframer::<64>::new();
        let got: Vec<ScorePacket> = d.feed(&data).map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 5);
        assert_eq!(got[3].alarm, sfn_wire::AlarmState::Raised);
        assert!(got[0].semantic_z.is_nan() && got[4].frame == 4 && got[4].model_id == [1, 2, 3, 4]);
        let mut buf = [0u8; 64];
        let n = peer.recv(&mut buf).unwrap();
        let p = ScorePacket::decode(&buf[..n]).unwrap();
        assert_eq!((p.seq, p.frame, p.score), (0, 0, 2.5));
    }

    #[test]
    fn unwritable_targets_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = FramedWriter::file(&dir.path().join("no/such/dir/p.bin")).err().unwrap().to_string();
        assert!(e.contains("no/such/dir"), "{e}");
        let e = FramedWriter::serial(&dir.path().join("ttyNOPE")).err().unwrap().to_string();
        assert!(e.contains("serial") && e.contains("ttyNOPE"), "{e}");
        let e = Udp::new("not-an-address").err().unwrap().to_string();
        assert!(e.contains("udp not-an-address"), "{e}");
    }
}
