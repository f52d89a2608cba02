//! End to end: busybox under the sentry (needs root for chroot).

mod common;

use common::*;

#[test]
fn echo_and_exit_code() {
    let r = busybox_rootfs("echo");
    let (st, out, log) = sh_sentry(r.path(), "echo hello; exit 7");
    assert_eq!(out, "hello\n", "strace:\n{log}");
    assert_eq!(st.code(), Some(7), "strace:\n{log}");
    assert!(log.contains("execve("), "execve is intercepted:\n{log}");
}

#[test]
fn uname_shows_container_hostname() {
    let r = busybox_rootfs("uname");
    let (st, out, log) = sh_sentry(r.path(), "uname -n; uname -s; uname -m");
    assert!(st.success(), "{out}\n{log}");
    assert_eq!(out, "sentry-test\nLinux\nx86_64\n", "{log}");
    assert!(log.contains("uname("), "{log}");
}
