//! Contact sheets: one PNG per clip that shows at a glance what was caught and what was missed. A
//! timeline on top (ground-truth abnormal frames above, alarms below), then one row per
//! ground-truth event: a frame from the middle of the event beside the snapshot of the alarm that
//! caught it (or MISSED), and one row per false alarm with its snapshot.
//!
//! Snapshots are read from an event folder root as `sfn-edge` and `sfn-host replay --snapshots`
//! write it (`<root>/<start>-<clip>/snapshot-<frame>.jpg`, the clip's name as the device); the
//! ground-truth frame from the clip's frame folder when given.

use std::path::{Path, PathBuf};

use image::{imageops, GenericImage, Rgb, RgbImage};
use serde::Serialize;
use sfn_edge::snapshot::draw::{fill, text};

use crate::validate::{events, ClipTrace};

const TILE_W: u32 = 240;
const PAD: u32 = 8;
const LINE: u32 = 12;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BG: Rgb<u8> = Rgb([24, 24, 24]);
const TRUTH: Rgb<u8> = Rgb([255, 170, 0]);
const ALARM: Rgb<u8> = Rgb([230, 40, 40]);
const CAUGHT: Rgb<u8> = Rgb([60, 200, 80]);

/// What a sheet shows, in numbers.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct SheetSummary {
    pub clip: String,
    pub events: usize,
    pub caught: usize,
    pub missed: usize,
    pub false_alarms: usize,
    /// Alarms with a snapshot found in the event folders.
    pub snapshots: usize,
}

/// The snapshots of `clip`'s alarms in an event folder root: (frame of the snapshot, path), every
/// snapshot of every event of that clip.
pub fn clip_snapshots(root: &Path, clip: &str) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else { return out };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if sfn_edge::snapshot::events::event_device(&name) != Some(clip) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(e.path()) else { continue };
        for f in files.flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            if let Some(frame) = n.strip_prefix("snapshot-").and_then(|r| r.strip_suffix(".jpg")).and_then(|r| r.parse::<u64>().ok()) {
                out.push((frame, f.path()));
            }
        }
    }
    out.sort();
    out
}

/// The `index`-th frame file of a frame folder (sorted by name).
fn frame_file(dir: &Path, index: u64) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    v.sort();
    v.get(index as usize).cloned()
}

fn tile(path: Option<&Path>, h: u32) -> RgbImage {
    match path.and_then(|p| image::open(p).ok()) {
        Some(img) => imageops::resize(&img.to_rgb8(), TILE_W, h, imageops::FilterType::Triangle),
        None => RgbImage::from_pixel(TILE_W, h, Rgb([60, 60, 60])),
    }
}

/// Writes `<dir>/contact_<clip>.png` for one clip; `events_root`: the event folders (snapshots);
/// `frames`: the clip's frame folder (ground-truth thumbnails).
pub fn contact_sheet(trace: &ClipTrace, events_root: Option<&Path>, frames: Option<&Path>, dir: &Path) -> Result<SheetSummary, String> {
    let labels = trace.labels.clone().unwrap_or_else(|| vec![0; trace.frames.len()]);
    let truth = events(&trace.frames, &labels);
    let alarms = trace.alarms();
    let snaps = events_root.map(|r| clip_snapshots(r, &trace.name)).unwrap_or_default();
    // The last (highest-scoring) snapshot taken within an alarm run.
    let snap_of = |(a0, a1): (u64, u64)| snaps.iter().rfind(|(f, _)| (a0..=a1).contains(f)).map(|(f, p)| (*f, p.clone()));
    let overlaps = |(a0, a1): (u64, u64), (e0, e1): (u64, u64)| a0 <= e1 && e0 <= a1;

    // Tile height from the source's aspect (a snapshot, else a frame), 3:2 when neither is there.
    let sample = snaps.first().map(|(_, p)| p.clone()).or_else(|| frames.and_then(|d| frame_file(d, 0)));
    let th = sample.and_then(|p| image::image_dimensions(p).ok()).map_or(TILE_W * 2 / 3, |(w, h)| (TILE_W * h / w.max(1)).clamp(32, 2 * TILE_W));

    struct Row {
        left: Option<PathBuf>,
        left_text: String,
        right: Option<PathBuf>,
        right_text: String,
        color: Rgb<u8>,
    }
    let mut rows = Vec::new();
    let mut caught = 0;
    for &ev in &truth {
        let mid = (ev.0 + ev.1) / 2;
        let hit = alarms.iter().copied().find(|&a| overlaps(a, ev));
        let (right, right_text, color) = match hit {
            Some(a) => {
                caught += 1;
                match snap_of(a) {
                    Some((f, p)) => (Some(p), format!("caught: alarm {}-{}, snapshot {f}", a.0, a.1), CAUGHT),
                    None => (None, format!("caught: alarm {}-{} (no snapshot)", a.0, a.1), CAUGHT),
                }
            }
            None => (None, "MISSED".to_string(), ALARM),
        };
        rows.push(Row { left: frames.and_then(|d| frame_file(d, mid)), left_text: format!("truth: frames {}-{}", ev.0, ev.1), right, right_text, color });
    }
    let false_alarms: Vec<(u64, u64)> = alarms.iter().copied().filter(|&a| !truth.iter().any(|&e| overlaps(a, e))).collect();
    for &a in &false_alarms {
        let s = snap_of(a);
        let text = match &s {
            Some((f, _)) => format!("FALSE ALARM {}-{}, snapshot {f}", a.0, a.1),
            None => format!("FALSE ALARM {}-{} (no snapshot)", a.0, a.1),
        };
        rows.push(Row { left: None, left_text: "no abnormal frames".into(), right: s.map(|(_, p)| p), right_text: text, color: ALARM });
    }

    let width = 2 * TILE_W + 3 * PAD;
    let header = 2 * LINE + PAD;
    let timeline = 20;
    let row_h = th + LINE + PAD;
    let height = header + timeline + PAD + row_h * rows.len().max(1) as u32 + PAD;
    let mut img = RgbImage::from_pixel(width, height, BG);
    let summary = SheetSummary {
        clip: trace.name.clone(),
        events: truth.len(),
        caught,
        missed: truth.len() - caught,
        false_alarms: false_alarms.len(),
        snapshots: alarms.iter().filter(|&&a| snap_of(a).is_some()).count(),
    };
    text(&mut img, PAD, PAD / 2, 1, &format!("clip {}: {} frames scored", trace.name, trace.frames.len()), WHITE);
    text(&mut img, PAD, PAD / 2 + LINE, 1, &format!("{} events: {} caught, {} missed; {} false alarms", summary.events, summary.caught, summary.missed, summary.false_alarms), WHITE);
    // Timeline: truth above, alarms below, one column per scored frame.
    let (t0, t1) = (trace.frames.first().copied().unwrap_or(0), trace.frames.last().copied().unwrap_or(0));
    let span = (t1 - t0 + 1) as f64;
    let tw = width - 2 * PAD;
    let x_of = |f: u64| PAD + ((f - t0) as f64 / span * f64::from(tw)) as u32;
    let w_of = |a: u64, b: u64| (((b - a + 1) as f64 / span * f64::from(tw)).ceil() as u32).max(1);
    fill(&mut img, PAD, header, tw, timeline, Rgb([48, 48, 48]));
    for &(a, b) in &truth {
        fill(&mut img, x_of(a), header, w_of(a, b), timeline / 2, TRUTH);
    }
    for &(a, b) in &alarms {
        fill(&mut img, x_of(a), header + timeline / 2, w_of(a, b), timeline / 2, ALARM);
    }
    let mut y = header + timeline + PAD;
    if rows.is_empty() {
        text(&mut img, PAD, y, 1, "no abnormal frames and no alarms", WHITE);
    }
    for r in &rows {
        img.copy_from(&tile(r.left.as_deref(), th), PAD, y).map_err(|e| e.to_string())?;
        img.copy_from(&tile(r.right.as_deref(), th), 2 * PAD + TILE_W, y).map_err(|e| e.to_string())?;
        fill(&mut img, 2 * PAD + TILE_W - 2, y, 2, th, r.color);
        text(&mut img, PAD, y + th + 2, 1, &r.left_text, TRUTH);
        text(&mut img, 2 * PAD + TILE_W, y + th + 2, 1, &r.right_text, r.color);
        y += row_h;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("contact_{}.png", trace.name));
    // Encoded first, then written atomically: a reader never sees half a sheet.
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| format!("{}: {e}", path.display()))?;
    sfn_fsio::write_atomic(&path, &png).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfn_edge::alarm::AlarmState;

    fn trace() -> ClipTrace {
        // 60 frames: truth 10..=19 and 40..=49; alarms 12..=22 (caught the first) and 30..=33 (false).
        let frames: Vec<u64> = (0..60).collect();
        let labels: Vec<u8> = frames.iter().map(|&f| u8::from((10..20).contains(&f) || (40..50).contains(&f))).collect();
        let alarm = frames
            .iter()
            .map(|&f| match f {
                12 | 30 => AlarmState::Raised,
                22 | 33 => AlarmState::Cleared,
                13..=21 | 31..=32 => AlarmState::Active,
                _ => AlarmState::Idle,
            })
            .collect();
        ClipTrace { name: "07".into(), scores: vec![0.0; 60], visual_z: vec![0.0; 60], semantic_z: vec![None; 60], alarm, labels: Some(labels), frames }
    }

    #[test]
    fn a_sheet_puts_caught_missed_and_false_alarms_side_by_side() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("events");
        // Snapshots of both alarms, and one of another clip that must not be picked up.
        for (ev, frame, clip) in [("19700101T000001.100Z-07", 12u64, "07"), ("19700101T000001.100Z-07", 18, "07"), ("19700101T000003.000Z-07", 30, "07"), ("19700101T000003.000Z-08", 14, "08")] {
            let d = root.join(ev.replace("-07", &format!("-{clip}")));
            std::fs::create_dir_all(&d).unwrap();
            RgbImage::from_pixel(120, 80, Rgb([200, 0, 0])).save(d.join(format!("snapshot-{frame:06}.jpg"))).unwrap();
        }
        let frames = tmp.path().join("frames");
        std::fs::create_dir_all(&frames).unwrap();
        for i in 0..60 {
            RgbImage::from_pixel(120, 80, Rgb([0, 0, (i * 4) as u8])).save(frames.join(format!("{i:03}.png"))).unwrap();
        }
        let s = contact_sheet(&trace(), Some(&root), Some(&frames), &tmp.path().join("sheets")).unwrap();
        assert_eq!(s, SheetSummary { clip: "07".into(), events: 2, caught: 1, missed: 1, false_alarms: 1, snapshots: 2 });
        let img = image::open(tmp.path().join("sheets/contact_07.png")).unwrap().to_rgb8();
        // 3 rows of 240x160 tiles under the header and timeline.
        assert_eq!(img.width(), 2 * TILE_W + 3 * PAD);
        let th = 160;
        let row0 = 2 * LINE + PAD + 20 + PAD;
        // Row 1: the truth frame (blue, frame 14) beside the alarm's last snapshot (red).
        let left = img.get_pixel(PAD + 10, row0 + 10);
        assert!(left[2] > 40 && left[0] < 30, "{left:?}");
        let right = img.get_pixel(2 * PAD + TILE_W + 10, row0 + 10);
        assert!(right[0] > 150 && right[2] < 60, "{right:?}");
        // Row 2: missed, no snapshot (grey tile).
        let missed = img.get_pixel(2 * PAD + TILE_W + 10, row0 + (th + LINE + PAD) + 10);
        assert_eq!(*missed, Rgb([60, 60, 60]));
        // Row 3: the false alarm's snapshot.
        let fa = img.get_pixel(2 * PAD + TILE_W + 10, row0 + 2 * (th + LINE + PAD) + 10);
        assert!(fa[0] > 150, "{fa:?}");
        // The timeline marks truth (orange) and alarms (red).
        let tl = 2 * LINE + PAD;
        assert_eq!(*img.get_pixel(PAD + (15 * (TILE_W * 2 + PAD)) / 60, tl + 2), TRUTH);
        assert_eq!(*img.get_pixel(PAD + (31 * (TILE_W * 2 + PAD)) / 60, tl + 15), ALARM);
    }
}
