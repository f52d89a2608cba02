//! The sentry confined (its own seccomp allowlist, capabilities dropped) still serves a busy
//! workload: files, exec, dynamic-free busybox pipelines, /proc, threads.

mod common;

use common::*;
use sentry::launch::{run_command_opts, LaunchOptions};

#[test]
fn confined_sentry_serves_the_same() {
    let script = r#"cd /tmp
echo one > a; mv a b; ln -s b l; readlink l; cat l
mkdir -p d/e; touch d/e/f; find d | sort; rm -r d
seq 1 5 | sort -r | head -2
uname -n
readlink /proc/self/exe
/bin/threads
chmod 600 b; stat -c '%a %s' b
"#;
    let r = busybox_rootfs("confined");
    r.add_prog("threads");
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
        confine_sentry: true,
    };
    let st = run_command_opts(
        &["/bin/sh", "/work/script.sh"],
        r.path(),
        config(true),
        opts,
    )
    .expect("confined sentry");
    let out = std::fs::read_to_string(r.path().join("work/out")).unwrap();
    assert!(st.success(), "{out}\n{}", log.text());
    assert_eq!(
        out,
        "b\none\nd\nd/e\nd/e/f\n5\n4\nsentry-test\n/bin/busybox\nfails 0\n600 4\n",
        "{}",
        log.text()
    );
    assert!(
        log.text().contains("openat("),
        "strace lines come back through the pipe"
    );
}
