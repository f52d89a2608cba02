//! The process's stdio and fds: terminals through --console-socket, --preserve-fds with
//! LISTEN_FDS, and no runtime fd reaching the workload.

use mantle_tests::*;
use serde_json::json;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::time::Duration;

/// The fd numbers a process holds, seen from the host.
fn fds_of(pid: i32) -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect();
    v.sort();
    v
}

#[test]
fn terminal_via_console_socket() {
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("tty; stty size; echo hello-tty; exit 5");
    b.set("/process/terminal", json!(true))
        .set("/process/consoleSize", json!({"height": 31, "width": 97}));
    let sock = ConsoleSocket::new();
    let c = rt.create(&b, &unique("tty"), &["--console-socket", sock.path_str()]);
    let master = sock.master(Duration::from_secs(10));
    c.start().success();
    let out = read_pty(master, Duration::from_secs(10));
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines, vec!["/dev/pts/0", "31 97", "hello-tty"], "{out:?}");
    c.wait_status("stopped");
}

#[test]
fn terminal_rules_for_console_socket() {
    let rt = Runtime::mantle();
    // terminal without a console socket (create would have to detach): refused.
    let mut b = Bundle::new(&["true"]);
    b.set("/process/terminal", json!(true));
    b.write();
    let id = unique("notty");
    let _g = rt.guard(&id);
    let out = rt.run(&["create", "--bundle", b.path_str(), &id]).failure();
    assert!(
        out.stderr.contains("console socket") || out.stderr.contains("console-socket"),
        "{out:?}"
    );
    assert!(leftovers(&rt, &id, b.path(), &[]).is_empty());
    // A console socket without terminal: refused.
    let b = Bundle::new(&["true"]);
    b.write();
    let sock = ConsoleSocket::new();
    let out = rt
        .run(&[
            "create",
            "--console-socket",
            sock.path_str(),
            "--bundle",
            b.path_str(),
            &id,
        ])
        .failure();
    assert!(out.stderr.contains("console"), "{out:?}");
    assert!(leftovers(&rt, &id, b.path(), &[]).is_empty());
}

#[test]
fn exec_with_tty() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let c = rt.create(&b, &unique("exectty"), &[]);
    c.start().success();
    let sock = ConsoleSocket::new();
    let path = sock.path_str().to_string();
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let sock = path.as_str();
            c.exec_with(
                &["--tty", "--detach", "--console-socket", sock],
                &["sh", "-c", "tty; echo exec-tty"],
            )
        });
        let master = sock.master(Duration::from_secs(10));
        let text = read_pty(master, Duration::from_secs(10));
        (h.join().unwrap(), text)
    });
    out.0.success();
    let lines: Vec<&str> = out.1.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.len() == 2 && lines[0].starts_with("/dev/pts/") && lines[1] == "exec-tty",
        "{:?}",
        out.1
    );
}

#[test]
fn preserve_fds_passes_fds_and_listen_fds() {
    let rt = Runtime::mantle();
    let tmp = TempDir::new("pfd");
    fs::write(tmp.path().join("in"), "three\n").unwrap();
    let fd3 = fs::File::open(tmp.path().join("in")).unwrap();
    let fd4 = fs::File::create(tmp.path().join("out")).unwrap();
    let b = Bundle::sh("cat <&3; echo four >&4; echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd");
    b.write();
    let id = unique("pfd");
    let _g = rt.guard(&id);
    let mut cmd = rt.command(&["run", "--preserve-fds", "2", "--bundle", b.path_str(), &id]);
    let (a, z) = (fd3.as_raw_fd(), fd4.as_raw_fd());
    // SAFETY: only fcntl/dup2/close (async-signal-safe) run between fork and exec. The fds
    // are first moved above 3 and 4 so the second dup2 cannot read what the first replaced.
    unsafe {
        cmd.pre_exec(move || {
            let (a2, z2) = (
                libc::fcntl(a, libc::F_DUPFD, 100),
                libc::fcntl(z, libc::F_DUPFD, 100),
            );
            if a2 < 0 || z2 < 0 || libc::dup2(a2, 3) < 0 || libc::dup2(z2, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(a2);
            libc::close(z2);
            Ok(())
        });
    }
    let out = rt.run_cmd(cmd, Duration::from_secs(30)).success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "three");
    assert_eq!(lines[1], "2 1");
    assert_eq!(
        fs::read_to_string(tmp.path().join("out")).unwrap(),
        "four\n"
    );
    // ls's own directory fd is the only one past the preserved ones.
    assert_eq!(&lines[2..], &["0", "1", "2", "3", "4", "5"], "{out:?}");
}

#[test]
fn workload_holds_only_stdio() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let c = rt.create(&b, &unique("fds"), &[]);
    c.start().success();
    let pid = c.pid();
    assert!(wait_for(Duration::from_secs(5), || fs::read_link(format!(
        "/proc/{pid}/exe"
    ))
    .is_ok_and(|p| p.ends_with("busybox"))));
    assert_eq!(fds_of(pid), vec![0, 1, 2], "container init leaks fds");
    let tmp = TempDir::new("fds");
    let pidfile = tmp.path().join("p");
    c.exec_with(
        &["--detach", "--pid-file", pidfile.to_str().unwrap()],
        &["sleep", "50"],
    )
    .success();
    let epid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(fds_of(epid), vec![0, 1, 2], "exec'd process leaks fds");
    // From inside, too (ls's own fd is 3).
    let out = c.exec(&["ls", "/proc/self/fd"]).success();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        vec!["0", "1", "2", "3"]
    );
}

#[test]
fn exec_preserve_fds() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let c = rt.create(&b, &unique("execpfd"), &[]);
    c.start().success();
    let tmp = TempDir::new("execpfd");
    fs::write(tmp.path().join("in"), "from-fd-3\n").unwrap();
    let f = fs::File::open(tmp.path().join("in")).unwrap();
    let mut cmd = rt.command(&[
        "exec",
        "--preserve-fds",
        "1",
        c.id(),
        "sh",
        "-c",
        "cat <&3; echo $LISTEN_FDS",
    ]);
    let a = f.as_raw_fd();
    // SAFETY: only fcntl/dup2/close (async-signal-safe) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let a2 = libc::fcntl(a, libc::F_DUPFD, 100);
            if a2 < 0 || libc::dup2(a2, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(a2);
            Ok(())
        });
    }
    let out = rt.run_cmd(cmd, Duration::from_secs(30)).success();
    assert_eq!(out.stdout, "from-fd-3\n1\n");
}
