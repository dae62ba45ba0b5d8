//! Captions made offline by any pipeline, read from a JSONL file: one JSON object per line,
//! `{"clip": "01", "frame": 17, "caption": "..."}`, where `frame` is the index of the clip's last frame
//! t. Extra fields are ignored, blank lines are skipped, and a UTF-8 byte-order mark at the start of the
//! file is allowed.
//!
//! The whole file is checked when it is opened ([`JsonlCaptions::open`]): a line that is not a JSON
//! object, lacks `clip`/`frame`/`caption` or has one of the wrong type, and a second line for the same
//! (clip, frame) are [`CaptionError::Parse`] errors naming the path and the 1-based line number(s).
//! Looking up a clip that the file does not have is [`CaptionError::Missing`]; a stored caption that is
//! empty or only whitespace is [`CaptionError::Empty`] when it is asked for.
//!
//! [`write_jsonl`] writes such a file atomically (temporary file in the same directory, then rename).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{check_clip, CaptionError, CaptionProvider, Clip};

/// One stored caption and the line it came from.
#[derive(Clone, Debug)]
struct Entry {
    caption: String,
    line: usize,
}

/// Captions read from a JSONL file (see the module documentation for the format).
#[derive(Clone, Debug)]
pub struct JsonlCaptions {
    path: PathBuf,
    entries: HashMap<(String, usize), Entry>,
}

impl JsonlCaptions {
    /// Reads and checks the whole file.
    pub fn open(path: &Path) -> Result<Self, CaptionError> {
        let bytes = fs::read(path).map_err(|source| CaptionError::Io { path: path.to_path_buf(), source })?;
        Self::parse(path, &bytes)
    }

    /// Parses the contents of a JSONL file; `path` is only used in error messages and the name.
    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, CaptionError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(bytes);
        let mut entries: HashMap<(String, usize), Entry> = HashMap::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i + 1;
            let parse_err = |reason: String| CaptionError::Parse { path: path.to_path_buf(), line, reason };
            let raw = raw.strip_suffix(b"\r".as_slice()).unwrap_or(raw);
            let text = std::str::from_utf8(raw).map_err(|e| parse_err(format!("not valid UTF-8: {e}")))?;
            if text.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(text).map_err(|e| parse_err(format!("not valid JSON: {e}")))?;
            let obj = value.as_object().ok_or_else(|| parse_err(format!("expected a JSON object, found {}", json_type(&value))))?;
            let field = |key: &str| obj.get(key).ok_or_else(|| parse_err(format!("missing field \"{key}\"")));
            let clip = field("clip")?;
            let clip = clip.as_str().ok_or_else(|| parse_err(format!("field \"clip\" must be a string, found {}", json_type(clip))))?;
            let frame_v = field("frame")?;
            let frame =
                frame_v.as_u64().and_then(|f| usize::try_from(f).ok()).ok_or_else(|| parse_err(format!("field \"frame\" must be a non-negative integer, found {}", json_value_brief(frame_v))))?;
            let caption = field("caption")?;
            let caption = caption.as_str().ok_or_else(|| parse_err(format!("field \"caption\" must be a string, found {}", json_type(caption))))?;
            let key = (clip.to_string(), frame);
            if let Some(first) = entries.get(&key) {
                return Err(parse_err(format!("duplicate caption for clip {clip} frame {frame} (lines {} and {line})", first.line)));
            }
            entries.insert(key, Entry { caption: caption.to_string(), line });
        }
        Ok(JsonlCaptions { path: path.to_path_buf(), entries })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of (clip, frame) captions in the file.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no caption.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The stored caption of (clip, frame), as written (possibly empty).
    pub fn get(&self, clip: &str, frame: usize) -> Option<&str> {
        self.entries.get(&(clip.to_string(), frame)).map(|e| e.caption.as_str())
    }
}

impl CaptionProvider for JsonlCaptions {
    fn name(&self) -> String {
        format!("jsonl:{}", self.path.display())
    }

    fn caption(&mut self, clip: &Clip) -> Result<String, CaptionError> {
        check_clip(clip)?;
        let entry = self.entries.get(&(clip.clip.to_string(), clip.frame)).ok_or_else(|| CaptionError::Missing { path: self.path.clone(), clip: clip.clip.to_string(), frame: clip.frame })?;
        if entry.caption.trim().is_empty() {
            return Err(CaptionError::Empty { source_name: format!("{}:{}", self.path.display(), entry.line), clip: clip.clip.to_string(), frame: clip.frame });
        }
        Ok(entry.caption.clone())
    }
}

/// Writes `entries` (clip, frame of the clip's last frame, caption) as a JSONL file that
/// [`JsonlCaptions::open`] reads, atomically: the lines go to a temporary file in the same directory,
/// which is synced and then renamed over `path`. A repeated (clip, frame) is refused with
/// [`CaptionError::Parse`] naming the 1-based entry numbers (the lines they would have had), and
/// nothing is written.
pub fn write_jsonl(path: &Path, entries: &[(String, usize, String)]) -> Result<(), CaptionError> {
    let mut seen: HashMap<(&str, usize), usize> = HashMap::with_capacity(entries.len());
    let mut out = String::new();
    for (i, (clip, frame, caption)) in entries.iter().enumerate() {
        if let Some(first) = seen.insert((clip.as_str(), *frame), i + 1) {
            return Err(CaptionError::Parse { path: path.to_path_buf(), line: i + 1, reason: format!("duplicate caption for clip {clip} frame {frame} (entries {first} and {})", i + 1) });
        }
        let line = serde_json::json!({ "clip": clip, "frame": frame, "caption": caption });
        out.push_str(&line.to_string());
        out.push('\n');
    }

    sfn_fsio::write_atomic(path, out.as_bytes()).map_err(|source| CaptionError::Io { path: path.to_path_buf(), source })
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The type of `v`, with the value itself when it is a short scalar (e.g. `a number (-3)`).
fn json_value_brief(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => format!("a number ({n})"),
        serde_json::Value::String(s) if s.chars().count() <= 20 => format!("a string ({s:?})"),
        _ => json_type(v).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CLIP_FRAMES;

    fn frames() -> Vec<f32> {
        vec![0.0; 2 * 2]
    }

    fn clip<'a>(name: &'a str, frame: usize, data: &'a [f32]) -> Clip<'a> {
        Clip { clip: name, frame, frames: [data; CLIP_FRAMES], channels: 1, height: 2, width: 2 }
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let p = dir.path().join("caps.jsonl");
        fs::write(&p, text).unwrap();
        p
    }

    fn parse_err(text: &str) -> (usize, String) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, text);
        match JsonlCaptions::open(&p) {
            Err(CaptionError::Parse { path, line, reason }) => {
                assert_eq!(path, p);
                (line, reason)
            }
            other => panic!("expected a Parse error, got {other:?}"),
        }
    }

    #[test]
    fn reads_captions_ignoring_blank_lines_and_extra_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "{\"clip\": \"01\", \"frame\": 3, \"caption\": \"a man walks\"}\n\n   \r\n\
             {\"clip\": \"01\", \"frame\": 4, \"caption\": \"a man runs\", \"model\": \"x\", \"score\": 0.5}\r\n\
             {\"frame\": 3, \"caption\": \"a car\", \"clip\": \"02\"}",
        );
        let mut c = JsonlCaptions::open(&p).unwrap();
        assert_eq!(c.len(), 3);
        assert!(!c.is_empty());
        assert_eq!(c.name(), format!("jsonl:{}", p.display()));
        let d = frames();
        assert_eq!(c.caption(&clip("01", 3, &d)).unwrap(), "a man walks");
        assert_eq!(c.caption(&clip("01", 4, &d)).unwrap(), "a man runs");
        assert_eq!(c.caption(&clip("02", 3, &d)).unwrap(), "a car");
        assert_eq!(c.get("02", 3), Some("a car"));
        assert_eq!(c.get("02", 4), None);
    }

    #[test]
    fn empty_file_and_bom() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "");
        let c = JsonlCaptions::open(&p).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.len(), 0);
        let p = write(&dir, "\u{feff}{\"clip\": \"a\", \"frame\": 0, \"caption\": \"x\"}\n");
        assert_eq!(JsonlCaptions::open(&p).unwrap().get("a", 0), Some("x"));
    }

    #[test]
    fn missing_and_empty_captions() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "{\"clip\": \"01\", \"frame\": 3, \"caption\": \"ok\"}\n{\"clip\": \"01\", \"frame\": 4, \"caption\": \" \\n\\t \"}\n");
        let mut c = JsonlCaptions::open(&p).unwrap();
        let d = frames();
        match c.caption(&clip("01", 5, &d)) {
            Err(CaptionError::Missing { path, clip, frame }) => {
                assert_eq!(path, p);
                assert_eq!(clip, "01");
                assert_eq!(frame, 5);
            }
            other => panic!("expected Missing, got {other:?}"),
        }
        assert!(matches!(c.caption(&clip("02", 3, &d)), Err(CaptionError::Missing { .. })));
        match c.caption(&clip("01", 4, &d)) {
            Err(e @ CaptionError::Empty { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("{}:2", p.display())), "{msg}");
                assert!(msg.contains("clip 01 frame 4"), "{msg}");
            }
            other => panic!("expected Empty, got {other:?}"),
        }
    }

    #[test]
    fn bad_clip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "{\"clip\": \"01\", \"frame\": 3, \"caption\": \"ok\"}\n");
        let mut c = JsonlCaptions::open(&p).unwrap();
        let d = vec![0.0; 3];
        assert!(matches!(c.caption(&clip("01", 3, &d)), Err(CaptionError::BadClip { .. })));
    }

    #[test]
    fn unreadable_file_is_io_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope.jsonl");
        match JsonlCaptions::open(&p) {
            Err(e @ CaptionError::Io { .. }) => assert!(e.to_string().contains("nope.jsonl"), "{e}"),
            other => panic!("expected Io, got {other:?}"),
        }
    }

    #[test]
    fn parse_errors_name_line_and_problem() {
        let good = "{\"clip\": \"01\", \"frame\": 3, \"caption\": \"ok\"}\n";
        let (line, reason) = parse_err(&format!("{good}\n{{\"clip\": \"01\", \"frame\": 4, \"caption\": \"x\"\n"));
        assert_eq!(line, 3);
        assert!(reason.contains("not valid JSON"), "{reason}");

        let (line, reason) = parse_err(&format!("{good}[1, 2]\n"));
        assert_eq!(line, 2);
        assert!(reason.contains("expected a JSON object"), "{reason}");

        let (line, reason) = parse_err(&format!("{good}{{\"frame\": 4, \"caption\": \"x\"}}\n"));
        assert_eq!(line, 2);
        assert!(reason.contains("missing field \"clip\""), "{reason}");

        let (_, reason) = parse_err("{\"clip\": \"01\", \"caption\": \"x\"}\n");
        assert!(reason.contains("missing field \"frame\""), "{reason}");

        let (_, reason) = parse_err("{\"clip\": \"01\", \"frame\": 1}\n");
        assert!(reason.contains("missing field \"caption\""), "{reason}");

        let (_, reason) = parse_err("{\"clip\": 1, \"frame\": 1, \"caption\": \"x\"}\n");
        assert!(reason.contains("\"clip\" must be a string"), "{reason}");

        for bad in ["-1", "1.5", "\"7\"", "null"] {
            let (_, reason) = parse_err(&format!("{{\"clip\": \"01\", \"frame\": {bad}, \"caption\": \"x\"}}\n"));
            assert!(reason.contains("\"frame\" must be a non-negative integer"), "{bad}: {reason}");
        }

        let (_, reason) = parse_err("{\"clip\": \"01\", \"frame\": 1, \"caption\": null}\n");
        assert!(reason.contains("\"caption\" must be a string, found null"), "{reason}");

        let (line, reason) = parse_err(&format!("{good}\u{0}\u{ff}"));
        assert_eq!(line, 2);
        assert!(reason.contains("not valid JSON"), "{reason}");
    }

    #[test]
    fn invalid_utf8_is_a_parse_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("caps.jsonl");
        fs::write(&p, b"{\"clip\": \"01\", \"frame\": 3, \"caption\": \"ok\"}\n{\"clip\": \"\xff\"}\n").unwrap();
        match JsonlCaptions::open(&p) {
            Err(CaptionError::Parse { line, reason, .. }) => {
                assert_eq!(line, 2);
                assert!(reason.contains("UTF-8"), "{reason}");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
    }

    #[test]
    fn duplicates_name_both_lines() {
        let (line, reason) =
            parse_err("{\"clip\": \"01\", \"frame\": 3, \"caption\": \"a\"}\n\n{\"clip\": \"02\", \"frame\": 3, \"caption\": \"b\"}\n{\"clip\": \"01\", \"frame\": 3, \"caption\": \"c\"}\n");
        assert_eq!(line, 4);
        assert!(reason.contains("lines 1 and 4"), "{reason}");
        assert!(reason.contains("clip 01 frame 3"), "{reason}");
    }

    #[test]
    fn write_then_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        fs::write(&p, "old contents").unwrap();
        let entries = vec![("01".to_string(), 3, "a man \"walks\"\nslowly".to_string()), ("01".to_string(), 4, "ünïcode ✓".to_string()), ("02".to_string(), 3, "a car".to_string())];
        write_jsonl(&p, &entries).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        let c = JsonlCaptions::open(&p).unwrap();
        assert_eq!(c.len(), 3);
        for (clip, frame, caption) in &entries {
            assert_eq!(c.get(clip, *frame), Some(caption.as_str()));
        }
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.jsonl")]);

        write_jsonl(&p, &[]).unwrap();
        assert!(JsonlCaptions::open(&p).unwrap().is_empty());
    }

    #[test]
    fn write_refuses_duplicates_and_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        let entries = vec![("01".to_string(), 3, "a".to_string()), ("01".to_string(), 3, "b".to_string())];
        match write_jsonl(&p, &entries) {
            Err(CaptionError::Parse { line, reason, .. }) => {
                assert_eq!(line, 2);
                assert!(reason.contains("entries 1 and 2"), "{reason}");
            }
            other => panic!("expected Parse, got {other:?}"),
        }
        assert!(!p.exists());
        let missing_dir = dir.path().join("no/such/dir/out.jsonl");
        assert!(matches!(write_jsonl(&missing_dir, &[]), Err(CaptionError::Io { .. })));
    }
}
