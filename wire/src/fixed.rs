//! serde adapters: fixed-width little-endian integers in binary formats (postcard would
//! otherwise write varints), plain numbers in human-readable ones (JSON).

macro_rules! fixed_le {
    ($module:ident, $ty:ty, $n:literal) => {
        pub(crate) mod $module {
            use serde::{Deserialize, Deserializer, Serialize, Serializer};

            pub(crate) fn serialize<S: Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    v.serialize(s)
                } else {
                    v.to_le_bytes().serialize(s)
                }
            }

            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                if d.is_human_readable() {
                    <$ty>::deserialize(d)
                } else {
                    <[u8; $n]>::deserialize(d).map(<$ty>::from_le_bytes)
                }
            }
        }
    };
}

fixed_le!(u16_le, u16, 2);
fixed_le!(u32_le, u32, 4);
