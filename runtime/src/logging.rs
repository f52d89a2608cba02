//! The runtime log, in runc's shape: `--log FILE` (default stderr) and `--log-format text|json`.
//!
//! conmon and containerd read the *last error line* of this log to show the user why a
//! container failed, so a failing command writes exactly one error record (see `main`).
//! Kept deliberately tiny: no background thread, because the runtime forks after logging
//! starts and a forked child must not inherit a held lock.

use crate::cli::LogFormat;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    sink: Mutex<Option<File>>,
    format: LogFormat,
    min: Level,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set up the process-wide logger. A log file that cannot be opened is reported and the log
/// falls back to stderr, as runc does.
pub fn init(path: Option<&Path>, format: LogFormat, debug: bool) {
    let sink = path.and_then(
        |p| match OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("mantle: cannot open log file {}: {e}", p.display());
                None
            }
        },
    );
    let min = if debug { Level::Debug } else { Level::Info };
    let _ = LOGGER.set(Logger {
        sink: Mutex::new(sink),
        format,
        min,
    });
}

/// True when log records go to stderr (no `--log` file).
pub fn to_stderr() -> bool {
    LOGGER
        .get()
        .is_none_or(|l| l.sink.lock().map(|s| s.is_none()).unwrap_or(true))
}

pub fn log(level: Level, msg: &str) {
    let Some(logger) = LOGGER.get() else {
        eprintln!("{msg}");
        return;
    };
    if level < logger.min {
        return;
    }
    let line = match logger.format {
        LogFormat::Json => {
            let obj =
                serde_json::json!({"level": level.as_str(), "msg": msg, "time": now_rfc3339()});
            format!("{obj}\n")
        }
        LogFormat::Text => format!(
            "time=\"{}\" level={} msg={:?}\n",
            now_rfc3339(),
            level.as_str(),
            msg
        ),
    };
    let mut sink = logger.sink.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::logging::log($crate::logging::Level::Debug, &format!($($t)*)) };
}
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::logging::log($crate::logging::Level::Info, &format!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::logging::log($crate::logging::Level::Warn, &format!($($t)*)) };
}

/// RFC 3339 with nanoseconds in UTC, the format of runc's `created` field and log times.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(951_782_400, 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            format_rfc3339(1_795_420_800, 0),
            "2026-11-23T08:00:00.000000000Z"
        );
    }
}
