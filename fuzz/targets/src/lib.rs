//! The fuzz targets' bodies. Each takes arbitrary bytes and must neither panic nor break the
//! invariant it checks (a broken invariant panics, which the fuzzer reports as a crash).
//!
//! - [`packet_stream`]: the wire deframer, the raw packet decoder and the field unit's firmware
//!   core on one byte stream; every packet that decodes survives an encode/decode round trip.
//! - [`edge_config`]: `sfn-edge`'s TOML config loader with `--set` overrides; a config that loads
//!   passes its own checks again after a serialise/parse round trip of its TOML.
//! - [`model_manifest`]: the `model.json` loader; a manifest that loads has sizes that can be
//!   multiplied without overflow, and its causal calibration builds a scorer that scores.
//!
//! `fuzz/fuzz_targets/*.rs` wrap these for cargo-fuzz (`scripts/fuzz.sh`); `tests/corpus.rs` runs
//! them over the committed corpora on every test run.

use std::convert::Infallible;
use std::path::Path;

use embedded_hal::digital::{ErrorType, OutputPin};
use sfn_firmware_core::{AlarmUnit, Config};
use sfn_wire::{Deframer, ScorePacket, MAX_FRAMED, MAX_PACKET};

/// Names of the targets, as the corpus folders and cargo-fuzz binaries are named.
pub const TARGETS: [&str; 3] = ["packet_stream", "edge_config", "model_manifest"];

/// Runs target `name` on `data`; `false` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "packet_stream" => packet_stream(data),
        "edge_config" => edge_config(data),
        "model_manifest" => model_manifest(data),
        _ => return false,
    }
    true
}

fn roundtrip(p: &ScorePacket) {
    // Compared as bytes: a packet without a semantic stream carries NaN, which is not == itself.
    let raw = p.to_bytes().expect("a decoded packet encodes");
    let again = ScorePacket::decode(&raw).expect("an encoded packet decodes");
    assert_eq!(again.to_bytes().expect("re-encodes"), raw, "raw round trip of {p:?}");
    let mut frame = p.to_frame().expect("a decoded packet frames");
    let n = frame.len();
    let again = ScorePacket::decode_framed(&mut frame[..n - 1]).expect("a framed packet decodes");
    assert_eq!(again.to_bytes().expect("re-encodes"), raw, "framed round trip of {p:?}");
}

/// A pin that remembers its level.
#[derive(Default)]
struct Pin(bool);

impl ErrorType for Pin {
    type Error = Infallible;
}

impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0 = false;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0 = true;
        Ok(())
    }
}

/// Deframer + raw decode + firmware core on the same bytes.
pub fn packet_stream(data: &[u8]) {
    let mut deframer = Deframer::<MAX_FRAMED>::new();
    for &b in data {
        if let Some(Ok(p)) = deframer.push(b) {
            roundtrip(&p);
        }
    }
    // Bounded by its capacity (an overlong frame is dropped at its delimiter).
    assert!(deframer.pending() <= MAX_FRAMED, "deframer holds {} bytes", deframer.pending());
    if let Ok(p) = ScorePacket::decode(&data[..data.len().min(MAX_PACKET)]) {
        roundtrip(&p);
    }

    // The field unit reads the stream in chunks whose sizes come from the data, a millisecond apart.
    let mut unit = AlarmUnit::new(Config::DEFAULT, Pin::default(), Pin::default(), 0);
    let mut now = 0u64;
    let mut rest = data;
    while !rest.is_empty() {
        let n = (usize::from(rest[0]) % 40 + 1).min(rest.len());
        unit.on_bytes(&rest[..n], now);
        rest = &rest[n..];
        now += 1;
        let s = unit.status();
        if s.alarm {
            assert!(s.siren_wanted && s.relay_latched, "alarm on without siren or latch: {s:?}");
        }
        let (siren, relay) = unit.pins();
        assert_eq!(Some(siren.0), s.siren_written, "siren pin");
        assert_eq!(Some(relay.0), s.relay_written, "relay pin");
    }
    // Silence past the heartbeat: the link must be reported lost.
    unit.tick(now + Config::DEFAULT.heartbeat_timeout_ms + 1);
    assert!(matches!(unit.status().link, sfn_firmware_core::Link::Lost { .. }), "link after silence: {:?}", unit.status().link);
}

/// Splits `data` at the first NUL: TOML before it, one `--set` override per line after it.
fn config_parts(data: &[u8]) -> Option<(&str, Vec<String>)> {
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let text = std::str::from_utf8(text).ok()?;
    let overrides = String::from_utf8_lossy(rest).lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    Some((text, overrides))
}

/// The edge config loader (TOML + overrides).
pub fn edge_config(data: &[u8]) {
    let Some((text, overrides)) = config_parts(data) else { return };
    let path = Path::new("/fuzz/edge.toml");
    if let Ok(cfg) = sfn_edge::config::EdgeConfig::parse(text, path, &overrides) {
        // What loaded serialises, and loads again to the same config (paths are already absolute).
        let toml = toml::to_string(&cfg).expect("a loaded config serialises");
        let again = sfn_edge::config::EdgeConfig::parse(&toml, path, &[]).unwrap_or_else(|e| panic!("reloading {toml}: {e}"));
        assert_eq!(again, cfg, "config round trip");
    }
}

/// The `model.json` loader.
pub fn model_manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(m) = sfn_infer::manifest::Manifest::parse(text, Path::new("/fuzz/model.json")) else { return };
    // Sizes the runtime allocates from.
    let frame = m.frame_len();
    let patches = m.num_patches();
    assert!(frame > 0 && patches > 0);
    frame.checked_mul(m.window).expect("window buffer size");
    patches.checked_mul(m.text_dim.max(1)).expect("token buffer size");
    if let Some(cal) = &m.calibration {
        let mut scorer = sfn_scoring::CausalScorer::new(cal);
        for v in [0.0, 1.0, f32::NAN, f32::MAX, -1.0] {
            let s = scorer.push(v, Some(v));
            assert!(s.is_finite(), "causal score {s} from {v}");
        }
        // A speed cue the runtime would accept scores a (small) frame pair or says why.
        let img = &m.image;
        if let Some(sp) = cal.speed.as_ref().filter(|sp| sp.check(img.height, img.width).is_ok()) {
            if frame <= 4096 {
                let last: Vec<f32> = (0..frame).map(|i| (i % 7) as f32 / 7.0 - 0.5).collect();
                let next: Vec<f32> = (0..frame).map(|i| (i % 5) as f32 / 5.0 - 0.5).collect();
                if let Ok(s) = sp.score(&last, &next, img.channels, img.height, img.width) {
                    assert!(!s.is_nan(), "speed score NaN from validated statistics");
                }
            }
        }
    }
}
