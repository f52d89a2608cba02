//! The ptrace platform specifically: the exit status and job-control stops the workload's
//! real parent sees, signal delivery, fd injection semantics, exec from a thread, the attach
//! handshake and EXITKILL. (The scenario tests run on ptrace through ptrace_matrix.rs.)

mod common;

use std::os::fd::AsFd;
use std::time::Duration;

use common::*;
use sentry::launch::LaunchOptions;
use sentry::platforms::ptrace::launch::{run_observed, Observed};
use sentry::platforms::ptrace::{prepare_tracee, Ptrace};

fn run_argv(
    root: &std::path::Path,
    argv: &[&str],
    started: impl FnOnce(i32),
) -> (Observed, String) {
    let log = Log::default();
    let o = run_observed(
        argv,
        root,
        config(true),
        LaunchOptions {
            log: Some(Box::new(log.clone())),
            ..Default::default()
        },
        started,
    )
    .expect("run under the ptrace sentry");
    (o, log.text())
}

fn run_script(
    root: &std::path::Path,
    script: &str,
    started: impl FnOnce(i32),
) -> (Observed, String, String) {
    std::fs::write(
        root.join("work/script.sh"),
        format!("exec >/work/out 2>&1\n{script}"),
    )
    .unwrap();
    let (o, log) = run_argv(root, &["/bin/sh", "/work/script.sh"], started);
    let out = std::fs::read_to_string(root.join("work/out")).unwrap_or_default();
    (o, out, log)
}

fn kill_after(pid: i32, steps: Vec<(u64, i32)>) {
    std::thread::spawn(move || {
        for (ms, sig) in steps {
            std::thread::sleep(Duration::from_millis(ms));
            // SAFETY: signalling the test's own workload by pid.
            unsafe { libc::kill(pid, sig) };
        }
    });
}

#[test]
fn real_parent_sees_the_exit_code() {
    let r = busybox_rootfs("pt-exit");
    for code in [0, 3, 255] {
        let (o, out, log) = run_script(r.path(), &format!("echo hi; exit {code}"), |_| {});
        assert_eq!(out, "hi\n", "{log}");
        // Exactly one status, the exit, as the parent sees it natively.
        assert_eq!(o.statuses, vec![code << 8], "{log}");
    }
}

#[test]
fn real_parent_sees_death_by_signal() {
    let r = busybox_rootfs("pt-sig");
    let (o, _, log) = run_script(r.path(), "kill -TERM $$; sleep 5", |_| {});
    let st = *o.statuses.last().unwrap();
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGTERM,
        "status {st:#x}\n{log}"
    );

    // A signal from outside (what podman kill does), default action.
    let (o, _) = run_argv(r.path(), &["/bin/sleep", "10"], |pid| {
        kill_after(pid, vec![(300, libc::SIGKILL)])
    });
    let st = *o.statuses.last().unwrap();
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL,
        "status {st:#x}"
    );
}

/// The state letter of /proc/<pid>/stat.
fn proc_state(pid: i32) -> char {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    s.rsplit(") ")
        .next()
        .and_then(|r| r.chars().next())
        .unwrap_or('?')
}

/// Send `stop`, wait until the workload is stopped, hold it `hold`, then SIGCONT it. Waiting for
/// the stop (rather than sleeping a fixed time) keeps a slow machine from letting SIGCONT
/// overtake the stop signal, which would cancel it natively too.
fn stop_then_continue(pid: i32, after: Duration, stop: i32, hold: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        // SAFETY: signalling the test's own workload by pid.
        unsafe { libc::kill(pid, stop) };
        let t0 = std::time::Instant::now();
        while !matches!(proc_state(pid), 'T' | 't') && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(hold);
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    });
}

#[test]
fn stop_and_continue_reach_the_real_parent() {
    let r = busybox_rootfs("pt-stop");
    // The sleep outlasts stop + hold, so the workload runs on after SIGCONT and the parent
    // has time to collect the continue before the exit (natively a later exit would hide it).
    for stop in [libc::SIGSTOP, libc::SIGTSTP] {
        let (o, log) = run_argv(r.path(), &["/bin/sleep", "2"], |pid| {
            stop_then_continue(
                pid,
                Duration::from_millis(100),
                stop,
                Duration::from_millis(500),
            )
        });
        let s = &o.statuses;
        // Exactly what a native parent waiting with WUNTRACED|WCONTINUED sees.
        assert_eq!(s.len(), 3, "statuses {s:x?}\n{log}");
        assert!(
            libc::WIFSTOPPED(s[0]) && libc::WSTOPSIG(s[0]) == stop,
            "{:#x}",
            s[0]
        );
        assert!(libc::WIFCONTINUED(s[1]), "{:#x}", s[1]);
        assert_eq!(s[2], 0, "exit 0 after continuing");
    }
}

#[test]
fn signals_reach_handlers() {
    let r = busybox_rootfs("pt-trap");
    let ready = r.path().join("work/ready");
    let (o, out, log) = run_script(
        r.path(),
        "trap 'echo got-usr1' USR1; kill -USR1 $$; echo after\n\
         trap 'echo got-usr2; exit 9' USR2; touch /work/ready; while :; do sleep 0.05; done",
        |pid| {
            // A signal from outside once the trap is set (like `podman kill -s USR2`).
            std::thread::spawn(move || {
                let t0 = std::time::Instant::now();
                while !ready.exists() && t0.elapsed() < Duration::from_secs(20) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                // SAFETY: signalling the test's own workload by pid.
                unsafe { libc::kill(pid, libc::SIGUSR2) };
            });
        },
    );
    assert_eq!(out, "got-usr1\nafter\ngot-usr2\n", "{log}");
    assert_eq!(o.statuses.last(), Some(&(9 << 8)));
}

#[test]
fn fd_injection_matches_a_native_open() {
    let a = busybox_rootfs("pt-fds-native");
    let b = busybox_rootfs("pt-fds");
    a.add_prog("ptrace_fds");
    b.add_prog("ptrace_fds");
    let (nst, nout) = sh_native(a.path(), "/bin/ptrace_fds");
    let (o, out, log) = run_script(b.path(), "/bin/ptrace_fds", |_| {});
    assert!(nst.success(), "{nout}");
    assert!(
        nout.starts_with("a=0 b=3 cloexec_b=1 c=4 cloexec_c=0"),
        "{nout}"
    );
    assert_eq!(out, nout, "{log}");
    assert_eq!(o.statuses, vec![0]);
    assert!(
        log.matches("openat(").count() >= 300,
        "the opens were emulated:\n{log}"
    );
}

#[test]
fn fork_storm_with_emulated_calls() {
    // Many short-lived processes at once, each making emulated calls (opens with fd
    // injection, stats, exec): every one is followed, and the tracer ends when the last exits.
    let r = busybox_rootfs("pt-storm");
    let (o, out, log) = run_script(
        r.path(),
        "for i in $(seq 1 40); do (cat /etc/passwd >/dev/null; ls / >/tmp/ls.$i; stat -c %s /tmp/ls.$i >/dev/null) & done\n\
         wait; ls /tmp | wc -l; echo done",
        |_| {},
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["40", "done"],
        "{log}"
    );
    assert_eq!(o.statuses, vec![0]);
}

#[test]
fn exec_from_a_thread_while_the_leader_is_intercepted() {
    let r = busybox_rootfs("pt-thexec");
    r.add_prog("ptrace_thread_exec");
    for _ in 0..3 {
        let (o, out, log) = run_script(r.path(), "/bin/ptrace_thread_exec", |_| {});
        assert_eq!(out, "exec-from-thread-ok\n", "{log}");
        assert_eq!(o.statuses, vec![0]);
    }
}

/// Tests that fork the test process itself run one at a time: a child forked by one would
/// otherwise hold another's socket ends open.
static FORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// In a forked child: keep only `fd`, as fd 3, so no socket end of the parent stays open here.
fn only_fd(fd: std::os::fd::OwnedFd) -> std::os::fd::BorrowedFd<'static> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    // SAFETY: dup2 and close_range on fd numbers; fd 3 stays valid for the child's lifetime.
    unsafe {
        libc::dup2(fd.as_raw_fd(), 3);
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        std::mem::forget(fd);
        BorrowedFd::borrow_raw(3)
    }
}

/// Fork a child that runs `prepare_tracee` on `sock` and then `body`.
fn fork_tracee(sock: std::os::fd::OwnedFd, body: fn() -> i32) -> i32 {
    // SAFETY: the child makes syscalls, compiles the filter (allocation after fork is fine
    // with glibc) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = match prepare_tracee(only_fd(sock)) {
            Ok(()) => body(),
            Err(_) => 100,
        };
        // SAFETY: end the child without unwinding into the harness.
        unsafe { libc::_exit(code) };
    }
    pid
}

fn socketpair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    (a.into(), b.into())
}

#[test]
fn sentry_death_kills_the_workload() {
    let _one = FORKS.lock().unwrap_or_else(|p| p.into_inner());
    let (ours, theirs) = socketpair();
    let pid = fork_tracee(theirs, || loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    });
    let p = Ptrace::seize(pid, ours.as_fd()).expect("seize");
    assert!(p.tracer_tid() > 0);
    std::thread::sleep(Duration::from_millis(100));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status.contains(&format!("TracerPid:\t{}", p.tracer_tid())),
        "{status}"
    );
    drop(p); // the tracer thread ends: PTRACE_O_EXITKILL
    let mut st = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL,
        "status {st:#x}"
    );
}

#[test]
fn seize_checks_who_is_ready() {
    let _one = FORKS.lock().unwrap_or_else(|p| p.into_inner());
    let (ours, theirs) = socketpair();
    let pid = fork_tracee(theirs, || 0);
    // SAFETY: getppid has no preconditions; our parent is certainly not the child.
    let wrong = unsafe { libc::getppid() };
    let err = Ptrace::seize(wrong, ours.as_fd())
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains(&pid.to_string()), "{err}");
    drop(ours);
    let mut st = 0;
    // SAFETY: waiting for our own child; it was never seized, so its handshake fails.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert_eq!(libc::WEXITSTATUS(st), 100);

    assert!(Ptrace::seize(-1, socketpair().0.as_fd()).is_err());
}

#[test]
fn untraced_emulated_calls_fail_closed() {
    // Filter installed, never seized: an emulated call (uname) fails with ENOSYS instead of
    // running unchecked. The child reports errno as its exit code.
    let _one = FORKS.lock().unwrap_or_else(|p| p.into_inner());
    let (ours, theirs) = socketpair();
    // SAFETY: see fork_tracee; the child makes raw syscalls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        only_fd(theirs);
        let prog = sentry::platforms::ptrace::TraceProgram::new().unwrap();
        let code = match sentry::platforms::ptrace::install_trace_filter(&prog) {
            Ok(()) => {
                // SAFETY: utsname is plain data, written by the kernel.
                let mut u: libc::utsname = unsafe { std::mem::zeroed() };
                // SAFETY: valid pointer.
                let r = unsafe { libc::uname(&mut u) };
                if r == 0 {
                    0
                } else {
                    std::io::Error::last_os_error().raw_os_error().unwrap_or(1)
                }
            }
            Err(_) => 100,
        };
        // SAFETY: end the child.
        unsafe { libc::_exit(code) };
    }
    drop(theirs);
    drop(ours);
    let mut st = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
    assert_eq!(libc::WEXITSTATUS(st), libc::ENOSYS);
}

#[test]
fn confined_sentry_serves_on_ptrace() {
    // The sentry in its own process, confined (seccomp allowlist + CONFINE_EXTRA, only
    // CAP_SYS_PTRACE), tracing a workload whose parent is yet another process.
    let r = busybox_rootfs("pt-confined");
    r.add_prog("threads");
    std::fs::create_dir_all(r.path().join("proc")).unwrap();
    std::fs::write(
        r.path().join("work/script.sh"),
        "exec >/work/out 2>&1\ncd /tmp; echo one > a; mv a b; cat b; ls; uname -n\n\
         readlink /proc/self/exe; /bin/threads; sleep 0.1 & wait; exit 4\n",
    )
    .unwrap();
    let log = Log::default();
    let o = run_observed(
        &["/bin/sh", "/work/script.sh"],
        r.path(),
        config(true),
        LaunchOptions {
            log: Some(Box::new(log.clone())),
            mount_proc: true,
            confine_sentry: true,
        },
        |_| {},
    )
    .expect("confined ptrace sentry");
    let out = std::fs::read_to_string(r.path().join("work/out")).unwrap();
    assert_eq!(
        out,
        "one\nb\nsentry-test\n/bin/busybox\nfails 0\n",
        "{}",
        log.text()
    );
    assert_eq!(o.statuses, vec![4 << 8]);
    assert!(
        log.text().contains("openat("),
        "strace lines come back through the pipe"
    );
}

#[test]
fn untraced_clone_cannot_escape() {
    let r = busybox_rootfs("pt-untraced");
    r.add_prog("ptrace_untraced");
    let (o, out, log) = run_script(r.path(), "/bin/ptrace_untraced", |_| {});
    assert_eq!(out, "open_enosys=1 uname_enosys=1 pass_ok=1\n", "{log}");
    assert_eq!(o.statuses, vec![0]);
}
