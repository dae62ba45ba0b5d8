//! Streaming deframer.

use crate::{ScorePacket, WireError, MAX_FRAMED};

/// Splits a byte stream (serial port, TCP, a file of frames) at `0x00` delimiters and decodes
/// each frame, holding at most `N` bytes of the frame in progress (no allocation).
///
/// Each non-empty frame yields exactly one result: the packet, or the reason it was dropped
/// (bad COBS, bad CRC, another version, wrong length, or [`WireError::Overlong`] when more
/// than `N` bytes arrived before the delimiter). Decoding resynchronises at the next `0x00`,
/// so one corrupt frame costs only itself. Empty frames (consecutive `0x00`s) are ignored:
/// a sender may prefix frames with `0x00` to end whatever garbage preceded them. Never panics.
///
/// `N` must be at least `MAX_FRAMED - 1` (a frame without its delimiter); a smaller `N` fails
/// to compile where [`new`](Self::new) is used:
///
/// ```compile_fail
/// let deframer = sfn_wire::Deframer::<16>::new();
/// ```
///
/// ```
/// use sfn_wire::{Deframer, ScorePacket, MAX_FRAMED};
///
/// let packet = ScorePacket { seq: 7, ..ScorePacket::default() };
/// let mut frame = [0u8; MAX_FRAMED];
/// let frame = packet.encode_framed(&mut frame).unwrap();
///
/// let mut deframer = Deframer::<MAX_FRAMED>::new();
/// let mut got = None;
/// for &b in b"\x13\x37 line noise\x00".iter().chain(frame) {
///     if let Some(Ok(p)) = deframer.push(b) {
///         got = Some(p);
///     }
/// }
/// assert_eq!(got, Some(packet));
/// ```
#[derive(Clone, Debug)]
pub struct Deframer<const N: usize> {
    buf: heapless::Vec<u8, N>,
    overlong: bool,
}

impl<const N: usize> Deframer<N> {
    const CAPACITY_OK: () = assert!(N >= MAX_FRAMED - 1, "Deframer<N>: N must be at least MAX_FRAMED - 1");

    /// An empty deframer.
    pub const fn new() -> Self {
        let () = Self::CAPACITY_OK;
        Self { buf: heapless::Vec::new(), overlong: false }
    }

    /// Feeds one byte; returns a result when `byte` is a delimiter ending a non-empty frame.
    pub fn push(&mut self, byte: u8) -> Option<Result<ScorePacket, WireError>> {
        if byte != 0 {
            if !self.overlong && self.buf.push(byte).is_err() {
                self.overlong = true;
            }
            return None;
        }
        if self.overlong {
            self.reset();
            return Some(Err(WireError::Overlong));
        }
        if self.buf.is_empty() {
            return None;
        }
        let result = ScorePacket::decode_framed(self.buf.as_mut_slice());
        self.buf.clear();
        Some(result)
    }

    /// Feeds a chunk (e.g. one `read()`), yielding a result per frame it completes.
    pub fn feed<'a>(&'a mut self, bytes: &'a [u8]) -> impl Iterator<Item = Result<ScorePacket, WireError>> + 'a {
        bytes.iter().filter_map(move |&b| self.push(b))
    }

    /// Drops the frame in progress (e.g. after a serial port was reopened).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.overlong = false;
    }

    /// Bytes of the frame in progress held so far.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

impl<const N: usize> Default for Deframer<N> {
    fn default() -> Self {
        Self::new()
    }
}
