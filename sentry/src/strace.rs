//! One line per emulated syscall, like `runsc --strace`:
//! `[tid] openat(AT_FDCWD, "/etc/passwd", 0o2000000) = 3`.

use crate::emulate::{Answered, Call};
use crate::platform::SyscallEvent;
use crate::table::{self, errno_name};

pub(crate) fn line(ev: &SyscallEvent, call: &Call<'_>, answered: &Answered) -> String {
    let nargs = call
        .shown
        .iter()
        .map(|(i, _)| i + 1)
        .max()
        .unwrap_or(0)
        .max(1);
    let args: Vec<String> = (0..nargs)
        .map(|i| {
            call.shown
                .iter()
                .find(|(k, _)| *k == i)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| format!("{:#x}", ev.args[i]))
        })
        .collect();
    let res = match answered {
        Answered::Value(v) => v.to_string(),
        Answered::Errno(e) => format!(
            "-1 {} ({})",
            errno_name(*e),
            std::io::Error::from_raw_os_error(*e)
        ),
        Answered::Continue => "continue".into(),
        Answered::Gone => "? (thread gone)".into(),
    };
    format!(
        "[{}] {}({}) = {}",
        ev.tid,
        table::name(ev.nr),
        args.join(", "),
        res
    )
}
