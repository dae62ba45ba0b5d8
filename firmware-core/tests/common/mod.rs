//! Test helpers: a recording pin, packet streams built with sfn_wire, a PRNG.
#![allow(dead_code)]

use std::{cell::RefCell, rc::Rc, vec::Vec};

use embedded_hal::digital::{ErrorKind, ErrorType, OutputPin};
use sfn_firmware_core::{AlarmUnit, Config};
use sfn_wire::{crc16_ccitt_false, AlarmState, ScorePacket};

#[derive(Debug, Default)]
pub struct PinLog {
    /// Every successful level write, in order.
    pub writes: Vec<bool>,
    /// Failed write attempts.
    pub failures: u32,
    /// The next this-many writes fail.
    pub fail_next: u32,
    /// Every write fails while set.
    pub broken: bool,
}

/// An output pin that records every write; clones share the log.
#[derive(Clone, Debug, Default)]
pub struct RecordingPin(pub Rc<RefCell<PinLog>>);

#[derive(Debug)]
pub struct PinFault;

impl embedded_hal::digital::Error for PinFault {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl ErrorType for RecordingPin {
    type Error = PinFault;
}

impl RecordingPin {
    fn write(&mut self, level: bool) -> Result<(), PinFault> {
        let mut log = self.0.borrow_mut();
        if log.broken {
            log.failures += 1;
            return Err(PinFault);
        }
        if log.fail_next > 0 {
            log.fail_next -= 1;
            log.failures += 1;
            return Err(PinFault);
        }
        log.writes.push(level);
        Ok(())
    }

    pub fn writes(&self) -> Vec<bool> {
        self.0.borrow().writes.clone()
    }

    pub fn level(&self) -> Option<bool> {
        self.0.borrow().writes.last().copied()
    }
}

impl OutputPin for RecordingPin {
    fn set_low(&mut self) -> Result<(), PinFault> {
        self.write(false)
    }

    fn set_high(&mut self) -> Result<(), PinFault> {
        self.write(true)
    }
}

pub type Unit = AlarmUnit<RecordingPin, RecordingPin>;

/// A unit started at t = 0, and handles on its siren and relay logs.
pub fn unit(config: Config) -> (Unit, RecordingPin, RecordingPin) {
    let siren = RecordingPin::default();
    let relay = RecordingPin::default();
    let unit = AlarmUnit::new(config, siren.clone(), relay.clone(), 0);
    (unit, siren, relay)
}

pub const MODEL_A: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];
pub const MODEL_B: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

pub fn packet(seq: u16, alarm: AlarmState, model_id: [u8; 4]) -> ScorePacket {
    ScorePacket { seq, frame: u32::from(seq) * 2, score: 1.5, visual_z: 0.5, semantic_z: f32::NAN, alarm, model_id, ..ScorePacket::default() }
}

/// The COBS frame (with delimiter) of a packet, via `to_frame`.
pub fn frame(seq: u16, alarm: AlarmState) -> Vec<u8> {
    frame_of(&packet(seq, alarm, MODEL_A))
}

pub fn frame_of(p: &ScorePacket) -> Vec<u8> {
    p.to_frame().unwrap().to_vec()
}

/// A COBS frame of an intact packet of format version `version` (sfn_wire refuses to encode
/// those): body with the version byte patched, CRC recomputed, COBS-encoded here.
pub fn other_version_frame(version: u8, seq: u16) -> Vec<u8> {
    let mut raw = packet(seq, AlarmState::Raised, MODEL_A).to_bytes().unwrap();
    raw[0] = version;
    let crc = crc16_ccitt_false(&raw[..30]).to_le_bytes();
    raw[30..].copy_from_slice(&crc);
    let mut out = cobs_encode(&raw);
    out.push(0);
    out
}

/// Reference COBS encoder (no delimiter), for packets under 254 bytes.
pub fn cobs_encode(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = 0;
    for &b in data {
        if b == 0 {
            out[code_at] = (out.len() - code_at) as u8;
            code_at = out.len();
            out.push(0);
        } else {
            out.push(b);
        }
    }
    out[code_at] = (out.len() - code_at) as u8;
    out
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
