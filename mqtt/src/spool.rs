//! The on-disk alarm spool: one file per alarm, written atomically.
//!
//! # Layout
//! A directory holding
//! - `alarm-<seq>.sfna`, `<seq>` the alarm's sequence number as 20 decimal digits (so name order
//!   is sequence order);
//! - `.alarm-<seq>.tmp` while a file is being written (write, fsync, rename to the final name,
//!   fsync the directory); leftovers of a crash are deleted when the spool is opened;
//! - `.lock`, locked (`flock`-style, [`std::fs::File::try_lock`]) while a reporter uses the
//!   directory, so two reporters never share one spool;
//! - `*.corrupt`: files that failed to decode at open, renamed aside and never read again.
//!
//! # File format (version 1), all integers little-endian
//! ```text
//! "SFNA"  u8 version=1  u64 seq  u32 packet_len  packet  u32 json_len  json  u32 crc32
//! ```
//! `crc32` is CRC-32/ISO-HDLC (the zlib one) of every byte before it.
//!
//! Bounds (count, what is dropped when full) are the state machine's business
//! ([`crate::state::ReporterState`]); this module only stores, lists and deletes.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::state::Alarm;
use crate::Error;

const MAGIC: &[u8; 4] = b"SFNA";
const VERSION: u8 = 1;
const PREFIX: &str = "alarm-";
const SUFFIX: &str = ".sfna";

/// An open spool directory (holds its lock until dropped).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    _lock: File,
}

/// What [`Spool::open`] found in the directory.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Decodable alarms, sorted by sequence number.
    pub alarms: Vec<(u64, Alarm)>,
    /// Files that did not decode and were renamed to `*.corrupt`.
    pub corrupt: Vec<PathBuf>,
}

impl Spool {
    /// Open (creating it if needed) and lock `dir`, delete temporary leftovers, read the alarms.
    pub fn open(dir: &Path) -> Result<(Spool, Recovered), Error> {
        let err = |path: &Path, source: io::Error| Error::Spool { path: path.to_path_buf(), source };
        fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| err(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(Error::SpoolLocked(dir.to_path_buf())),
            Err(fs::TryLockError::Error(e)) => return Err(err(&lock_path, e)),
        }
        let mut found = Recovered::default();
        for entry in fs::read_dir(dir).map_err(|e| err(dir, e))? {
            let entry = entry.map_err(|e| err(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if sfn_fsio::is_temp_name(name, "alarm-") || (name.starts_with(".alarm-") && name.ends_with(".tmp")) {
                tracing::debug!("spool: removing unfinished {}", path.display());
                fs::remove_file(&path).map_err(|e| err(&path, e))?;
                continue;
            }
            let Some(seq) = parse_name(name) else { continue };
            let decoded = fs::read(&path).map_err(|e| err(&path, e)).map(|b| decode(&b));
            match decoded? {
                Ok((s, alarm)) if s == seq => found.alarms.push((seq, alarm)),
                other => {
                    let why = match other {
                        Ok((s, _)) => format!("holds seq {s}"),
                        Err(e) => e.to_string(),
                    };
                    let aside = path.with_extension("sfna.corrupt");
                    tracing::warn!("spool: {} is unreadable ({why}); renamed to {}", path.display(), aside.display());
                    fs::rename(&path, &aside).map_err(|e| err(&path, e))?;
                    found.corrupt.push(aside);
                }
            }
        }
        found.alarms.sort_by_key(|(seq, _)| *seq);
        Ok((Spool { dir: dir.to_path_buf(), _lock: lock }, found))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the file of `seq`.
    pub fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(file_name(seq))
    }

    /// Write the alarm atomically and durably: [`Spool::write_file`] then [`Spool::sync_dir`].
    pub fn write(&self, seq: u64, alarm: &Alarm) -> io::Result<()> {
        self.write_file(seq, alarm)?;
        self.sync_dir()
    }

    /// Write the alarm atomically: temporary file, fsync, rename. The rename is durable only
    /// after the next [`Spool::sync_dir`] (one for a whole batch of files: group commit).
    pub fn write_file(&self, seq: u64, alarm: &Alarm) -> io::Result<()> {
        // A failed write leaves no temporary file behind; the alarm itself stays queued in memory
        // (the caller's state).
        sfn_fsio::replace(&self.path(seq), &encode(seq, alarm))
    }

    /// fsync the directory, making earlier renames and deletions durable.
    pub fn sync_dir(&self) -> io::Result<()> {
        sfn_fsio::sync_dir(&self.dir)
    }

    /// Delete the file of `seq` (already gone is fine).
    pub fn remove(&self, seq: u64) -> io::Result<()> {
        match fs::remove_file(self.path(seq)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Sequence numbers of the alarm files present, sorted.
    pub fn list(&self) -> io::Result<Vec<u64>> {
        let mut seqs = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Some(seq) = entry?.file_name().to_str().and_then(parse_name) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        Ok(seqs)
    }
}

/// `alarm-<20 digits>.sfna`
pub fn file_name(seq: u64) -> String {
    format!("{PREFIX}{seq:020}{SUFFIX}")
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encode one alarm file (see the module documentation).
pub fn encode(seq: u64, alarm: &Alarm) -> Vec<u8> {
    let mut b = Vec::with_capacity(25 + alarm.packet.len() + alarm.json.len());
    b.extend_from_slice(MAGIC);
    b.push(VERSION);
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&(alarm.packet.len() as u32).to_le_bytes());
    b.extend_from_slice(&alarm.packet);
    b.extend_from_slice(&(alarm.json.len() as u32).to_le_bytes());
    b.extend_from_slice(&alarm.json);
    let crc = crc32(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// Why a spool file did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not an alarm spool file (bad magic)")]
    Magic,
    #[error("unsupported spool format version {0}")]
    Version(u8),
    #[error("truncated")]
    Truncated,
    #[error("checksum mismatch")]
    Checksum,
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Decode one alarm file into its sequence number and alarm.
pub fn decode(b: &[u8]) -> Result<(u64, Alarm), DecodeError> {
    if b.len() < 4 || &b[..4] != MAGIC {
        return Err(DecodeError::Magic);
    }
    if b.len() < 5 {
        return Err(DecodeError::Truncated);
    }
    if b[4] != VERSION {
        return Err(DecodeError::Version(b[4]));
    }
    if b.len() < 4 + 1 + 8 + 4 + 4 + 4 {
        return Err(DecodeError::Truncated);
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(DecodeError::Checksum);
    }
    let mut r = Reader { b: body, at: 5 };
    let seq = u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
    let n = r.len()?;
    let packet = r.take(n)?.to_vec();
    let n = r.len()?;
    let json = r.take(n)?.to_vec();
    if r.at != body.len() {
        return Err(DecodeError::Trailing(body.len() - r.at));
    }
    Ok((seq, Alarm { packet, json }))
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len()).ok_or(DecodeError::Truncated)?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn len(&mut self) -> Result<usize, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize)
    }
}

/// CRC-32/ISO-HDLC (reflected, polynomial 0xEDB88320), as zlib's `crc32`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(i: u8) -> Alarm {
        Alarm { packet: vec![i; 3], json: format!("{{\"i\":{i}}}").into_bytes() }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn encode_decode_roundtrip_and_layout() {
        let a = alarm(5);
        let b = encode(77, &a);
        assert_eq!(&b[..5], b"SFNA\x01");
        assert_eq!(u64::from_le_bytes(b[5..13].try_into().unwrap()), 77);
        assert_eq!(b.len(), 4 + 1 + 8 + 4 + 3 + 4 + a.json.len() + 4);
        assert_eq!(decode(&b), Ok((77, a)));
        let empty = Alarm { packet: vec![], json: vec![] };
        assert_eq!(decode(&encode(1, &empty)), Ok((1, empty)));
    }

    #[test]
    fn decode_rejects_damage() {
        let b = encode(3, &alarm(1));
        assert_eq!(decode(&b[..b.len() - 1]), Err(DecodeError::Checksum));
        assert_eq!(decode(&b[..10]), Err(DecodeError::Truncated));
        let mut flipped = b.clone();
        flipped[15] ^= 1;
        assert_eq!(decode(&flipped), Err(DecodeError::Checksum));
        let mut v2 = b.clone();
        v2[4] = 2;
        assert_eq!(decode(&v2), Err(DecodeError::Version(2)));
        assert_eq!(decode(b"nope"), Err(DecodeError::Magic));
        // A length field pointing past the end, with a valid checksum.
        let mut bad = b[..b.len() - 4].to_vec();
        bad[13..17].copy_from_slice(&1000u32.to_le_bytes());
        let crc = crc32(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&bad), Err(DecodeError::Truncated));
    }

    #[test]
    fn names_sort_by_sequence() {
        assert_eq!(file_name(42), "alarm-00000000000000000042.sfna");
        assert_eq!(parse_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_name("alarm-42.sfna"), None);
        assert_eq!(parse_name("alarm-0000000000000000004x.sfna"), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn write_list_remove_and_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        {
            let (s, found) = Spool::open(&dir).unwrap();
            assert!(found.alarms.is_empty());
            for seq in [3u64, 1, 2] {
                s.write(seq, &alarm(seq as u8)).unwrap();
            }
            assert_eq!(s.list().unwrap(), vec![1, 2, 3]);
            s.remove(2).unwrap();
            s.remove(2).unwrap(); // already gone: fine
            assert_eq!(s.list().unwrap(), vec![1, 3]);
        }
        fs::write(dir.join(".alarm-00000000000000000009.tmp"), b"half").unwrap();
        fs::write(dir.join(file_name(7)), b"garbage").unwrap();
        fs::write(dir.join("unrelated.txt"), b"x").unwrap();
        let (s, found) = Spool::open(&dir).unwrap();
        assert_eq!(found.alarms, vec![(1, alarm(1)), (3, alarm(3))]);
        assert_eq!(found.corrupt, vec![dir.join("alarm-00000000000000000007.sfna.corrupt")]);
        assert!(!dir.join(".alarm-00000000000000000009.tmp").exists());
        assert!(dir.join("unrelated.txt").exists());
        assert_eq!(s.list().unwrap(), vec![1, 3]);
    }

    #[test]
    fn a_file_under_the_wrong_name_is_set_aside() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(file_name(5)), encode(6, &alarm(6))).unwrap();
        let (_s, found) = Spool::open(tmp.path()).unwrap();
        assert!(found.alarms.is_empty());
        assert_eq!(found.corrupt.len(), 1);
    }

    #[test]
    fn second_open_of_a_locked_spool_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let (first, _) = Spool::open(tmp.path()).unwrap();
        match Spool::open(tmp.path()) {
            Err(Error::SpoolLocked(p)) => assert_eq!(p, tmp.path()),
            other => panic!("expected SpoolLocked, got {other:?}"),
        }
        drop(first);
        Spool::open(tmp.path()).unwrap();
    }

    #[test]
    fn open_names_an_unusable_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        fs::write(&file, b"").unwrap();
        let e = Spool::open(&file.join("spool")).unwrap_err();
        assert!(e.to_string().contains("plain-file"), "{e}");
    }
}
