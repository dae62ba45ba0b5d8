//! One way to write a file so that a reader (or a reboot) sees the old contents or the new, never a
//! torn file: write a temporary file beside it, fsync it, rename it over the target, fsync the
//! directory so the rename itself is durable.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically and durably (see the crate docs). On error the temporary file
/// is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes)?;
    sync_dir(&parent(path))
}

/// [`write_atomic`] without the final fsync of the directory: readers never see a torn file, and the
/// rename becomes durable with the next [`sync_dir`] (one for a batch of files: group commit).
/// The temporary file is `.NAME.tmp-PID-N` beside `path`; [`is_temp_name`] recognises it.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        // A full disk must not keep the half-written file: it holds space the next write needs.
        let _ = fs::remove_file(&tmp);
    }
    res
}

/// Whether a file name is a temporary file [`replace`] left behind for `name` (after a crash).
pub fn is_temp_name(file_name: &str, name_prefix: &str) -> bool {
    file_name.strip_prefix('.').is_some_and(|r| r.starts_with(name_prefix) && r.contains(".tmp-"))
}

/// The directory `path` lives in (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// `.NAME.tmp-PID-N` beside `path`: hidden, unique per process and call.
fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    parent(path).join(format!(".{name}.tmp-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
}

/// fsync of a directory, so that a rename into it survives a crash. Where directories cannot be
/// opened for syncing (not Unix), this is a no-op.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("a.json")]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.json");
        write_atomic(&p, b"old").unwrap();
        // A directory where the file should go: the rename fails.
        let d = tmp.path().join("dir");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("x"), b"x").unwrap();
        assert!(write_atomic(&d, b"new").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert!(fs::read_dir(tmp.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".tmp-")));
        // A missing directory is an error, not a panic.
        assert!(write_atomic(&tmp.path().join("missing/a.json"), b"x").is_err());
    }

    #[test]
    fn temporary_names_are_recognised() {
        let t = temp_path(Path::new("/x/alarm-01.sfna"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert!(is_temp_name(name, "alarm-"), "{name}");
        assert!(!is_temp_name("alarm-01.sfna", "alarm-"));
        assert!(!is_temp_name(".other.tmp-1-2", "alarm-"));
    }
}
