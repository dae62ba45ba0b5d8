//! 48-bit millisecond timestamps.

use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch, limited to 48 bits (until the year 10889) so that it
/// takes 6 bytes on the wire instead of 8 (fixed `u64`) or 10 (worst-case varint `u64`).
///
/// Every value of this type is encodable: out-of-range milliseconds are rejected by
/// [`new`](Self::new) or clamped by [`saturating`](Self::saturating). In binary serde formats
/// it is 6 little-endian bytes, in human-readable ones a plain integer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis48(u64);

impl Millis48 {
    /// The Unix epoch.
    pub const ZERO: Self = Self(0);
    /// `2^48 - 1` ms, in the year 10889.
    pub const MAX: Self = Self((1 << 48) - 1);

    /// `ms` if it fits in 48 bits.
    pub const fn new(ms: u64) -> Option<Self> {
        if ms <= Self::MAX.0 {
            Some(Self(ms))
        } else {
            None
        }
    }

    /// `ms`, clamped to [`MAX`](Self::MAX).
    pub const fn saturating(ms: u64) -> Self {
        if ms <= Self::MAX.0 {
            Self(ms)
        } else {
            Self::MAX
        }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The 6 wire bytes, little endian.
    pub const fn to_le_bytes(self) -> [u8; 6] {
        let b = self.0.to_le_bytes();
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }

    /// From the 6 wire bytes, little endian (every byte pattern is valid).
    pub const fn from_le_bytes(b: [u8; 6]) -> Self {
        Self(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0]))
    }

    /// `t` as milliseconds since the epoch; `None` before the epoch or after [`MAX`](Self::MAX).
    #[cfg(feature = "std")]
    pub fn from_system_time(t: std::time::SystemTime) -> Option<Self> {
        let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
        u64::try_from(ms).ok().and_then(Self::new)
    }

    /// The system clock now (a clock set before 1970 reads as [`ZERO`](Self::ZERO)).
    #[cfg(feature = "std")]
    pub fn now() -> Self {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Self::saturating(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Err(_) => Self::ZERO,
        }
    }
}

impl From<Millis48> for u64 {
    fn from(t: Millis48) -> u64 {
        t.0
    }
}

impl Serialize for Millis48 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_u64(self.0)
        } else {
            self.to_le_bytes().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Millis48 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let ms = u64::deserialize(d)?;
            Self::new(ms).ok_or_else(|| D::Error::custom("timestamp exceeds 48 bits"))
        } else {
            <[u8; 6]>::deserialize(d).map(Self::from_le_bytes)
        }
    }
}
