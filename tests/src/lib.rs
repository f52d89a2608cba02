//! Shared helpers of the black-box integration tests (they only run binaries).
//!
//! - [`mantle_bin`] / [`runc_bin`]: the runtimes under test.
//! - [`Bundle`]: a busybox bundle built from the host's busybox-static (`/bin/busybox`), with
//!   a runc-like default config.json held as JSON so each test edits only what it checks.
//! - [`Runtime`]: one runtime binary with a private `--root`; every command runs with a
//!   timeout, its stdout/stderr go to files (a detached container keeps inherited pipes
//!   open, files never block), and stderr is checked for panics.
//! - [`Ctr`]: a container id that is force-deleted on drop, even when an assertion failed.
//! - [`leftovers`]: what a failed create might leave behind (state dir, cgroups, mounts,
//!   processes).

use serde_json::{json, Value};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Default time limit of one runtime command.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (tests/ is one level below).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// `$MANTLE_BIN`, else the workspace's release build, else its debug build.
pub fn mantle_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MANTLE_BIN") {
        return PathBuf::from(p);
    }
    for p in ["target/release/mantle", "target/debug/mantle"] {
        let p = workspace().join(p);
        if p.exists() {
            return p;
        }
    }
    panic!("mantle binary not found: build it and/or set MANTLE_BIN");
}

/// runc, if installed (the differential tests compare against it).
pub fn runc_bin() -> Option<PathBuf> {
    [
        "/usr/bin/runc",
        "/usr/sbin/runc",
        "/usr/local/bin/runc",
        "/usr/local/sbin/runc",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Unique names across tests and parallel test processes.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A temporary directory removed on drop, unless something is still mounted beneath it:
/// then removing it could descend into a leaked mount of a host directory, so it is left
/// alone (and the leak is what a test should have reported).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(&format!("mantle-it-{prefix}")));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if mounts_under(&self.path).is_empty() {
            let _ = fs::remove_dir_all(&self.path);
        } else {
            eprintln!(
                "warning: mounts left under {}; not removing it",
                self.path.display()
            );
        }
    }
}

/// Mount points of this (the host's) mount namespace at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.to_string_lossy();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| *mp == d || mp.starts_with(&format!("{d}/")))
        .map(str::to_string)
        .collect()
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code, or 128+N when killed by signal N.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// Panics with both streams unless the command succeeded.
    #[track_caller]
    pub fn success(self) -> Output {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the command failed without panicking.
    #[track_caller]
    pub fn failure(self) -> Output {
        assert_ne!(
            self.code, 0,
            "command unexpectedly succeeded:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Run `cmd` with stdout/stderr in files and a deadline; kills it on timeout and panics.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let tmp = TempDir::new("out");
    let out_path = tmp.path().join("stdout");
    let err_path = tmp.path().join("stderr");
    cmd.stdout(fs::File::create(&out_path).expect("stdout file"));
    cmd.stderr(fs::File::create(&err_path).expect("stderr file"));
    let desc = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = fs::read_to_string(&err_path).unwrap_or_default();
            panic!("timed out after {timeout:?}: {desc}\nstderr: {err}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Output {
        code,
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// A runtime binary with its own private state root.
pub struct Runtime {
    pub bin: PathBuf,
    pub root: TempDir,
    /// Extra global flags (e.g. `--debug`).
    pub global: Vec<String>,
}

impl Runtime {
    pub fn mantle() -> Runtime {
        Runtime::with_bin(mantle_bin())
    }

    pub fn runc() -> Option<Runtime> {
        runc_bin().map(Runtime::with_bin)
    }

    pub fn with_bin(bin: PathBuf) -> Runtime {
        Runtime {
            bin,
            root: TempDir::new("root"),
            global: vec![],
        }
    }

    pub fn is_mantle(&self) -> bool {
        self.bin
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("mantle"))
    }

    /// A command with `--root` set; the caller adds arguments.
    pub fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(self.root.path())
            .args(&self.global)
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Run with the default timeout; never returns a panicked run.
    #[track_caller]
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.run_cmd(self.command(args), TIMEOUT)
    }

    #[track_caller]
    pub fn run_cmd(&self, cmd: Command, timeout: Duration) -> Output {
        let out = run_with_timeout(cmd, timeout);
        assert_no_panic(&out);
        out
    }

    /// `state <id>` parsed.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.run(&["state", id]).success();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state JSON: {e}: {}", out.stdout))
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until the container reaches `want` (or panic after `timeout`).
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            // The container may not exist yet (a `run` still creating it).
            let out = self.run(&["state", id]);
            let s = serde_json::from_str::<Value>(&out.stdout)
                .map(|v| v["status"].as_str().unwrap_or_default().to_string())
                .unwrap_or_else(|_| format!("(state failed: {})", out.stderr.trim()));
            if s == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} still {s:?}, wanted {want:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `create` then return a guard that deletes the container.
    #[track_caller]
    pub fn create<'a>(&'a self, bundle: &Bundle, id: &str, extra: &[&str]) -> Ctr<'a> {
        bundle.write();
        let mut args = vec!["create", "--bundle", bundle.path_str()];
        args.extend_from_slice(extra);
        args.push(id);
        let ctr = Ctr {
            rt: self,
            id: id.to_string(),
        };
        self.run(&args).success();
        ctr
    }

    /// A guard for an id the caller creates itself.
    pub fn guard<'a>(&'a self, id: &str) -> Ctr<'a> {
        Ctr {
            rt: self,
            id: id.to_string(),
        }
    }

    /// `run` in the foreground (container stdout/stderr are the command's).
    #[track_caller]
    pub fn run_bundle(&self, bundle: &Bundle, id: &str) -> Output {
        bundle.write();
        let _g = self.guard(id);
        self.run(&["run", "--bundle", bundle.path_str(), id])
    }
}

#[track_caller]
pub fn assert_no_panic(out: &Output) {
    assert!(
        !out.stderr.contains("panicked") && !out.stdout.contains("panicked"),
        "runtime panicked:\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
}

/// Deletes (`delete --force`) its container when dropped.
pub struct Ctr<'a> {
    pub rt: &'a Runtime,
    pub id: String,
}

impl Ctr<'_> {
    pub fn id(&self) -> &str {
        &self.id
    }

    #[track_caller]
    pub fn start(&self) -> Output {
        self.rt.run(&["start", &self.id])
    }

    pub fn state(&self) -> Value {
        self.rt.state(&self.id)
    }

    pub fn status(&self) -> String {
        self.rt.status(&self.id)
    }

    pub fn pid(&self) -> i32 {
        self.state()["pid"].as_i64().unwrap_or(0) as i32
    }

    #[track_caller]
    pub fn wait_status(&self, want: &str) {
        self.rt.wait_status(&self.id, want, Duration::from_secs(20))
    }

    #[track_caller]
    pub fn kill(&self, sig: &str) -> Output {
        self.rt.run(&["kill", &self.id, sig])
    }

    /// `exec <id> <args...>` in the foreground.
    #[track_caller]
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["exec", self.id.as_str()];
        a.extend_from_slice(args);
        self.rt.run(&a)
    }

    /// `exec` with flags placed before the id.
    #[track_caller]
    pub fn exec_with(&self, flags: &[&str], args: &[&str]) -> Output {
        let mut a = vec!["exec"];
        a.extend_from_slice(flags);
        a.push(self.id.as_str());
        a.extend_from_slice(args);
        self.rt.run(&a)
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        let _ = run_with_timeout(self.rt.command(&["delete", "--force", &self.id]), TIMEOUT);
    }
}

/// Shell-quote for `sh -c` scripts built by tests.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// An OCI bundle: a busybox rootfs and a config.json (edited as JSON, written by `write`).
pub struct Bundle {
    dir: TempDir,
    path_s: String,
    pub config: Value,
}

/// Directories every rootfs gets.
const ROOTFS_DIRS: [&str; 10] = [
    "bin", "dev", "etc", "proc", "sys", "tmp", "root", "home", "run", "var",
];

impl Bundle {
    /// A bundle running `args` with a runc-`spec`-like config (no terminal, no cgroup mount,
    /// no device cgroup rules: tests of those add them).
    pub fn new(args: &[&str]) -> Bundle {
        let dir = TempDir::new("bundle");
        let path_s = dir.path().to_string_lossy().into_owned();
        let b = Bundle {
            dir,
            path_s,
            config: default_config(args),
        };
        b.build_rootfs();
        b
    }

    /// A bundle running `sh -c script`.
    pub fn sh(script: &str) -> Bundle {
        Bundle::new(&["sh", "-c", script])
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> &str {
        &self.path_s
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    fn build_rootfs(&self) {
        let r = self.rootfs();
        for d in ROOTFS_DIRS {
            fs::create_dir_all(r.join(d)).expect("rootfs dir");
        }
        fs::set_permissions(r.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
        fs::copy("/bin/busybox", r.join("bin/busybox"))
            .expect("copy /bin/busybox (install busybox-static)");
        for applet in busybox_applets() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", r.join("bin").join(applet));
            }
        }
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            r.join("etc/group"),
            "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
        )
        .unwrap();
    }

    /// Write config.json atomically (a runtime reading it concurrently sees old or new).
    pub fn write(&self) {
        let text = serde_json::to_vec_pretty(&self.config).expect("config JSON");
        let tmp = self.path().join(format!(".config.json.{}", unique("tmp")));
        fs::write(&tmp, text).expect("write config.json");
        fs::rename(&tmp, self.path().join("config.json")).expect("rename config.json");
    }

    /// Write config.json text verbatim (bad-input tests).
    pub fn write_raw(&self, text: &str) {
        fs::write(self.path().join("config.json"), text).expect("write config.json");
    }

    pub fn set_args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// `config.pointer_mut(path) = v`, creating objects on the way.
    pub fn set(&mut self, pointer: &str, v: Value) -> &mut Self {
        let mut cur = &mut self.config;
        for k in pointer.trim_start_matches('/').split('/') {
            if cur.is_null() {
                *cur = json!({});
            }
            cur = match cur {
                Value::Array(a) => &mut a[k.parse::<usize>().expect("array index")],
                other => &mut other[k],
            };
        }
        *cur = v;
        self
    }

    pub fn push_mount(&mut self, m: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(m);
        self
    }

    pub fn add_namespace(&mut self, typ: &str, path: Option<&str>) -> &mut Self {
        let nss = self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces");
        nss.retain(|n| n["type"] != typ);
        let mut n = json!({ "type": typ });
        if let Some(p) = path {
            n["path"] = json!(p);
        }
        nss.push(n);
        self
    }

    pub fn remove_namespace(&mut self, typ: &str) -> &mut Self {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .retain(|n| n["type"] != typ);
        self
    }

    /// A host directory bind-mounted read-write at `dest` (for results the container writes).
    pub fn bind_dir(&mut self, host: &Path, dest: &str) -> &mut Self {
        self.push_mount(json!({"destination": dest, "type": "bind", "source": host, "options": ["rbind", "rw"]}))
    }
}

/// The applet names of the host busybox (cached).
pub fn busybox_applets() -> &'static [String] {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let out = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("run /bin/busybox --list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
}

/// What `runc spec` writes, minus the terminal, the cgroup mount and the device deny rule.
pub fn default_config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "mantle-it",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Poll until `f` is true or the timeout passes; returns the last value of `f`.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait for a file a container writes, return its content.
#[track_caller]
pub fn wait_file(path: &Path, timeout: Duration) -> String {
    assert!(
        wait_for(timeout, || path.exists()),
        "{} never appeared",
        path.display()
    );
    // The writer may still be writing: wait for the content to settle.
    let mut last = String::new();
    for _ in 0..50 {
        let now = fs::read_to_string(path).unwrap_or_default();
        if !now.is_empty() && now == last {
            return now;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(10));
    }
    last
}

/// Is `pid` alive (not a zombie)?
pub fn pid_alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rfind(')').and_then(|i| stat[i + 2..].chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

/// Everything a container `id` of bundle `bundle` might leave behind on failure; empty when
/// clean. Checks the state dir under the runtime root, cgroup directories named after the id
/// (default `mantle` parents and the extra paths given), host mounts mentioning the bundle,
/// and live processes whose root is inside the bundle.
pub fn leftovers(rt: &Runtime, id: &str, bundle: &Path, cgroup_paths: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    if rt.root.path().join(id).exists() {
        found.push(format!("state dir {}", rt.root.path().join(id).display()));
    }
    for ctrl in fs::read_dir("/sys/fs/cgroup")
        .map(|r| r.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if let Ok(parents) = fs::read_dir(&ctrl) {
            for p in parents.flatten() {
                let name = p.file_name().to_string_lossy().into_owned();
                if name.starts_with("mantle") && p.path().join(id).exists() {
                    found.push(format!("cgroup {}", p.path().join(id).display()));
                }
            }
        }
        for extra in cgroup_paths {
            let p = ctrl.join(extra.trim_start_matches('/'));
            if p.exists() {
                found.push(format!("cgroup {}", p.display()));
            }
        }
    }
    let b = bundle.to_string_lossy();
    for l in fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        if l.contains(b.as_ref()) {
            found.push(format!("mount {l}"));
        }
    }
    for p in fs::read_dir("/proc")
        .map(|r| r.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(root) = fs::read_link(p.path().join("root")) {
            if root.starts_with(bundle) && pid_alive(pid) {
                found.push(format!("process {pid} rooted in the bundle"));
            }
        }
    }
    found
}

/// Read everything from a reader into a string (lossy).
pub fn read_all(mut r: impl Read) -> String {
    let mut v = Vec::new();
    let _ = r.read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

/// sha256-free content fingerprint: the file's bytes (tests compare whole binaries).
pub fn file_bytes(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The receiving end of `--console-socket`: a unix listener that accepts one connection and
/// takes the pty master from it (SCM_RIGHTS), as conmon and containerd's shim do.
pub struct ConsoleSocket {
    _dir: TempDir,
    path: PathBuf,
    rx: std::sync::mpsc::Receiver<Result<std::os::fd::OwnedFd, String>>,
}

impl ConsoleSocket {
    pub fn new() -> ConsoleSocket {
        let dir = TempDir::new("console");
        let path = dir.path().join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind console socket");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(receive_fd(&listener));
        });
        ConsoleSocket {
            _dir: dir,
            path,
            rx,
        }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }

    /// The pty master the runtime sent.
    #[track_caller]
    pub fn master(&self, timeout: Duration) -> fs::File {
        match self.rx.recv_timeout(timeout) {
            Ok(Ok(fd)) => fs::File::from(fd),
            Ok(Err(e)) => panic!("console socket: {e}"),
            Err(_) => panic!("no pty master received within {timeout:?}"),
        }
    }
}

impl Default for ConsoleSocket {
    fn default() -> Self {
        ConsoleSocket::new()
    }
}

fn receive_fd(listener: &std::os::unix::net::UnixListener) -> Result<std::os::fd::OwnedFd, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    let (conn, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    for c in msg.cmsgs().map_err(|e| format!("cmsgs: {e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel installed this fd in our table for us (SCM_RIGHTS).
                return Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err("message carried no fd".into())
}

/// Read a pty master until the slave side is closed (EIO) or `timeout` passes.
pub fn read_pty(master: fs::File, timeout: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut m = master;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match m.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    let _ = tx.send(String::from_utf8_lossy(&out).into_owned());
                }
            }
        }
        let _ = tx.send(format!("{}\u{0}", String::from_utf8_lossy(&out)));
    });
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(s) if s.ends_with('\u{0}') => return s.trim_end_matches('\u{0}').to_string(),
            Ok(s) => last = s,
            Err(_) => break,
        }
    }
    last
}

/// The probe program (tests/probe/probe.c) built static with the host's C compiler. The
/// binary is named after a hash of its source, so test processes share one build; it is
/// built under a temporary name and renamed into place, so a concurrent reader never sees a
/// partial file.
pub fn probe_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        use std::hash::{Hash, Hasher};
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("probe/probe.c");
        let mut h = std::collections::hash_map::DefaultHasher::new();
        fs::read(&src).expect("read probe.c").hash(&mut h);
        let out = std::env::temp_dir().join(format!("mantle-it-probe-{:016x}", h.finish()));
        if out.exists() {
            return out;
        }
        let tmp = std::env::temp_dir().join(unique("mantle-it-probe-build"));
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let res = Command::new(&cc)
            .args(["-static", "-O", "-o"])
            .arg(&tmp)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("run {cc}: {e}"));
        assert!(
            res.status.success(),
            "building the probe failed: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        fs::rename(&tmp, &out).expect("install the probe");
        out
    })
    .clone()
}

impl Bundle {
    /// Put the probe at /bin/probe in the rootfs.
    pub fn add_probe(&mut self) -> &mut Self {
        let dst = self.rootfs().join("bin/probe");
        fs::copy(probe_bin(), &dst).expect("copy probe");
        self
    }
}

/// Parse "name=value" lines (the probe's `sys` output).
pub fn kv_lines(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The podman default seccomp profile (containers-common), if installed.
pub fn podman_seccomp_profile() -> Option<Value> {
    let text = fs::read_to_string("/usr/share/containers/seccomp.json").ok()?;
    serde_json::from_str(&text).ok()
}

/// podman's default profile turned into an OCI `linux.seccomp` the way podman does it: keep
/// the rules whose `includes` match (capabilities `caps` of the process, architecture amd64)
/// and whose `excludes` do not, and list x86_64 with its sub-architectures.
pub fn podman_seccomp_for(caps: &[&str]) -> Option<Value> {
    let p = podman_seccomp_profile()?;
    let has_all = |v: &Value| {
        v.as_array()
            .is_none_or(|a| a.iter().all(|c| caps.contains(&c.as_str().unwrap_or(""))))
    };
    let has_any = |v: &Value| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|c| caps.contains(&c.as_str().unwrap_or(""))))
    };
    let arch_in = |v: &Value| v.as_array().is_some_and(|a| a.iter().any(|x| x == "amd64"));
    let mut rules = Vec::new();
    for r in p["syscalls"].as_array()? {
        let inc = &r["includes"];
        let exc = &r["excludes"];
        if !has_all(&inc["caps"])
            || (inc["arches"].as_array().is_some_and(|a| !a.is_empty()) && !arch_in(&inc["arches"]))
        {
            continue;
        }
        if has_any(&exc["caps"]) || arch_in(&exc["arches"]) {
            continue;
        }
        let mut rule = json!({"names": r["names"], "action": r["action"]});
        if let Some(e) = r.get("errnoRet").filter(|e| !e.is_null()) {
            rule["errnoRet"] = e.clone();
        }
        if let Some(a) = r
            .get("args")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
        {
            rule["args"] = json!(a);
        }
        rules.push(rule);
    }
    let mut out = json!({
        "defaultAction": p["defaultAction"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules
    });
    if let Some(e) = p.get("defaultErrnoRet").filter(|e| !e.is_null()) {
        out["defaultErrnoRet"] = e.clone();
    }
    Some(out)
}

/// The capabilities of the default bundle.
pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
