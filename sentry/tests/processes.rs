//! Exit codes, signals, threads, strace output.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::*;

#[test]
fn exit_codes_pass_through() {
    let r = busybox_rootfs("exit");
    for code in [0, 1, 42, 255] {
        let (st, _) = run_sentry(r.path(), &["/bin/sh", "-c", &format!("exit {code}")]);
        assert_eq!(st.code(), Some(code));
    }
}

#[test]
fn death_by_signal_is_reported() {
    let r = busybox_rootfs("signal");
    let (st, _) = run_sentry(r.path(), &["/bin/sh", "-c", "kill -TERM $$"]);
    assert_eq!(st.signal(), Some(libc::SIGTERM), "{st:?}");
    let (st, _) = run_sentry(r.path(), &["/bin/sh", "-c", "kill -KILL $$"]);
    assert_eq!(st.signal(), Some(libc::SIGKILL), "{st:?}");
}

#[test]
fn missing_program_fails_like_execve() {
    let r = busybox_rootfs("noexec");
    let (st, log) = run_sentry(r.path(), &["/bin/does-not-exist"]);
    // The launcher's child exits 127 when execve fails.
    assert_eq!(st.code(), Some(127), "{log}");
    assert!(
        log.contains("execve(\"/bin/does-not-exist\") = -1 ENOENT"),
        "{log}"
    );
}

#[test]
fn background_children_and_pipelines() {
    let r = busybox_rootfs("bg");
    let (st, out, _) = sh_sentry(
        r.path(),
        "sleep 0.2 & p=$!; echo a b c | tr ' ' '\\n' | sort -r | head -2; wait $p; echo waited=$?",
    );
    assert!(st.success(), "{out}");
    assert_eq!(out, "c\nb\nwaited=0\n");
}

#[test]
fn threads_make_emulated_calls_concurrently() {
    let r = busybox_rootfs("threads");
    r.add_prog("threads");
    let (st, out, log) = sh_sentry(r.path(), "/bin/threads");
    assert!(st.success(), "{out}");
    assert_eq!(out, "fails 0\n");
    assert!(
        log.matches("openat(").count() >= 8 * 200,
        "every open is emulated"
    );
}

#[test]
fn strace_lines_show_decoded_arguments() {
    let r = busybox_rootfs("strace");
    let (st, out, log) = sh_sentry(r.path(), "cat /etc/passwd; cat /nope; true");
    assert!(st.success(), "{out}");
    assert!(
        log.lines()
            .any(|l| l.contains("openat(AT_FDCWD, \"/etc/passwd\", 0o0) = ")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("openat(AT_FDCWD, \"/nope\", 0o0) = -1 ENOENT")),
        "{log}"
    );
    assert!(log.lines().all(|l| l.starts_with('[')), "{log}");
}
