//! Small helpers to read and write cgroupfs files with errors that name the file.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Reads a whole cgroup file as text.
pub fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
}

/// Reads a file if it exists; `None` when the controller does not provide it.
pub fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Writes `value` with a single write(2): cgroupfs parses each write on its own.
/// The file is never created and symlinks are not followed: a value meant for a cgroup knob
/// must not land in a regular file someone planted on the path.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let err = |source, path: PathBuf| Error::Write {
        path,
        value: value.to_string(),
        source,
    };
    let mut f = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => return Err(err(e, path)),
    };
    f.write_all(value.as_bytes()).map_err(|e| err(e, path))
}

/// Parses a number that cgroupfs may print as `max` (returned as `u64::MAX`).
pub fn parse_u64(path: &Path, what: &str, s: &str) -> Result<u64> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse::<u64>().map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        what: what.to_string(),
        detail: format!("{s:?}: {e}"),
    })
}

/// Reads a single-number file.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    let s = read(dir, file)?;
    parse_u64(&dir.join(file), file, &s)
}

/// Reads a single-number file, `None` when absent.
pub fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>> {
    match read_opt(dir, file)? {
        Some(s) => parse_u64(&dir.join(file), file, &s).map(Some),
        None => Ok(None),
    }
}

/// Parses a flat keyed file (`key value` per line, e.g. memory.stat, cpu.stat, memory.events).
/// Lines that do not parse are skipped: kernels add keys and some values are not numbers.
pub fn parse_flat_keyed(s: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in s.lines() {
        let mut it = line.split_whitespace();
        if let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) {
            if let Ok(v) = v.parse::<u64>() {
                out.insert(k.to_string(), v);
            }
        }
    }
    out
}

/// Reads a flat keyed file; an absent file yields an empty map.
pub fn read_flat_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>> {
    Ok(read_opt(dir, file)?
        .map(|s| parse_flat_keyed(&s))
        .unwrap_or_default())
}

/// Reads every pid in `cgroup.procs` of `dir` and all its descendants.
pub fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    if let Some(s) = read_opt(dir, "cgroup.procs")? {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    for child in child_dirs(dir)? {
        procs_recursive(&child, out)?;
    }
    Ok(())
}

/// Lists sub-cgroups of `dir` (a vanished dir is treated as empty: it raced with removal).
pub fn child_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Creates `dir` and any missing parents.
pub fn mkdir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|source| Error::Mkdir {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed_skips_garbage() {
        let m = parse_flat_keyed("a 1\nb x\nc 3 4\n\nd 18446744073709551615\n");
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.get("b"), None);
        assert_eq!(m.get("c"), None);
        assert_eq!(m.get("d"), Some(&u64::MAX));
    }

    #[test]
    fn parse_max_and_errors() {
        let p = Path::new("/x");
        assert_eq!(parse_u64(p, "v", "max\n").unwrap(), u64::MAX);
        assert_eq!(parse_u64(p, "v", " 42\n").unwrap(), 42);
        let e = parse_u64(p, "v", "-3").unwrap_err().to_string();
        assert!(e.contains("/x"), "{e}");
    }
}
