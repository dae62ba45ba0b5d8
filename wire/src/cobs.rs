//! Consistent Overhead Byte Stuffing: removes every `0x00` from a frame so that `0x00` can
//! delimit frames on a byte stream.

use crate::WireError;

/// Upper bound of the COBS encoding of `n` bytes (one code byte, plus one per 254 data bytes),
/// not counting the `0x00` delimiter; exact for `n < 254`.
pub(crate) const fn max_encoded_len(n: usize) -> usize {
    n + n / 254 + 1
}

/// COBS-encodes `src` into `dst` (no delimiter); returns the encoded length.
pub(crate) fn encode(src: &[u8], dst: &mut [u8]) -> Result<usize, WireError> {
    if dst.len() < max_encoded_len(src.len()) {
        return Err(WireError::BufferTooSmall);
    }
    let mut code_at = 0; // where the current group's code byte goes
    let mut write = 1;
    let mut code: u8 = 1; // 1 + data bytes in the current group
    for &b in src {
        if code == 0xFF {
            // 254 data bytes without a zero: close the group (no implied zero) only now that
            // more input follows, so a packet ending on a full group gets no extra code byte.
            dst[code_at] = code;
            code_at = write;
            write += 1;
            code = 1;
        }
        if b == 0 {
            dst[code_at] = code;
            code_at = write;
            write += 1;
            code = 1;
        } else {
            dst[write] = b;
            write += 1;
            code += 1;
        }
    }
    dst[code_at] = code;
    Ok(write)
}

/// COBS-decodes `buf` in place (it must hold no delimiter); returns the decoded length.
///
/// Rejects an empty input, a `0x00` anywhere, and a code byte that points past the end.
pub(crate) fn decode_in_place(buf: &mut [u8]) -> Result<usize, WireError> {
    if buf.is_empty() {
        return Err(WireError::Cobs);
    }
    let mut read = 0;
    let mut write = 0; // always < read, so decoding in place never overwrites unread bytes
    while read < buf.len() {
        let code = buf[read];
        if code == 0 {
            return Err(WireError::Cobs);
        }
        read += 1;
        let end = read + usize::from(code) - 1;
        if end > buf.len() {
            return Err(WireError::Cobs);
        }
        while read < end {
            let b = buf[read];
            if b == 0 {
                return Err(WireError::Cobs);
            }
            buf[write] = b;
            write += 1;
            read += 1;
        }
        if code != 0xFF && read < buf.len() {
            buf[write] = 0;
            write += 1;
        }
    }
    Ok(write)
}
