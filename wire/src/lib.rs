//! # sfn-wire: SFN-VAD score packets
//!
//! The wire format in which the edge runtime sends one packet per scored frame to its sinks
//! (MQTT, serial, UDP, file). `no_std` and allocation-free: [`ScorePacket::encode`] writes into
//! the caller's buffer and [`Deframer`] reassembles frames from a byte stream in a fixed
//! `heapless` buffer. The `std` feature only adds conveniences (`Millis48::now`,
//! `Millis48::from_system_time`); [`WireError`] implements `core::error::Error`, which is
//! `std::error::Error`, with or without it.
//!
//! A packet is a [postcard](https://docs.rs/postcard)-serialized [`ScorePacket`] (the *body*)
//! followed by a CRC. Message transports that delimit packets themselves (UDP datagrams, MQTT
//! payloads, one record per file entry) carry it as is ([`ScorePacket::encode`] /
//! [`ScorePacket::decode`]); byte streams (serial, TCP, a log file of frames) carry it COBS-framed
//! and terminated by `0x00` ([`ScorePacket::encode_framed`] / [`Deframer`]).
//!
//! # Size
//!
//! Every version-1 packet is exactly [`MAX_PACKET`] = 32 bytes, and [`MAX_FRAMED`] = 34 bytes
//! framed, whatever the field values: every field has a fixed width. The obvious encodings of the
//! fields do not fit in 32 bytes in the worst case:
//!
//! | field                       | postcard varints | fixed `u32`/`u64` | this format   |
//! |-----------------------------|------------------|-------------------|---------------|
//! | version                     | 1                | 1                 | 1             |
//! | sequence number             | 5 (`u32`)        | 4                 | **2** (`u16`) |
//! | timestamp, ms               | 10 (`u64`)       | 8                 | **6** (48 bit)|
//! | frame index                 | 5 (`u32`)        | 4                 | 4             |
//! | score, visual z, semantic z | 12               | 12                | 12            |
//! | alarm state                 | 1                | 1                 | 1             |
//! | model id                    | 4                | 4                 | 4             |
//! | CRC                         | 2                | 2                 | 2             |
//! | **worst case**              | **40**           | **36**            | **32**        |
//!
//! So the sequence number is 16 bits: it wraps after 65 536 packets (36 minutes at 30 fps), which
//! is plenty to count the packets lost between two received ones, as RTP does. The timestamp is
//! 48 bits of milliseconds since the Unix epoch ([`Millis48`], good until the year 10889). The
//! scores stay exact `f32`s, and every value of [`ScorePacket`] is encodable (a timestamp cannot
//! exceed 48 bits by construction).
//!
//! # Layout (version 1)
//!
//! All multi-byte fields are little endian. `body` is bytes 0..30.
//!
//! | offset | size | field        | encoding                                                       |
//! |--------|------|--------------|----------------------------------------------------------------|
//! | 0      | 1    | `version`    | `u8`, = [`VERSION`] = 1                                        |
//! | 1      | 2    | `seq`        | `u16`                                                          |
//! | 3      | 6    | `timestamp`  | ms since 1970-01-01T00:00:00Z, unsigned 48 bit                 |
//! | 9      | 4    | `frame`      | `u32`                                                          |
//! | 13     | 4    | `score`      | `f32` (IEEE 754 binary32)                                      |
//! | 17     | 4    | `visual_z`   | `f32`                                                          |
//! | 21     | 4    | `semantic_z` | `f32`; NaN (e.g. `00 00 c0 7f`) = no semantic score            |
//! | 25     | 1    | `alarm`      | 0 `Idle`, 1 `Raised`, 2 `Active`, 3 `Cleared` ([`AlarmState`]) |
//! | 26     | 4    | `model_id`   | first 4 bytes of the sha256 of the exported encoder            |
//! | 30     | 2    | CRC          | CRC-16/CCITT-FALSE of `body` ([`crc16_ccitt_false`])           |
//!
//! The body is exactly what `postcard::to_slice` produces for a [`ScorePacket`]: postcard writes
//! `u8` and byte arrays raw, `f32` as 4 little-endian bytes and the enum as a varint discriminant
//! (one byte for 0..=3); the integer fields go through serde adapters that write fixed-width
//! little-endian bytes instead of postcard's varints. (In human-readable serde formats such as
//! JSON they stay plain numbers.)
//!
//! **Invariant for all versions:** a packet starts with its version byte and ends with a
//! little-endian CRC-16/CCITT-FALSE of everything before it. So a version-1 decoder recognises an
//! intact packet of another version, whatever its length, and reports
//! [`WireError::Version`] instead of a CRC or length error.
//!
//! [`ScorePacket::decode`] checks, in order: an intact packet (CRC valid) whose version is not 1 →
//! `Version`; fewer than 32 bytes → `Truncated`; more → `TrailingBytes`; CRC → `Crc`; the alarm
//! byte (> 3) → `Postcard`. Whatever it accepts, [`ScorePacket::encode`] gives back byte for byte.
//!
//! # Framing
//!
//! COBS (Consistent Overhead Byte Stuffing) removes every `0x00` from the packet: the encoded
//! frame is a sequence of groups, each a code byte `n` (1..=255) followed by `n - 1` data bytes,
//! and every group whose code is below 255 stands for its data plus one `0x00`, except the last.
//! A `0x00` then ends the frame. A packet shorter than 254 bytes gets exactly one code byte, so a
//! frame is always 32 + 1 + 1 = 34 bytes. [`Deframer`] splits a stream at the `0x00`s, ignores
//! empty frames (a sender may start with a `0x00` to end whatever came before) and reports each
//! corrupt frame as one error, resynchronising at the next `0x00`.
//!
//! # Worked example
//!
//! The packet for frame 9000, captured at 2026-01-01T00:00:00.123Z (1 767 225 600 123 ms), that
//! raised an alarm with score 2.5 (visual z 3.0, semantic z 1.25), sequence number 42, scored by
//! an encoder whose sha256 starts with `de ad be ef`:
//!
//! | offset | bytes               | field        | value                                       |
//! |--------|---------------------|--------------|---------------------------------------------|
//! | 0      | `01`                | `version`    | 1                                           |
//! | 1      | `2a 00`             | `seq`        | 42                                          |
//! | 3      | `7b a8 da 76 9b 01` | `timestamp`  | 1 767 225 600 123 = `0x019b_76da_a87b`      |
//! | 9      | `28 23 00 00`       | `frame`      | 9000 = `0x2328`                             |
//! | 13     | `00 00 20 40`       | `score`      | 2.5 = `0x4020_0000`                         |
//! | 17     | `00 00 40 40`       | `visual_z`   | 3.0 = `0x4040_0000`                         |
//! | 21     | `00 00 a0 3f`       | `semantic_z` | 1.25 = `0x3fa0_0000`                        |
//! | 25     | `01`                | `alarm`      | `Raised`                                    |
//! | 26     | `de ad be ef`       | `model_id`   | sha256 prefix                               |
//! | 30     | `20 d7`             | CRC          | `0xd720` = CRC-16/CCITT-FALSE of bytes 0..30 |
//!
//! The 32-byte packet ([`ScorePacket::encode`]):
//!
//! ```text
//! packet: 01 2a 00 7b a8 da 76 9b 01 28 23 00 00 00 00 20
//!         40 00 00 40 40 00 00 a0 3f 01 de ad be ef 20 d7
//! ```
//!
//! COBS-framed, 34 bytes ([`ScorePacket::encode_framed`]), one group per run of non-zero bytes:
//! `03 [01 2a]`, `09 [7b a8 da 76 9b 01 28 23]`, `01`, `01`, `01`, `03 [20 40]`, `01`,
//! `03 [40 40]`, `01`, `0a [a0 3f 01 de ad be ef 20 d7]`, then the delimiter `00`:
//!
//! ```text
//! framed: 03 01 2a 09 7b a8 da 76 9b 01 28 23 01 01 01 03
//!         20 40 01 03 40 40 01 0a a0 3f 01 de ad be ef 20
//!         d7 00
//! ```
//!
//! (A unit test parses this section and checks every byte of it against the encoder.)
//!
//! # Usage
//!
//! ```
//! use sfn_wire::{AlarmState, Deframer, Millis48, ScorePacket, MAX_FRAMED, MAX_PACKET};
//!
//! let packet = ScorePacket {
//!     seq: 43,
//!     timestamp: Millis48::saturating(1_767_225_600_156),
//!     frame: 9001,
//!     score: 2.25,
//!     visual_z: 2.75,
//!     semantic_z: f32::NAN, // no semantic score for this frame
//!     alarm: AlarmState::Active,
//!     model_id: [0xde, 0xad, 0xbe, 0xef],
//!     ..ScorePacket::default() // version: VERSION
//! };
//!
//! // A datagram / MQTT payload.
//! let mut buf = [0u8; MAX_PACKET];
//! let payload = packet.encode(&mut buf)?;
//! let received = ScorePacket::decode(payload)?;
//! assert_eq!(received.frame, 9001);
//! assert!(!received.has_semantic());
//!
//! // A byte stream.
//! let mut buf = [0u8; MAX_FRAMED];
//! let frame = packet.encode_framed(&mut buf)?;
//! let mut deframer = Deframer::<MAX_FRAMED>::new();
//! let received: Vec<_> = deframer.feed(frame).collect();
//! assert_eq!(received.len(), 1);
//! assert_eq!(received[0]?.seq, 43);
//! # Ok::<(), sfn_wire::WireError>(())
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

mod cobs;
mod crc;
mod deframer;
mod error;
mod fixed;
mod packet;
mod timestamp;

#[cfg(test)]
mod tests;

pub use crc::crc16_ccitt_false;
pub use deframer::Deframer;
pub use error::WireError;
pub use packet::{AlarmState, ScorePacket};
pub use timestamp::Millis48;

/// The format version this crate encodes and decodes.
pub const VERSION: u8 = 1;

/// Length of the body: the packet without its CRC.
pub const BODY_LEN: usize = 30;

/// Length of an encoded packet, body + CRC, before COBS. Every v1 packet is exactly this long.
pub const MAX_PACKET: usize = BODY_LEN + 2;

/// Length of a COBS-framed packet including its `0x00` delimiter. Every v1 frame is exactly
/// this long (COBS adds one byte to anything shorter than 254 bytes).
pub const MAX_FRAMED: usize = cobs::max_encoded_len(MAX_PACKET) + 1;

const _: () = assert!(MAX_PACKET <= 32 && MAX_FRAMED == MAX_PACKET + 2);
