//! /proc paths are served from the workload's own procfs (private mount namespace here), with
//! self rewritten and magic links never traversed.

mod common;

use common::*;
use sentry::launch::{run_command_opts, LaunchOptions};

fn run(r: &Rootfs, script: &str) -> (String, String) {
    std::fs::create_dir_all(r.path().join("proc")).unwrap();
    std::fs::write(
        r.path().join("work/script.sh"),
        format!("exec >/work/out 2>&1\n{script}"),
    )
    .unwrap();
    let log = Log::default();
    let opts = LaunchOptions {
        log: Some(Box::new(log.clone())),
        mount_proc: true,
        ..Default::default()
    };
    let st = run_command_opts(
        &["/bin/sh", "/work/script.sh"],
        r.path(),
        config(true),
        opts,
    )
    .unwrap();
    let out = std::fs::read_to_string(r.path().join("work/out")).unwrap_or_default();
    assert!(st.success(), "{out}\n{}", log.text());
    (out, log.text())
}

#[test]
fn proc_self_is_the_workload() {
    let r = busybox_rootfs("proc");
    let (out, log) = run(
        &r,
        "readlink /proc/self/exe; cd /tmp; readlink /proc/self/cwd; \
         while read k v; do [ \"$k\" = Pid: ] && [ \"$v\" = $$ ] && echo pid-ok; done </proc/self/status; \
         exec 7</etc/passwd; readlink /proc/$$/fd/7; ls /proc/self/fd | grep -c 7",
    );
    assert_eq!(out, "/bin/busybox\n/tmp\npid-ok\n/etc/passwd\n1\n", "{log}");
    assert!(
        !r.path().join("proc/self").exists(),
        "procfs leaked onto the host mount table"
    );
}

#[test]
fn magic_links_do_not_lead_out() {
    let r = busybox_rootfs("proc-escape");
    let secret = r.plant_secret();
    let (out, _) = run(
        &r,
        &format!(
            "cat /proc/self/root/../{secret} 2>&1 | grep -c SECRET; \
             cat /proc/1/root/etc/hostname 2>/dev/null | wc -c; \
             cat /proc/self/cwd/../{secret} 2>&1 | grep -c SECRET; \
             ls /proc/self/root/ >/dev/null 2>&1; echo ls=$?"
        ),
    );
    // No SECRET, nothing from the host's /etc/hostname, no traversal of /proc/self/root.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1].trim(), "0", "{out}");
    assert_eq!(lines[2], "0", "{out}");
    assert_ne!(lines[3], "ls=0", "{out}");
}
