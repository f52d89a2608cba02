//! Escape attempts: path tricks, the pointer-swap race, denied syscalls, other ABIs.

mod common;

use std::os::unix::process::ExitStatusExt;

use common::*;
use sentry::table::{self, Action};

#[test]
fn path_escapes_stay_inside_the_root() {
    let r = busybox_rootfs("escape");
    let secret = r.plant_secret();
    r.add_prog("escape");
    let (st, out, log) = sh_sentry(r.path(), &format!("/bin/escape {secret}"));
    assert!(st.success(), "{out}\n{log}");
    assert!(!out.contains("HOST-SECRET"), "escaped:\n{out}");
    for name in [
        "dotdot",
        "abs_dotdot",
        "mid_dotdot",
        "abs_symlink",
        "rel_symlink",
        "link_dotdot",
        "dirfd_dotdot",
        "chdir_dotdot",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"));
        assert_eq!(line, format!("{name} err:2"), "{out}");
    }
    assert!(
        out.contains("stat err\n") && out.contains("getcwd /\n"),
        "{out}"
    );
    // The rename "out of the root" lands inside it: /secret in the container.
    assert!(out.contains("rename ok\n"), "{out}");
    assert!(r.path().join("secret").symlink_metadata().is_ok());
    assert_eq!(
        std::fs::read_to_string(r.tmp.path().join("secret")).unwrap(),
        "HOST-SECRET\n"
    );
}

#[test]
fn pointer_swap_race_never_reads_the_secret() {
    let r = busybox_rootfs("race");
    let secret = r.plant_secret();
    r.add_prog("race");
    let (st, out, _) = sh_sentry(r.path(), &format!("/bin/race {secret} 3000"));
    assert!(st.success(), "{out}");
    assert!(
        out.starts_with("opened ") && out.contains(" leaked 0"),
        "{out}"
    );
    let opened: u32 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(opened > 0, "the race never opened anything: {out}");
}

#[test]
fn denied_syscalls_fail_as_the_table_says() {
    let r = busybox_rootfs("deny");
    r.add_prog("syscalls");
    let denied: Vec<(i64, i32)> = table::table()
        .iter()
        .filter_map(|row| match row.action {
            // The kernel exempts uretprobe from seccomp (Linux 6.11+) and raises SIGILL when
            // it is called from anywhere but the uprobe trampoline.
            Action::Deny(_) if row.name == "uretprobe" => None,
            Action::Deny(e) => Some((row.nr, e)),
            _ => None,
        })
        .collect();
    assert!(denied.len() > 50);
    let mut args = String::new();
    for (nr, _) in &denied {
        args.push_str(&format!(" {nr}"));
    }
    // Unknown numbers are denied too (ENOSYS).
    args.push_str(" 400 470 511");
    let (st, out, _) = sh_sentry(r.path(), &format!("/bin/syscalls{args}"));
    assert!(st.success(), "{out}");
    for (nr, e) in denied.iter().copied().chain([
        (400, libc::ENOSYS),
        (470, libc::ENOSYS),
        (511, libc::ENOSYS),
    ]) {
        let want = format!("{nr} -1 {e}");
        assert!(
            out.lines().any(|l| l == want),
            "{} ({nr}): want `{want}` in\n{out}",
            table::name(nr)
        );
    }
}

fn abi(what: &str) -> (std::process::ExitStatus, String) {
    let r = busybox_rootfs(what);
    r.add_prog("abi");
    let (st, log) = run_sentry(r.path(), &["/bin/abi", what]);
    (st, log)
}

#[test]
fn i386_syscalls_kill_the_process() {
    let (st, log) = abi("i386");
    assert_eq!(st.signal(), Some(libc::SIGSYS), "{st:?}\n{log}");
}

#[test]
fn x32_syscalls_kill_the_process() {
    let (st, log) = abi("x32");
    assert_eq!(st.signal(), Some(libc::SIGSYS), "{st:?}\n{log}");
}

#[test]
fn namespaces_and_nested_listeners_are_refused() {
    let r = busybox_rootfs("abi2");
    r.add_prog("abi");
    let (st, out, _) = sh_sentry(
        r.path(),
        "/bin/abi clone_ns; /bin/abi seccomp; unshare -U true; echo unshare=$?",
    );
    assert!(st.success(), "{out}");
    assert!(
        out.contains(&format!("clone_ns -1 {}\n", libc::EPERM)),
        "{out}"
    );
    assert!(
        out.contains(&format!("seccomp -1 {}\n", libc::EPERM)),
        "{out}"
    );
    assert!(out.contains("unshare=1"), "{out}");
}
