//! The event directory: one folder per alarm, `<root>/<start>-<device>/`, holding the event's JSON,
//! its snapshots and a short clip; one device's events kept under a byte bound by deleting its
//! oldest events first (names start with a UTC stamp, so they sort by time). Several devices may
//! share a root: each store counts and deletes only the folders of its own device.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Bounded store of event folders.
pub struct EventStore {
    root: PathBuf,
    max_bytes: u64,
    /// Event folders, oldest first, with their bytes.
    events: BTreeMap<String, u64>,
    /// Files written per event (to account for overwrites).
    files: BTreeMap<(String, String), u64>,
    deleted: u64,
}

/// The folder name of an event that started at `start_ms` on `device`.
pub fn event_name(start_ms: u64, device: &str) -> String {
    format!("{}-{device}", crate::timefmt::compact_ms(start_ms))
}

/// The device of an event folder's name (`<start>-<device>`), if it is one.
pub fn event_device(name: &str) -> Option<&str> {
    name.split_once("Z-").map(|(_, d)| d)
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    Written,
    /// The file would push the event alone past the bound: not kept.
    OverBound,
}

impl EventStore {
    /// Opens (creating) `root` and accounts for `device`'s events already in it.
    pub fn open(root: &Path, max_bytes: u64, device: &str) -> io::Result<EventStore> {
        std::fs::create_dir_all(root)?;
        let mut s = EventStore { root: root.into(), max_bytes, events: BTreeMap::new(), files: BTreeMap::new(), deleted: 0 };
        for e in std::fs::read_dir(root)? {
            let e = e?;
            if !e.file_type()?.is_dir() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if event_device(&name) != Some(device) {
                continue;
            }
            let bytes = dir_bytes(&e.path());
            s.events.insert(name, bytes);
        }
        Ok(s)
    }

    /// Bytes held in all events.
    pub fn bytes(&self) -> u64 {
        self.events.values().sum()
    }

    /// Events deleted to stay within the bound since opening.
    pub fn deleted(&self) -> u64 {
        self.deleted
    }

    /// Event folder names, oldest first.
    pub fn events(&self) -> Vec<String> {
        self.events.keys().cloned().collect()
    }

    pub fn path(&self, event: &str) -> PathBuf {
        self.root.join(event)
    }

    /// Writes `bytes` as `<event>/<file>` (`file` may name a subfolder), replacing an earlier
    /// version, then deletes the oldest other events until the root is within its bound.
    pub fn write(&mut self, event: &str, file: &str, bytes: &[u8]) -> io::Result<Stored> {
        let key = (event.to_string(), file.to_string());
        let old = self.files.get(&key).copied().unwrap_or(0);
        let others: u64 = self.events.iter().filter(|(k, _)| k.as_str() != event).map(|(_, v)| *v).sum();
        let this = self.events.get(event).copied().unwrap_or(0).saturating_sub(old);
        if this + bytes.len() as u64 > self.max_bytes {
            return Ok(Stored::OverBound);
        }
        let path = self.root.join(event).join(file);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Written whole or not at all: a reader never sees half a JPEG.
        let tmp = path.with_extension("part");
        let res = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            self.events.entry(event.to_string()).or_insert(0);
            return Err(e);
        }
        self.files.insert(key, bytes.len() as u64);
        self.events.insert(event.to_string(), this + bytes.len() as u64);
        let mut total = others + this + bytes.len() as u64;
        while total > self.max_bytes {
            let Some(oldest) = self.events.keys().find(|k| k.as_str() != event).cloned() else { break };
            let freed = self.events.remove(&oldest).unwrap_or(0);
            self.files.retain(|(e, _), _| e != &oldest);
            std::fs::remove_dir_all(self.root.join(&oldest))?;
            self.deleted += 1;
            total -= freed;
            tracing::info!(event = %oldest, bytes = freed, "oldest event deleted to stay within the snapshot disk bound");
        }
        Ok(Stored::Written)
    }
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_stays_within_its_bound_oldest_events_going_first() {
        let dir = tempfile::tempdir().unwrap();
        // Another device's event in the same root is neither counted nor deleted.
        let other = event_name(1_764_331_100_000, "cam10");
        std::fs::create_dir_all(dir.path().join(&other)).unwrap();
        std::fs::write(dir.path().join(&other).join("snapshot.jpg"), [0u8; 9000]).unwrap();
        let mut s = EventStore::open(dir.path(), 10_000, "cam1").unwrap();
        for i in 0..6u64 {
            let ev = event_name(1_764_331_200_000 + i * 60_000, "cam1");
            assert_eq!(s.write(&ev, "snapshot.jpg", &[1u8; 3000]).unwrap(), Stored::Written);
            assert_eq!(s.write(&ev, "clip/000001.jpg", &[2u8; 500]).unwrap(), Stored::Written);
            assert!(s.bytes() <= 10_000 && dir_bytes(dir.path()) == s.bytes() + 9000, "{} vs {}", s.bytes(), dir_bytes(dir.path()));
        }
        // Two events of 3500 bytes fit; the newest two are kept.
        let names = s.events();
        assert_eq!(names, vec![event_name(1_764_331_200_000 + 4 * 60_000, "cam1"), event_name(1_764_331_200_000 + 5 * 60_000, "cam1")]);
        assert_eq!(s.deleted(), 4);
        assert_eq!((event_device(&names[0]), event_device("notes")), (Some("cam1"), None));
        // Overwriting a file counts its new size only.
        s.write(&names[1], "snapshot.jpg", &[3u8; 100]).unwrap();
        assert_eq!(s.bytes(), 3500 + 600);
        // A file that would make one event alone exceed the bound is refused.
        assert_eq!(s.write(&names[1], "big.jpg", &[0u8; 10_000]).unwrap(), Stored::OverBound);
        // A reopened store sees what is there.
        let again = EventStore::open(dir.path(), 10_000, "cam1").unwrap();
        assert_eq!((again.events(), again.bytes()), (names, 4100));
        assert!(dir.path().join(other).join("snapshot.jpg").exists());
    }
}
