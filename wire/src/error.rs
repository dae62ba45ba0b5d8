//! Errors.

use core::fmt;

/// Everything that can go wrong encoding or decoding a score packet. Small and `Copy`, so a
/// [`Deframer`](crate::Deframer) can hand it out per frame without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The output buffer is shorter than [`MAX_PACKET`](crate::MAX_PACKET) (for `encode`) or
    /// [`MAX_FRAMED`](crate::MAX_FRAMED) (for `encode_framed`).
    BufferTooSmall,
    /// The CRC trailer does not match the body: `expected` is the CRC computed over the body
    /// received, `found` the trailer received.
    Crc {
        /// CRC-16/CCITT-FALSE computed over the received body.
        expected: u16,
        /// CRC carried in the packet's last two bytes.
        found: u16,
    },
    /// An intact packet (valid CRC) of a format version this crate does not decode, or an
    /// attempt to encode a packet whose `version` field is not [`VERSION`](crate::VERSION).
    Version {
        /// The version this crate speaks ([`VERSION`](crate::VERSION)).
        expected: u8,
        /// The version in the packet.
        found: u8,
    },
    /// The frame is not valid COBS (a `0x00` inside it, a code byte pointing past its end, or
    /// an empty frame).
    Cobs,
    /// Fewer bytes than a packet.
    Truncated,
    /// More bytes than a packet.
    TrailingBytes,
    /// A streamed frame overflowed the [`Deframer`](crate::Deframer)'s buffer before its
    /// delimiter arrived.
    Overlong,
    /// postcard rejected the body although its CRC was valid (e.g. an alarm state byte > 3).
    Postcard,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall => f.write_str("output buffer too small for a score packet"),
            Self::Crc { expected, found } => write!(f, "CRC mismatch: body has CRC {expected:#06x}, packet carries {found:#06x}"),
            Self::Version { expected, found } => write!(f, "unsupported score packet version {found} (this decoder speaks version {expected})"),
            Self::Cobs => f.write_str("malformed COBS frame"),
            Self::Truncated => f.write_str("score packet truncated"),
            Self::TrailingBytes => f.write_str("trailing bytes after score packet"),
            Self::Overlong => f.write_str("frame longer than the deframer buffer"),
            Self::Postcard => f.write_str("invalid score packet body"),
        }
    }
}

/// `core::error::Error` is `std::error::Error`: `?` into `anyhow`/`Box<dyn Error>` works with
/// or without the `std` feature.
impl core::error::Error for WireError {}
