//! The score packet.

use serde::{Deserialize, Serialize};

use crate::{cobs, crc16_ccitt_false, Millis48, WireError, BODY_LEN, MAX_FRAMED, MAX_PACKET, VERSION};

/// Alarm state after the frame the packet describes. One byte on the wire (`0..=3`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AlarmState {
    /// No alarm.
    #[default]
    Idle,
    /// This frame raised an alarm.
    Raised,
    /// An alarm raised earlier is still on.
    Active,
    /// This frame cleared the alarm.
    Cleared,
}

impl AlarmState {
    /// Whether the alarm is on after this frame (`Raised` or `Active`).
    pub const fn is_on(self) -> bool {
        matches!(self, Self::Raised | Self::Active)
    }

    /// Whether this frame changed the alarm (`Raised` or `Cleared`).
    pub const fn is_edge(self) -> bool {
        matches!(self, Self::Raised | Self::Cleared)
    }
}

/// One scored frame, as the edge runtime sends it to its sinks.
///
/// The field order is the wire order; see the [crate documentation](crate) for the layout.
/// Every value of this type with `version == VERSION` encodes to exactly
/// [`MAX_PACKET`] bytes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct ScorePacket {
    /// Format version; [`VERSION`] for packets this crate encodes.
    pub version: u8,
    /// Sequence number, incremented (wrapping) per packet sent; a gap means lost packets.
    #[serde(with = "crate::fixed::u16_le")]
    pub seq: u16,
    /// Capture time of the frame.
    pub timestamp: Millis48,
    /// Index of the frame in its source.
    #[serde(with = "crate::fixed::u32_le")]
    pub frame: u32,
    /// Causal anomaly score.
    pub score: f32,
    /// Visual component of the score (z-score).
    pub visual_z: f32,
    /// Semantic component of the score (z-score); NaN when the frame had no semantic score.
    pub semantic_z: f32,
    /// Alarm state after this frame.
    pub alarm: AlarmState,
    /// First 4 bytes of the sha256 of the exported encoder that produced the score.
    pub model_id: [u8; 4],
}

impl Default for ScorePacket {
    /// Version [`VERSION`], everything else zero / `Idle`.
    fn default() -> Self {
        Self { version: VERSION, seq: 0, timestamp: Millis48::ZERO, frame: 0, score: 0.0, visual_z: 0.0, semantic_z: 0.0, alarm: AlarmState::Idle, model_id: [0; 4] }
    }
}

impl ScorePacket {
    /// Whether the frame had a semantic score (`semantic_z` is not NaN).
    pub fn has_semantic(&self) -> bool {
        !self.semantic_z.is_nan()
    }

    /// Writes body + CRC (exactly [`MAX_PACKET`] bytes) to the front of `buf`.
    ///
    /// Errors: [`WireError::BufferTooSmall`] if `buf` is shorter than [`MAX_PACKET`],
    /// [`WireError::Version`] if `self.version` is not [`VERSION`].
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8], WireError> {
        if self.version != VERSION {
            return Err(WireError::Version { expected: VERSION, found: self.version });
        }
        let out = buf.get_mut(..MAX_PACKET).ok_or(WireError::BufferTooSmall)?;
        let (body, crc) = out.split_at_mut(BODY_LEN);
        let used = postcard::to_slice(self, body).map_err(|_| WireError::Postcard)?.len();
        if used != BODY_LEN {
            // Unreachable: every field has a fixed width (checked by the tests).
            return Err(WireError::Postcard);
        }
        crc.copy_from_slice(&crc16_ccitt_false(body).to_le_bytes());
        Ok(out)
    }

    /// Decodes body + CRC. The whole of `bytes` must be one packet.
    ///
    /// Checks, in order: an intact packet (valid CRC) whose first byte is not [`VERSION`] →
    /// [`WireError::Version`], whatever its length; fewer than [`MAX_PACKET`] bytes →
    /// [`WireError::Truncated`]; more → [`WireError::TrailingBytes`]; CRC →
    /// [`WireError::Crc`]; body → [`WireError::Postcard`] (alarm state byte > 3).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let split = bytes.len().saturating_sub(2);
        if split == 0 {
            return Err(WireError::Truncated);
        }
        let (body, trailer) = bytes.split_at(split);
        let found = u16::from_le_bytes([trailer[0], trailer[1]]);
        let expected = crc16_ccitt_false(body);
        if expected == found && body[0] != VERSION {
            return Err(WireError::Version { expected: VERSION, found: body[0] });
        }
        if bytes.len() < MAX_PACKET {
            return Err(WireError::Truncated);
        }
        if bytes.len() > MAX_PACKET {
            return Err(WireError::TrailingBytes);
        }
        if expected != found {
            return Err(WireError::Crc { expected, found });
        }
        match postcard::take_from_bytes::<Self>(body) {
            Ok((packet, [])) => Ok(packet),
            Ok(_) => Err(WireError::TrailingBytes),
            Err(_) => Err(WireError::Postcard),
        }
    }

    /// Writes the COBS-encoded packet and its `0x00` delimiter (exactly [`MAX_FRAMED`] bytes)
    /// to the front of `buf`.
    ///
    /// Errors: [`WireError::BufferTooSmall`] if `buf` is shorter than [`MAX_FRAMED`],
    /// [`WireError::Version`] as for [`encode`](Self::encode).
    pub fn encode_framed<'a>(&self, buf: &'a mut [u8]) -> Result<&'a [u8], WireError> {
        let mut raw = [0u8; MAX_PACKET];
        let raw = self.encode(&mut raw)?;
        let out = buf.get_mut(..MAX_FRAMED).ok_or(WireError::BufferTooSmall)?;
        let (data, _) = out.split_at_mut(MAX_FRAMED - 1);
        let n = cobs::encode(raw, data)?;
        out[n] = 0;
        Ok(&out[..=n])
    }

    /// Decodes one COBS frame, with or without its trailing `0x00` delimiter. The frame is
    /// decoded in place, so `frame` is overwritten.
    ///
    /// Errors: [`WireError::Cobs`] for a malformed (or empty) frame, then as for
    /// [`decode`](Self::decode).
    pub fn decode_framed(frame: &mut [u8]) -> Result<Self, WireError> {
        let frame = match frame {
            [rest @ .., 0] => rest,
            all => all,
        };
        let n = cobs::decode_in_place(frame)?;
        Self::decode(&frame[..n])
    }

    /// [`encode`](Self::encode) into an array.
    pub fn to_bytes(&self) -> Result<[u8; MAX_PACKET], WireError> {
        let mut buf = [0u8; MAX_PACKET];
        self.encode(&mut buf)?;
        Ok(buf)
    }

    /// [`encode_framed`](Self::encode_framed) into a `heapless::Vec`.
    pub fn to_frame(&self) -> Result<heapless::Vec<u8, MAX_FRAMED>, WireError> {
        let mut buf = [0u8; MAX_FRAMED];
        let n = self.encode_framed(&mut buf)?.len();
        let mut frame = heapless::Vec::new();
        frame.extend_from_slice(&buf[..n]).map_err(|_| WireError::BufferTooSmall)?;
        Ok(frame)
    }
}
