//! `run` and `exec -t` in the foreground with a terminal and no --console-socket: mantle
//! receives the pty master itself and copies between it and its own stdio (as runc does).
//! Driven under util-linux `script`, which gives mantle a terminal of its own.

use mantle_tests::{unique, Bundle, Runtime};
use std::process::Command;
use std::time::Duration;

fn under_script(rt: &Runtime, args: &[&str]) -> mantle_tests::Output {
    let mut line = format!("{} --root {}", rt.bin.display(), rt.root.path().display());
    for a in args {
        line.push(' ');
        line.push_str(&mantle_tests::sh_quote(a));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-eqc", &line, "/dev/null"]);
    mantle_tests::run_with_timeout(cmd, Duration::from_secs(30))
}

#[test]
fn run_with_terminal_proxies_the_pty_and_the_exit_code() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("tty; echo through-the-pty; exit 4");
    b.set("/process/terminal", serde_json::json!(true));
    b.write();
    let id = unique("tty-run");
    let _g = rt.guard(&id);
    let out = under_script(&rt, &["run", "--bundle", b.path_str(), &id]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.stdout.contains("/dev/pts/"),
        "not a pty: {}",
        out.stdout
    );
    assert!(out.stdout.contains("through-the-pty"), "{}", out.stdout);
}

#[test]
fn exec_tty_proxies_the_pty_and_the_exit_code() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "30"]);
    let id = unique("tty-exec");
    let c = rt.create(&b, &id, &[]);
    c.start().success();
    let out = under_script(
        &rt,
        &["exec", "-t", &id, "sh", "-c", "tty; echo exec-pty; exit 6"],
    );
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stdout.contains("/dev/pts/") && out.stdout.contains("exec-pty"),
        "{}",
        out.stdout
    );
}
