//! Decoded records as output: a fixed-width table and JSON lines.

use serde::Serialize;
use sfn_wire::AlarmState;

use super::Record;

pub use sfn_edge::timefmt::iso8601_ms;

fn alarm_name(a: AlarmState) -> &'static str {
    match a {
        AlarmState::Idle => "idle",
        AlarmState::Raised => "raised",
        AlarmState::Active => "active",
        AlarmState::Cleared => "cleared",
    }
}

fn model_hex(id: [u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Column header for [`table_row`].
pub fn table_header() -> String {
    format!("{:>5}  {:<24}  {:>10}  {:>9}  {:>9}  {:>10}  {:<7}  {}", "seq", "time (UTC)", "frame", "score", "visual_z", "semantic_z", "alarm", "model_id")
}

/// One fixed-width table line: seq, capture time (ISO 8601 UTC, ms), frame, score, visual z,
/// semantic z (`-` when none), alarm state, model id (hex). Scores with 3 decimals.
pub fn table_row(r: &Record) -> String {
    let p = &r.packet;
    let semantic = if p.has_semantic() { format!("{:.3}", p.semantic_z) } else { "-".to_string() };
    format!(
        "{:>5}  {:<24}  {:>10}  {:>9.3}  {:>9.3}  {:>10}  {:<7}  {}",
        p.seq,
        iso8601_ms(p.timestamp.as_millis()),
        p.frame,
        p.score,
        p.visual_z,
        semantic,
        alarm_name(p.alarm),
        model_hex(p.model_id),
    )
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    source: &'a str,
    version: u8,
    seq: u16,
    timestamp_ms: u64,
    time: String,
    frame: u32,
    score: Option<f32>,
    visual_z: Option<f32>,
    semantic_z: Option<f32>,
    alarm: &'static str,
    model_id: String,
}

fn finite(x: f32) -> Option<f32> {
    x.is_finite().then_some(x)
}

/// One JSON object (no trailing newline): `source`, `version`, `seq`, `timestamp_ms`, `time`
/// (ISO 8601), `frame`, `score`, `visual_z`, `semantic_z` (`null` when NaN; any non-finite
/// value is `null`), `alarm` (`idle`/`raised`/`active`/`cleared`), `model_id` (hex).
pub fn json_line(r: &Record) -> String {
    let p = &r.packet;
    let rec = JsonRecord {
        source: &r.source,
        version: p.version,
        seq: p.seq,
        timestamp_ms: p.timestamp.as_millis(),
        time: iso8601_ms(p.timestamp.as_millis()),
        frame: p.frame,
        score: finite(p.score),
        visual_z: finite(p.visual_z),
        semantic_z: finite(p.semantic_z),
        alarm: alarm_name(p.alarm),
        model_id: model_hex(p.model_id),
    };
    serde_json::to_string(&rec).expect("a record always serializes")
}
