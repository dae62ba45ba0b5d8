//! Unit tests: encoding, the documented example, every error path, the deframer, fuzzing.

use super::*;
use std::{format, string::ToString, vec, vec::Vec};

/// xorshift64* — deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    fn u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn u32(&mut self) -> u32 {
        (self.u64() >> 32) as u32
    }
    fn u8(&mut self) -> u8 {
        (self.u64() >> 56) as u8
    }
    fn below(&mut self, n: usize) -> usize {
        (self.u64() % n as u64) as usize
    }
    /// A byte that is `0x00` with probability 1/`one_in`.
    fn byte_with_zeros(&mut self, one_in: usize) -> u8 {
        if self.below(one_in) == 0 {
            0
        } else {
            self.u8().max(1)
        }
    }
    fn bytes(&mut self, n: usize, zero_one_in: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte_with_zeros(zero_one_in)).collect()
    }
    fn f32(&mut self) -> f32 {
        match self.below(8) {
            0 => f32::NAN,
            1 => [f32::INFINITY, f32::NEG_INFINITY, -0.0, 0.0, f32::MAX, f32::MIN][self.below(6)],
            2 | 3 => f32::from_bits(self.u32()), // any bit pattern, NaN payloads included
            _ => (self.u32() as f32 / u32::MAX as f32 - 0.5) * 20.0,
        }
    }
    fn packet(&mut self) -> ScorePacket {
        let alarms = [AlarmState::Idle, AlarmState::Raised, AlarmState::Active, AlarmState::Cleared];
        ScorePacket {
            version: VERSION,
            seq: self.u32() as u16,
            timestamp: Millis48::saturating(self.u64() >> self.below(20)),
            frame: self.u32() >> self.below(32),
            score: self.f32(),
            visual_z: self.f32(),
            semantic_z: self.f32(),
            alarm: alarms[self.below(4)],
            model_id: self.u32().to_le_bytes(),
        }
    }
}

/// Field-by-field equality, floats compared by bits (NaN payloads must survive too).
fn same(a: &ScorePacket, b: &ScorePacket) -> bool {
    a.version == b.version
        && a.seq == b.seq
        && a.timestamp == b.timestamp
        && a.frame == b.frame
        && a.score.to_bits() == b.score.to_bits()
        && a.visual_z.to_bits() == b.visual_z.to_bits()
        && a.semantic_z.to_bits() == b.semantic_z.to_bits()
        && a.alarm == b.alarm
        && a.model_id == b.model_id
}

fn example_packet() -> ScorePacket {
    ScorePacket {
        version: VERSION,
        seq: 42,
        timestamp: Millis48::new(1_767_225_600_123).unwrap(),
        frame: 9000,
        score: 2.5,
        visual_z: 3.0,
        semantic_z: 1.25,
        alarm: AlarmState::Raised,
        model_id: [0xde, 0xad, 0xbe, 0xef],
    }
}

fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let crc = crc16_ccitt_false(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

fn framed(p: &ScorePacket) -> Vec<u8> {
    p.to_frame().unwrap().to_vec()
}

fn cobs_encode(src: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; cobs::max_encoded_len(src.len())];
    let n = cobs::encode(src, &mut out).unwrap();
    out.truncate(n);
    out
}

// ---------------------------------------------------------------------------------------------
// CRC and COBS

#[test]
fn crc_check_value() {
    assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
    assert_eq!(crc16_ccitt_false(b""), 0xFFFF);
    // No reflection and no final XOR: appending the CRC big endian leaves a zero remainder.
    let mut rng = Rng::new(1);
    for len in 0..200 {
        let mut data = rng.bytes(len, 4);
        let crc = crc16_ccitt_false(&data);
        data.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(crc16_ccitt_false(&data), 0, "len {len}");
    }
}

#[test]
fn cobs_reference_vectors() {
    // The examples from the COBS article on Wikipedia.
    let run = |from: u8, to: u8| (from..=to).collect::<Vec<u8>>();
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (vec![0x00], vec![0x01, 0x01]),
        (vec![0x00, 0x00], vec![0x01, 0x01, 0x01]),
        (vec![0x00, 0x11, 0x00], vec![0x01, 0x02, 0x11, 0x01]),
        (vec![0x11, 0x22, 0x00, 0x33], vec![0x03, 0x11, 0x22, 0x02, 0x33]),
        (vec![0x11, 0x22, 0x33, 0x44], vec![0x05, 0x11, 0x22, 0x33, 0x44]),
        (vec![0x11, 0x00, 0x00, 0x00], vec![0x02, 0x11, 0x01, 0x01, 0x01]),
        (run(0x01, 0xfe), [vec![0xff], run(0x01, 0xfe)].concat()),
        ([vec![0x00], run(0x01, 0xfe)].concat(), [vec![0x01, 0xff], run(0x01, 0xfe)].concat()),
        (run(0x01, 0xff), [vec![0xff], run(0x01, 0xfe), vec![0x02, 0xff]].concat()),
        ([run(0x02, 0xff), vec![0x00]].concat(), [vec![0xff], run(0x02, 0xff), vec![0x01, 0x01]].concat()),
        ([run(0x03, 0xff), vec![0x00, 0x01]].concat(), [vec![0xfe], run(0x03, 0xff), vec![0x02, 0x01]].concat()),
        (vec![], vec![0x01]),
    ];
    for (raw, enc) in cases {
        assert_eq!(cobs_encode(&raw), enc, "encode {raw:02x?}");
        let mut buf = enc.clone();
        let n = cobs::decode_in_place(&mut buf).unwrap();
        assert_eq!(&buf[..n], &raw[..], "decode {enc:02x?}");
    }
}

#[test]
fn cobs_round_trip_random() {
    let mut rng = Rng::new(2);
    for i in 0..20_000 {
        let (len, zeros) = (rng.below(if i % 10 == 0 { 1200 } else { 80 }), 1 + rng.below(300));
        let raw = rng.bytes(len, zeros);
        let enc = cobs_encode(&raw);
        assert!(!enc.contains(&0));
        assert!(enc.len() <= cobs::max_encoded_len(raw.len()));
        let mut buf = enc.clone();
        let n = cobs::decode_in_place(&mut buf).unwrap();
        assert_eq!(&buf[..n], &raw[..]);
    }
}

#[test]
fn cobs_rejects_malformed() {
    for bad in [&[][..], &[0x00], &[0x02], &[0x03, 0x11], &[0x02, 0x00], &[0x01, 0x00, 0x01]] {
        let mut buf = bad.to_vec();
        assert_eq!(cobs::decode_in_place(&mut buf), Err(WireError::Cobs), "{bad:02x?}");
    }
    let mut small = [0u8; 4];
    assert_eq!(cobs::encode(&[1, 2, 3, 4], &mut small), Err(WireError::BufferTooSmall));
}

// ---------------------------------------------------------------------------------------------
// The documented example

/// Hex bytes following `tag` in the crate docs, continued on the following doc lines.
fn doc_hex_block(src: &str, tag: &str) -> Vec<u8> {
    let mut lines = src.lines().map(|l| l.strip_prefix("//!").unwrap_or("").trim());
    let first = lines.by_ref().find_map(|l| l.strip_prefix(tag)).unwrap_or_else(|| panic!("no `{tag}` line in the crate docs"));
    let parse = |l: &str| -> Option<Vec<u8>> { l.split_whitespace().map(|t| (t.len() == 2).then(|| u8::from_str_radix(t, 16).ok()).flatten()).collect() };
    let mut bytes = parse(first).expect("hex bytes after the tag");
    for l in lines {
        match parse(l) {
            Some(more) if !more.is_empty() => bytes.extend(more),
            _ => break,
        }
    }
    bytes
}

#[test]
fn documented_example_matches_encoder() {
    let src = include_str!("lib.rs");
    let p = example_packet();
    let bytes = p.to_bytes().unwrap();
    let frame = framed(&p);

    assert_eq!(doc_hex_block(src, "packet:"), bytes);
    assert_eq!(doc_hex_block(src, "framed:"), frame);

    // Every row `| offset | `hex` | field | value |` of the field-by-field table.
    let mut covered = 0;
    for line in src.lines().filter_map(|l| l.strip_prefix("//! |")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Ok(offset), Some(hex)) = (cells[0].parse::<usize>(), cells.get(1).and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))) else {
            continue;
        };
        let want: Vec<u8> = hex.split_whitespace().map(|t| u8::from_str_radix(t, 16).unwrap()).collect();
        assert_eq!(offset, covered, "table rows must be contiguous: {line}");
        assert_eq!(&bytes[offset..offset + want.len()], &want[..], "row {line}");
        covered += want.len();
    }
    assert_eq!(covered, MAX_PACKET, "the table covers the whole packet");

    assert_eq!(crc16_ccitt_false(&bytes[..BODY_LEN]), 0xd720);
    assert_eq!(Millis48::new(1_767_225_600_123).unwrap().as_millis(), 0x019b_76da_a87b);
    assert!(same(&ScorePacket::decode(&bytes).unwrap(), &p));
}

#[test]
fn body_is_plain_postcard() {
    let p = example_packet();
    let mut buf = [0u8; 64];
    let body = postcard::to_slice(&p, &mut buf).unwrap();
    assert_eq!(body, &p.to_bytes().unwrap()[..BODY_LEN]);
    let back: ScorePacket = postcard::from_bytes(body).unwrap();
    assert!(same(&back, &p));
}

#[test]
fn json_stays_readable() {
    let p = example_packet();
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(json, r#"{"version":1,"seq":42,"timestamp":1767225600123,"frame":9000,"score":2.5,"visual_z":3.0,"semantic_z":1.25,"alarm":"Raised","model_id":[222,173,190,239]}"#);
    assert!(same(&serde_json::from_str::<ScorePacket>(&json).unwrap(), &p));
    let too_late = json.replace("1767225600123", "281474976710656"); // 2^48
    assert!(serde_json::from_str::<ScorePacket>(&too_late).is_err());
}

// ---------------------------------------------------------------------------------------------
// Size

#[test]
fn worst_case_size() {
    let worst = ScorePacket {
        version: VERSION,
        seq: u16::MAX,
        timestamp: Millis48::MAX,
        frame: u32::MAX,
        score: f32::from_bits(u32::MAX), // NaN with every bit set
        visual_z: f32::MIN,
        semantic_z: f32::NAN,
        alarm: AlarmState::Cleared,
        model_id: [0xff; 4],
    };
    let zeros = ScorePacket { timestamp: Millis48::ZERO, ..ScorePacket::default() };
    let over = ScorePacket { timestamp: Millis48::saturating(u64::MAX), ..worst };
    assert_eq!(over.timestamp, Millis48::MAX);
    assert_eq!(Millis48::new(u64::MAX), None);
    assert_eq!(Millis48::new(1 << 48), None);

    for p in [worst, zeros, over, example_packet()] {
        let mut buf = [0u8; 64];
        let n = p.encode(&mut buf).unwrap().len();
        assert_eq!(n, MAX_PACKET);
        let f = p.encode_framed(&mut buf).unwrap().len();
        assert_eq!(f, MAX_FRAMED);
    }
    const { assert!(MAX_PACKET <= 32) };
    assert_eq!((MAX_PACKET, MAX_FRAMED), (32, 34));

    // Exact buffers suffice, one byte less does not.
    let mut exact = [0u8; MAX_PACKET];
    assert!(worst.encode(&mut exact).is_ok());
    assert_eq!(worst.encode(&mut exact[..MAX_PACKET - 1]), Err(WireError::BufferTooSmall));
    let mut exact = [0u8; MAX_FRAMED];
    assert!(worst.encode_framed(&mut exact).is_ok());
    assert_eq!(worst.encode_framed(&mut exact[..MAX_FRAMED - 1]), Err(WireError::BufferTooSmall));
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn round_trip_random_packets() {
    let mut rng = Rng::new(3);
    let mut deframer = Deframer::<MAX_FRAMED>::new();
    for _ in 0..100_000 {
        let p = rng.packet();
        let mut buf = [0u8; MAX_PACKET];
        let bytes = p.encode(&mut buf).unwrap();
        assert_eq!(bytes.len(), MAX_PACKET);
        assert!(same(&ScorePacket::decode(bytes).unwrap(), &p), "{p:?}");

        let mut frame = framed(&p);
        assert_eq!(frame.len(), MAX_FRAMED);
        assert_eq!(frame.iter().position(|&b| b == 0), Some(MAX_FRAMED - 1));
        let mut results = deframer.feed(&frame).collect::<Vec<_>>();
        assert_eq!(results.len(), 1);
        assert!(same(&results.pop().unwrap().unwrap(), &p));
        assert!(same(&ScorePacket::decode_framed(&mut frame).unwrap(), &p));
        // Without the delimiter too.
        let mut frame = framed(&p);
        frame.pop();
        assert!(same(&ScorePacket::decode_framed(&mut frame).unwrap(), &p));
    }
}

#[test]
fn alarm_helpers_and_semantic() {
    assert!(!AlarmState::Idle.is_on() && !AlarmState::Idle.is_edge());
    assert!(AlarmState::Raised.is_on() && AlarmState::Raised.is_edge());
    assert!(AlarmState::Active.is_on() && !AlarmState::Active.is_edge());
    assert!(!AlarmState::Cleared.is_on() && AlarmState::Cleared.is_edge());
    let mut p = example_packet();
    assert!(p.has_semantic());
    p.semantic_z = f32::NAN;
    assert!(!p.has_semantic());
    let back = ScorePacket::decode(&p.to_bytes().unwrap()).unwrap();
    assert!(!back.has_semantic());
}

// ---------------------------------------------------------------------------------------------
// Error paths

#[test]
fn every_flipped_bit_is_a_crc_error() {
    let mut rng = Rng::new(4);
    for p in [example_packet(), rng.packet(), rng.packet()] {
        let good = p.to_bytes().unwrap();
        for bit in 0..MAX_PACKET * 8 {
            let mut bad = good;
            bad[bit / 8] ^= 1 << (bit % 8);
            let expected = crc16_ccitt_false(&bad[..BODY_LEN]);
            let found = u16::from_le_bytes([bad[BODY_LEN], bad[BODY_LEN + 1]]);
            assert_eq!(ScorePacket::decode(&bad), Err(WireError::Crc { expected, found }), "bit {bit}");
        }
    }
}

#[test]
fn other_versions_are_version_errors() {
    let good = example_packet().to_bytes().unwrap();
    for v in (0..=255u8).filter(|&v| v != VERSION) {
        let mut body = good[..BODY_LEN].to_vec();
        body[0] = v;
        let bad = with_crc(body);
        let want = Err(WireError::Version { expected: VERSION, found: v });
        assert_eq!(ScorePacket::decode(&bad), want);
        // Framed, through the deframer.
        let mut frame = cobs_encode(&bad);
        frame.push(0);
        assert_eq!(ScorePacket::decode_framed(&mut frame.clone()), want);
        let mut d = Deframer::<MAX_FRAMED>::new();
        assert_eq!(d.feed(&frame).collect::<Vec<_>>(), [want]);
    }
    // A future version of another length is still recognised as such.
    for len in [3usize, 10, 31, 33, 60] {
        let mut body = vec![0x5a; len - 2];
        body[0] = 2;
        assert_eq!(ScorePacket::decode(&with_crc(body)), Err(WireError::Version { expected: 1, found: 2 }), "len {len}");
    }
    // And this crate refuses to emit anything but its own version.
    let p = ScorePacket { version: 2, ..example_packet() };
    let want = Err(WireError::Version { expected: 1, found: 2 });
    assert_eq!(p.encode(&mut [0u8; 64]), want);
    assert_eq!(p.encode_framed(&mut [0u8; 64]), want);
    assert_eq!(p.to_bytes(), want.map(|_: &[u8]| [0u8; MAX_PACKET]));
}

#[test]
fn truncated_and_trailing() {
    let good = example_packet().to_bytes().unwrap();
    for len in 0..MAX_PACKET {
        assert_eq!(ScorePacket::decode(&good[..len]), Err(WireError::Truncated), "len {len}");
    }
    let mut rng = Rng::new(5);
    for extra in 1..=40 {
        let mut long = good.to_vec();
        long.extend(rng.bytes(extra, 3));
        assert_eq!(ScorePacket::decode(&long), Err(WireError::TrailingBytes), "extra {extra}");
    }
    // Truncated and padded frames.
    let frame = framed(&example_packet());
    for len in 1..MAX_FRAMED - 2 {
        let mut cut = frame[..len].to_vec();
        assert!(ScorePacket::decode_framed(&mut cut).is_err(), "len {len}");
    }
    let mut long = frame[..MAX_FRAMED - 1].to_vec();
    long.extend_from_slice(&[0x01, 0x01]); // two more (empty) groups: decodes to 34 bytes
    assert_eq!(ScorePacket::decode_framed(&mut long), Err(WireError::TrailingBytes));
}

#[test]
fn bad_alarm_byte_is_a_postcard_error() {
    let good = example_packet().to_bytes().unwrap();
    for a in 4..=255u8 {
        let mut body = good[..BODY_LEN].to_vec();
        body[25] = a;
        assert_eq!(ScorePacket::decode(&with_crc(body)), Err(WireError::Postcard), "{a}");
    }
}

#[test]
fn bad_cobs() {
    assert_eq!(ScorePacket::decode_framed(&mut []), Err(WireError::Cobs));
    assert_eq!(ScorePacket::decode_framed(&mut [0]), Err(WireError::Cobs));
    let frame = framed(&example_packet());
    // A zero inside the frame.
    let mut bad = frame.clone();
    bad[5] = 0;
    assert_eq!(ScorePacket::decode_framed(&mut bad), Err(WireError::Cobs));
    // A code byte pointing past the end.
    let mut bad = frame.clone();
    bad[0] = 0x40;
    assert_eq!(ScorePacket::decode_framed(&mut bad), Err(WireError::Cobs));
    // Every single-bit error in a frame is caught, whichever check catches it.
    for bit in 0..(MAX_FRAMED - 1) * 8 {
        let mut bad = frame.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(ScorePacket::decode_framed(&mut bad).is_err(), "bit {bit}");
    }
}

#[test]
fn error_display() {
    let errors = [
        WireError::BufferTooSmall,
        WireError::Crc { expected: 0x1234, found: 0xabcd },
        WireError::Version { expected: 1, found: 7 },
        WireError::Cobs,
        WireError::Truncated,
        WireError::TrailingBytes,
        WireError::Overlong,
        WireError::Postcard,
    ];
    let texts: Vec<_> = errors.iter().map(|e| format!("{e}")).collect();
    assert!(texts[1].contains("0x1234") && texts[1].contains("0xabcd"), "{}", texts[1]);
    assert!(texts[2].contains('7') && texts[2].contains('1'), "{}", texts[2]);
    for (i, t) in texts.iter().enumerate() {
        assert!(!t.is_empty());
        assert!(texts[..i].iter().all(|u| u != t), "distinct messages");
    }
    let boxed: std::boxed::Box<dyn core::error::Error> = std::boxed::Box::new(WireError::Cobs);
    assert_eq!(boxed.to_string(), "malformed COBS frame");
}

// ---------------------------------------------------------------------------------------------
// Deframer

#[derive(Default, Debug, PartialEq)]
struct Tally {
    good: Vec<ScorePacket>,
    bad: usize,
    overlong: usize,
}

fn run<const N: usize>(stream: &[u8], chunks: &mut Rng) -> Tally {
    let mut d = Deframer::<N>::new();
    let mut t = Tally::default();
    let mut rest = stream;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(1 + chunks.below(rest.len().min(100)));
        rest = tail;
        for r in d.feed(chunk) {
            match r {
                Ok(p) => t.good.push(p),
                Err(WireError::Overlong) => {
                    t.bad += 1;
                    t.overlong += 1;
                }
                Err(_) => t.bad += 1,
            }
        }
    }
    t
}

#[test]
fn deframer_resynchronises_on_a_dirty_stream() {
    let mut rng = Rng::new(6);
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    let mut good_chunks = 0;
    for i in 0..3000 {
        match rng.below(8) {
            // A good frame, sometimes preceded by a bare delimiter.
            0..=2 => {
                let p = rng.packet();
                if rng.below(4) == 0 {
                    stream.push(0);
                }
                stream.extend(framed(&p));
                sent.push(p);
                good_chunks += 1;
            }
            // Garbage, always ended by a delimiter (else it swallows the next frame: see below).
            3 => {
                let len = rng.below(120);
                let zeros = 1 + rng.below(40);
                stream.extend(rng.bytes(len, zeros));
                stream.push(0);
            }
            // A frame with a flipped bit (which may also split it in two).
            4 => {
                let mut f = framed(&rng.packet());
                let bit = rng.below((MAX_FRAMED - 1) * 8);
                f[bit / 8] ^= 1 << (bit % 8);
                stream.extend(f);
            }
            // A truncated frame.
            5 => {
                let f = framed(&rng.packet());
                stream.extend(&f[..1 + rng.below(MAX_FRAMED - 2)]);
                stream.push(0);
            }
            // Another version with a valid CRC.
            6 => {
                let mut body = rng.packet().to_bytes().unwrap()[..BODY_LEN].to_vec();
                body[0] = 2 + (i % 200) as u8;
                stream.extend(cobs_encode(&with_crc(body)));
                stream.push(0);
            }
            // An overlong run.
            _ => {
                let len = MAX_FRAMED + rng.below(300);
                stream.extend(rng.bytes(len, 100_000));
                stream.push(0);
            }
        }
    }
    let chunks: Vec<&[u8]> = stream.split(|&b| b == 0).filter(|c| !c.is_empty()).collect();
    let bad = chunks.len() - good_chunks;
    for (capacity, t) in [(MAX_FRAMED, run::<MAX_FRAMED>(&stream, &mut Rng::new(7))), (MAX_FRAMED - 1, run::<{ MAX_FRAMED - 1 }>(&stream, &mut Rng::new(8)))] {
        assert_eq!(t.good.len(), sent.len(), "N = {capacity}");
        assert!(t.good.iter().zip(&sent).all(|(a, b)| same(a, b)), "in order");
        assert_eq!(t.bad, bad);
        let overlong = chunks.iter().filter(|c| c.len() > capacity).count();
        assert!(overlong > 100);
        assert_eq!(t.overlong, overlong);
    }
    // A larger buffer sees the same good packets; long chunks become length errors instead.
    let t = run::<4096>(&stream, &mut Rng::new(9));
    assert_eq!((t.good.len(), t.bad, t.overlong), (sent.len(), bad, 0));
}

#[test]
fn deframer_garbage_without_delimiter_costs_one_frame() {
    let a = ScorePacket { seq: 1, ..example_packet() };
    let b = ScorePacket { seq: 2, ..example_packet() };
    let c = ScorePacket { seq: 3, ..example_packet() };
    let mut stream = framed(&a);
    stream.extend_from_slice(b"\x42\x42"); // noise that merges into the next frame
    stream.extend(framed(&b));
    stream.extend(framed(&c));
    let mut d = Deframer::<MAX_FRAMED>::new();
    let results: Vec<_> = d.feed(&stream).collect();
    assert_eq!(results.len(), 3);
    assert!(same(results[0].as_ref().unwrap(), &a));
    assert!(results[1].is_err());
    assert!(same(results[2].as_ref().unwrap(), &c));
    assert_eq!(d.pending(), 0);
}

#[test]
fn deframer_capacity_edges_and_reset() {
    let p = example_packet();
    let frame = framed(&p);
    // N = MAX_FRAMED - 1 holds a frame exactly.
    let mut d = Deframer::<{ MAX_FRAMED - 1 }>::new();
    assert!(same(&d.feed(&frame).next().unwrap().unwrap(), &p));
    // One extra byte overflows it: Overlong, then the next frame decodes.
    let mut long = vec![0x07];
    long.extend(&frame);
    long.extend(&frame);
    let r: Vec<_> = d.feed(&long).collect();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0], Err(WireError::Overlong));
    assert!(same(r[1].as_ref().unwrap(), &p));
    // Delimiters alone yield nothing.
    assert_eq!(d.feed(&[0, 0, 0]).count(), 0);
    // reset() drops a partial frame.
    let _ = d.feed(&frame[..10]).count();
    assert_eq!(d.pending(), 10);
    d.reset();
    assert_eq!(d.pending(), 0);
    assert!(same(&d.feed(&frame).next().unwrap().unwrap(), &p));
    // Default is new().
    let mut d = Deframer::<64>::default();
    assert!(same(&d.feed(&frame).next().unwrap().unwrap(), &p));
}

// ---------------------------------------------------------------------------------------------
// Fuzz-like: nothing panics, and whatever is accepted re-encodes to the same bytes.

#[test]
fn random_input_never_panics() {
    let mut rng = Rng::new(10);
    let mut small = Deframer::<{ MAX_FRAMED - 1 }>::new();
    let mut big = Deframer::<300>::new();
    let templates = [framed(&example_packet()), framed(&rng.packet())];
    for i in 0..100_000 {
        // Random streams of varied zero density.
        let (len, zeros) = (rng.below(400), 1 + rng.below(200));
        let stream = rng.bytes(len, zeros);
        for p in small.feed(&stream).chain(big.feed(&stream)).flatten() {
            assert_eq!(p.version, VERSION);
        }

        // Random packets and frames, direct.
        let len = rng.below(80);
        let zeros = 1 + rng.below(50);
        let bytes = rng.bytes(len, zeros);
        if let Ok(p) = ScorePacket::decode(&bytes) {
            assert_eq!(&p.to_bytes().unwrap()[..], &bytes[..]);
        }
        let mut frame = bytes.clone();
        if let Ok(p) = ScorePacket::decode_framed(&mut frame) {
            let mut canon = framed(&p);
            if bytes.last() != Some(&0) {
                canon.pop();
            }
            assert_eq!(canon, bytes);
        }

        // Random bodies with a valid CRC: only the alarm byte can still be wrong.
        let mut body = rng.bytes(BODY_LEN, 256);
        body[0] = VERSION;
        if i % 2 == 0 {
            body[25] = rng.below(4) as u8;
        }
        let packet = with_crc(body.clone());
        match ScorePacket::decode(&packet) {
            Ok(p) => assert_eq!(&p.to_bytes().unwrap()[..], &packet[..]),
            Err(e) => assert!(body[25] > 3 && e == WireError::Postcard, "{e:?}"),
        }

        // Mutated valid frames: changed, inserted and deleted bytes.
        let mut m = templates[i % 2].clone();
        for _ in 0..1 + rng.below(3) {
            match rng.below(3) {
                0 => {
                    let at = rng.below(m.len());
                    m[at] = rng.u8();
                }
                1 => m.insert(rng.below(m.len() + 1), rng.u8()),
                _ => {
                    if !m.is_empty() {
                        m.remove(rng.below(m.len()));
                    }
                }
            }
        }
        let _ = ScorePacket::decode_framed(&mut m.clone());
        let _ = ScorePacket::decode(&m);
        for r in small.feed(&m).chain(big.feed(&m)) {
            let _ = r;
        }
    }
}

#[cfg(feature = "std")]
#[test]
fn std_clock() {
    use std::time::{Duration, UNIX_EPOCH};
    let now = Millis48::now();
    assert!(now.as_millis() > 1_700_000_000_000);
    let t = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
    assert_eq!(Millis48::from_system_time(t).unwrap().as_millis(), 1_767_225_600_123);
    assert_eq!(Millis48::from_system_time(UNIX_EPOCH + Duration::from_millis(1 << 48)), None);
    assert_eq!(Millis48::from_system_time(UNIX_EPOCH - Duration::from_millis(1)), None);
}

/// The worked example of docs/mqtt-and-wire.md decodes to the fields the document gives, and encodes
/// back to the same bytes.
#[test]
fn documented_example_packet() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/mqtt-and-wire.md")).unwrap();
    let hex = doc.split("The whole example packet: `").nth(1).and_then(|r| r.split('`').next()).expect("the example packet in the document");
    let bytes: Vec<u8> = hex.split(' ').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
    let p = ScorePacket::decode(&bytes).unwrap();
    assert_eq!((p.version, p.seq, p.timestamp.as_millis(), p.frame), (1, 42, 1000, 7));
    assert_eq!((p.score, p.visual_z), (4.0, 3.0));
    assert!(p.semantic_z.is_nan());
    assert_eq!((p.alarm, p.model_id), (AlarmState::Raised, [0xde, 0xad, 0xbe, 0xef]));
    let mut buf = [0u8; MAX_PACKET];
    assert_eq!(p.encode(&mut buf).unwrap(), &bytes[..]);
}
