//! The in-container probe of the conformance suite.
//!
//! Built statically (no loader, no libc in the rootfs) and copied into every test bundle as
//! `/bin/probe`. It only *observes*: each command reads something about the process or the
//! filesystem as the kernel sees it and prints it as JSON, so the suite (on the host) can compare
//! it with what config.json asked for. Several commands can be chained with a lone `;` argument;
//! the output is always one JSON array with one element per command.
//!
//! Commands:
//!   report                 identity, credentials, caps, rlimits, namespaces, mounts, tty, ...
//!   stat PATH...           lstat of each path (type, mode, owner, rdev, symlink target)
//!   read PATH              file contents (first 64 KiB) or errno
//!   write PATH [DATA]      create/truncate PATH and write DATA; ok or errno
//!   ls PATH                directory entries or errno
//!   open PATH r|w|rw       open (non-blocking) and close; ok or errno (device cgroup checks)
//!   mknod PATH c|b MAJ MIN create a device node; ok or errno
//!   syscall NR [ARG...]    raw 64-bit syscall with integer args; ret and errno
//!   syscall32 NR [ARG...]  the same through the 32-bit `int 0x80` entry (x86 ABI)
//!   waitsig FILE           create FILE when ready, wait for any catchable signal, print it
//!   sleep SECS | exit CODE

use serde_json::{json, Map, Value};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut results = Vec::new();
    for cmd in args.split(|a| a == ";") {
        if cmd.is_empty() {
            continue;
        }
        results.push(run(cmd));
    }
    let out = serde_json::to_string(&Value::Array(results)).unwrap_or_default();
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{out}");
    let _ = stdout.flush();
}

fn run(cmd: &[String]) -> Value {
    let rest = &cmd[1..];
    match cmd[0].as_str() {
        "report" => report(),
        "stat" => Value::Object(rest.iter().map(|p| (p.clone(), stat(p))).collect()),
        "read" => read(rest.first().map(String::as_str).unwrap_or("")),
        "write" => write(
            rest.first().map(String::as_str).unwrap_or(""),
            rest.get(1).map(String::as_str).unwrap_or("probe"),
        ),
        "ls" => ls(rest.first().map(String::as_str).unwrap_or("")),
        "mknod" => mknod(rest),
        "open" => open_only(
            rest.first().map(String::as_str).unwrap_or(""),
            rest.get(1).map(String::as_str).unwrap_or("r"),
        ),
        "syscall" => raw_syscall(rest, false),
        "syscall32" => raw_syscall(rest, true),
        "waitsig" => waitsig(rest.first().map(String::as_str).unwrap_or("/tmp/ready")),
        "sleep" => {
            let secs: u64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(3600);
            std::thread::sleep(std::time::Duration::from_secs(secs));
            json!({"slept": secs})
        }
        "exit" => {
            let _ = std::io::stdout().flush();
            std::process::exit(rest.first().and_then(|s| s.parse().ok()).unwrap_or(0))
        }
        other => json!({"error": format!("unknown probe command {other:?}")}),
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn io_err(e: &std::io::Error) -> Value {
    json!({"ok": false, "errno": e.raw_os_error().unwrap_or(0), "error": e.to_string()})
}

fn read_string(path: &str) -> Option<String> {
    fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn report() -> Value {
    let mut r = Map::new();
    r.insert("pid".into(), json!(std::process::id()));
    // SAFETY: getppid has no preconditions.
    r.insert("ppid".into(), json!(unsafe { libc::getppid() }));
    r.insert("args".into(), json!(std::env::args().collect::<Vec<_>>()));
    let env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    r.insert("env".into(), json!(env));
    r.insert(
        "cwd".into(),
        json!(std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default()),
    );
    r.insert("status".into(), proc_status());
    r.insert("rlimits".into(), rlimits());
    r.insert("uname".into(), uname());
    for (key, path) in [
        ("oom_score_adj", "/proc/self/oom_score_adj"),
        ("uid_map", "/proc/self/uid_map"),
        ("gid_map", "/proc/self/gid_map"),
        ("setgroups", "/proc/self/setgroups"),
        ("mountinfo", "/proc/self/mountinfo"),
        ("cgroup", "/proc/self/cgroup"),
        ("timens_offsets", "/proc/self/timens_offsets"),
        ("attr_current", "/proc/self/attr/current"),
        ("net_dev", "/proc/net/dev"),
    ] {
        r.insert(key.into(), json!(read_string(path)));
    }
    r.insert("ns".into(), namespaces());
    // SAFETY: personality(0xffffffff) only queries the current persona.
    r.insert(
        "personality".into(),
        json!(unsafe { libc::personality(0xffff_ffff) }),
    );
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, 0) only reads the calling process's priority.
    let ioprio = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    r.insert("ioprio".into(), json!(ioprio));
    r.insert("sched".into(), sched());
    r.insert("tty".into(), tty());
    Value::Object(r)
}

fn proc_status() -> Value {
    let text = read_string("/proc/self/status").unwrap_or_default();
    Value::Object(
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), json!(v.trim())))
            .collect(),
    )
}

fn rlimits() -> Value {
    let table: [(&str, u32); 16] = [
        ("RLIMIT_CPU", libc::RLIMIT_CPU),
        ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
        ("RLIMIT_DATA", libc::RLIMIT_DATA),
        ("RLIMIT_STACK", libc::RLIMIT_STACK),
        ("RLIMIT_CORE", libc::RLIMIT_CORE),
        ("RLIMIT_RSS", libc::RLIMIT_RSS),
        ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
        ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        ("RLIMIT_AS", libc::RLIMIT_AS),
        ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
        ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
        ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", libc::RLIMIT_NICE),
        ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
    ];
    let mut m = Map::new();
    for (name, res) in table {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: rl is a valid, writable rlimit struct.
        if unsafe { libc::getrlimit(res, &mut rl) } == 0 {
            m.insert(
                name.into(),
                json!({"soft": rl.rlim_cur, "hard": rl.rlim_max}),
            );
        }
    }
    Value::Object(m)
}

fn cstr_field(f: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = f
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn uname() -> Value {
    // SAFETY: utsname is plain data; zeroed is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Value::Null;
    }
    json!({
        "nodename": cstr_field(&u.nodename),
        "domainname": cstr_field(&u.domainname),
        "machine": cstr_field(&u.machine),
    })
}

fn namespaces() -> Value {
    let mut m = Map::new();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        if let Ok(link) = fs::read_link(format!("/proc/self/ns/{ns}")) {
            m.insert(ns.into(), json!(link.display().to_string()));
        }
    }
    Value::Object(m)
}

fn sched() -> Value {
    // SAFETY: queries of the calling process with valid out-pointers.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        let mut param = libc::sched_param { sched_priority: 0 };
        libc::sched_getparam(0, &mut param);
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, 0);
        json!({"policy": policy, "priority": param.sched_priority, "nice": nice})
    }
}

fn tty() -> Value {
    let mut m = Map::new();
    for fd in 0..3 {
        // SAFETY: isatty on any fd number is safe.
        m.insert(
            format!("isatty{fd}"),
            json!(unsafe { libc::isatty(fd) } == 1),
        );
    }
    if let Ok(link) = fs::read_link("/proc/self/fd/0") {
        m.insert("stdin".into(), json!(link.display().to_string()));
    }
    // SAFETY: winsize is plain data; TIOCGWINSZ writes into it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 and a valid out-pointer for TIOCGWINSZ.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        m.insert("rows".into(), json!(ws.ws_row));
        m.insert("cols".into(), json!(ws.ws_col));
    }
    Value::Object(m)
}

fn stat(path: &str) -> Value {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) => return io_err(&e),
    };
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "file"
    };
    let rdev = md.rdev();
    let mut v = json!({
        "ok": true,
        "type": kind,
        "mode": md.mode() & 0o7777,
        "uid": md.uid(),
        "gid": md.gid(),
        "size": md.size(),
        "major": libc::major(rdev),
        "minor": libc::minor(rdev),
        "dev": md.dev(),
        "ino": md.ino(),
    });
    if ft.is_symlink() {
        if let Ok(t) = fs::read_link(path) {
            v["target"] = json!(t.display().to_string());
        }
    }
    v
}

fn read(path: &str) -> Value {
    use std::io::Read;
    let mut buf = Vec::new();
    match fs::File::open(path).and_then(|f| f.take(65536).read_to_end(&mut buf)) {
        Ok(_) => json!({"ok": true, "data": String::from_utf8_lossy(&buf)}),
        Err(e) => io_err(&e),
    }
}

fn write(path: &str, data: &str) -> Value {
    match fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(data.as_bytes()))
    {
        Ok(()) => json!({"ok": true}),
        Err(e) => io_err(&e),
    }
}

fn ls(path: &str) -> Value {
    match fs::read_dir(path) {
        Ok(rd) => {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            json!({"ok": true, "entries": names})
        }
        Err(e) => io_err(&e),
    }
}

fn open_only(path: &str, mode: &str) -> Value {
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = fs::OpenOptions::new();
    o.read(mode.contains('r'))
        .write(mode.contains('w'))
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    match o.open(path) {
        Ok(_) => json!({"ok": true}),
        Err(e) => io_err(&e),
    }
}

fn mknod(args: &[String]) -> Value {
    let (Some(path), Some(kind), Some(maj), Some(min)) =
        (args.first(), args.get(1), args.get(2), args.get(3))
    else {
        return json!({"error": "usage: mknod PATH c|b MAJ MIN"});
    };
    let fmt = if kind == "b" {
        libc::S_IFBLK
    } else {
        libc::S_IFCHR
    };
    let dev = libc::makedev(maj.parse().unwrap_or(0), min.parse().unwrap_or(0));
    let Ok(cpath) = std::ffi::CString::new(path.as_str()) else {
        return json!({"error": "path contains NUL"});
    };
    // SAFETY: cpath is a valid NUL-terminated string.
    if unsafe { libc::mknod(cpath.as_ptr(), fmt | 0o666, dev) } == 0 {
        json!({"ok": true})
    } else {
        json!({"ok": false, "errno": errno()})
    }
}

fn parse_num(s: &str) -> i64 {
    if let Some(hex) = s.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).unwrap_or(0)
    } else {
        s.parse().unwrap_or(0)
    }
}

fn raw_syscall(args: &[String], compat32: bool) -> Value {
    let nums: Vec<i64> = args.iter().map(|s| parse_num(s)).collect();
    let nr = nums.first().copied().unwrap_or(-1);
    let a = |i: usize| nums.get(i + 1).copied().unwrap_or(0);
    if compat32 {
        let ret = syscall32(nr, a(0), a(1), a(2));
        // The 32-bit entry returns -errno in eax instead of setting errno.
        return if (-4095..0).contains(&ret) {
            json!({"ret": -1, "errno": -ret})
        } else {
            json!({"ret": ret, "errno": 0})
        };
    }
    // SAFETY: the suite only asks for syscalls with integer arguments (getpid, getppid,
    // getpgid, personality query, ...); no argument is dereferenced as a pointer by us.
    let ret = unsafe { libc::syscall(nr, a(0), a(1), a(2), a(3), a(4), a(5)) };
    let e = if ret == -1 { errno() } else { 0 };
    json!({"ret": ret, "errno": e})
}

/// A syscall through the legacy 32-bit entry point, to check seccomp `architectures`.
fn syscall32(nr: i64, a0: i64, a1: i64, a2: i64) -> i64 {
    let mut eax = nr as i32;
    // SAFETY: `int 0x80` enters the x86 compat syscall table with integer arguments in
    // ebx/ecx/edx; the suite only uses argument-less or integer-argument calls (getpid), so
    // nothing is read from or written to memory. rbx is reserved by LLVM, hence the swap.
    unsafe {
        std::arch::asm!(
            "xchg rbx, {b}",
            "int 0x80",
            "xchg rbx, {b}",
            b = inout(reg) a0 => _,
            inout("eax") eax,
            in("ecx") a1 as i32,
            in("edx") a2 as i32,
        );
    }
    eax as i64
}

static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNALLED.store(sig, std::sync::atomic::Ordering::SeqCst);
}

fn waitsig(ready_file: &str) -> Value {
    for sig in 1..32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGCHLD {
            continue;
        }
        // SAFETY: on_signal is async-signal-safe (one atomic store).
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let _ = fs::write(ready_file, "ready");
    while SIGNALLED.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        // SAFETY: pause has no preconditions; it returns when a handler ran.
        unsafe { libc::pause() };
    }
    let sig = SIGNALLED.load(std::sync::atomic::Ordering::SeqCst);
    json!({"signal": sig})
}
