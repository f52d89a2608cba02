//! The last steps before execve, shared by the container init and `exec`: rlimits, user and
//! groups, umask, cwd, fd hygiene, executable lookup, and the exec itself.

use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType, Process};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub type Result<T> = std::result::Result<T, String>;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn set_rlimits(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        let r = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit reads a valid rlimit struct.
        if unsafe { libc::setrlimit(rlimit_resource(l.typ()), &r) } != 0 {
            return Err(format!(
                "setrlimit {:?} soft={} hard={}: {}",
                l.typ(),
                l.soft(),
                l.hard(),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Switch to process.user. Called with PR_SET_KEEPCAPS so capabilities survive the switch.
pub fn set_user(p: &Process) -> Result<()> {
    let u = p.user();
    let groups: Vec<Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is denied in a user namespace whose gid_map was written with setgroups=deny;
    // only ignore that case when no groups were requested.
    if let Err(e) = nix::unistd::setgroups(&groups) {
        if !groups.is_empty() || e != nix::Error::EPERM {
            return Err(format!("setgroups {groups:?}: {e}"));
        }
    }
    let gid = Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setgid {}: {e}", u.gid()))?;
    let uid = Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setuid {}: {e}", u.uid()))?;
    Ok(())
}

pub fn set_umask(p: &Process) {
    let mask = p.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
}

/// chdir to process.cwd, creating it like runc when missing is not our job (runc errors).
///
/// Threat (CVE-2024-21626): a leaked host directory fd plus cwd "/proc/self/fd/N" would put
/// the process outside its root. After chdir we ask the kernel where we are: a cwd outside
/// the process root reads back as "(unreachable)...", and we refuse it.
pub fn set_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).map_err(|e| {
        format!(
            "chdir to cwd ({}) set in config.json failed: {e}",
            cwd.display()
        )
    })?;
    check_cwd_inside(cwd)
}

/// After chdir: a cwd outside the process root reads back as "(unreachable)..." (or fails).
fn check_cwd_inside(cwd: &Path) -> Result<()> {
    let here = nix::unistd::getcwd().map_err(|e| format!("getcwd: {e}"))?;
    if !here.is_absolute() || here.starts_with("(unreachable)") {
        return Err(format!(
            "cwd {} resolves outside the container root",
            cwd.display()
        ));
    }
    Ok(())
}

/// runc's order: enter the cwd while still root, so a directory only root may enter (e.g.
/// /root, 0700) still works as the user's cwd. Returns false when that was refused
/// (EACCES/EPERM: e.g. a volume only the container user may enter); the caller then calls
/// `set_cwd` again after the user switch.
pub fn set_cwd_before_user(cwd: &Path) -> Result<bool> {
    match nix::unistd::chdir(cwd) {
        Ok(()) => check_cwd_inside(cwd).map(|()| true),
        Err(nix::Error::EACCES) | Err(nix::Error::EPERM) => Ok(false),
        Err(e) => Err(format!(
            "chdir to cwd ({}) set in config.json failed: {e}",
            cwd.display()
        )),
    }
}

/// Mark every fd from `first` up CLOEXEC so nothing of the runtime reaches the workload.
pub fn cloexec_from(first: u32) -> Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc != 0 {
        return Err(format!("close_range: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Like runc: without HOME in the environment, use the user's home from the container's
/// /etc/passwd (read after the root switch), or "/".
pub fn default_home(env: &mut Vec<String>, uid: u32) {
    if env.iter().any(|kv| kv.starts_with("HOME=")) {
        return;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let home = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid))
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    env.push(format!("HOME={home}"));
}

pub fn env_path(env: &[String]) -> String {
    env.iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string()
}

/// Find the executable like execvp would, with runc's error words (podman maps
/// "executable file not found in $PATH" and "no such file or directory" to 127 and
/// "permission denied" to 126).
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "exec: {arg0:?}: stat {arg0}: no such file or directory"
            )),
            Err(e) => Err(format!("exec: {arg0:?}: {}", lower_err(&e))),
            Ok(m) if m.is_dir() => {
                Err(format!("exec: {arg0:?}: is a directory: permission denied"))
            }
            Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                Err(format!("exec: {arg0:?}: permission denied"))
            }
            Ok(_) => Ok(p),
        };
    }
    if arg0.is_empty() {
        return Err("exec: \"\": executable file not found in $PATH".into());
    }
    let mut denied = false;
    for dir in env_path(env).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&p) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(p);
            }
            denied = true;
        }
    }
    if denied {
        return Err(format!("exec: {arg0:?}: permission denied"));
    }
    Err(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    ))
}

fn lower_err(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::ENOENT) => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

/// execve; returns only on failure.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> String {
    let to_c = |s: &str| CString::new(s).unwrap_or_default();
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let cargs: Vec<CString> = args.iter().map(|a| to_c(a)).collect();
    let cenv: Vec<CString> = env.iter().map(|e| to_c(e)).collect();
    match nix::unistd::execve(&cpath, &cargs, &cenv) {
        Err(e) => {
            let words = match e {
                nix::Error::EACCES => "permission denied".to_string(),
                nix::Error::ENOENT => "no such file or directory".to_string(),
                other => other.desc().to_lowercase(),
            };
            format!("exec {}: {words}", path.display())
        }
    }
}

pub fn set_oom_score_adj(v: i32) -> Result<()> {
    std::fs::write("/proc/self/oom_score_adj", v.to_string())
        .map_err(|e| format!("set oomScoreAdj {v}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_reports_runc_wording() {
        let env = vec!["PATH=/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).is_ok());
        let e = find_executable("definitely-not-a-program", &env).unwrap_err();
        assert!(e.contains("executable file not found in $PATH"), "{e}");
        let e = find_executable("/nonexistent/x", &env).unwrap_err();
        assert!(e.contains("no such file or directory"), "{e}");
        let f = std::env::temp_dir().join(format!("mantle-noexec-{}", std::process::id()));
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = find_executable(f.to_str().unwrap(), &env).unwrap_err();
        std::fs::remove_file(&f).unwrap();
        assert!(e.contains("permission denied"), "{e}");
    }
}

/// process.ioPriority through ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level).
pub fn set_io_priority(p: Option<&oci_spec::runtime::LinuxIOPriority>) -> Result<()> {
    use oci_spec::runtime::IOPriorityClass;
    let Some(p) = p else { return Ok(()) };
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let value = (class << 13) | (p.priority() & 0xff);
    // SAFETY: ioprio_set takes three integers.
    if unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            1, /* IOPRIO_WHO_PROCESS */
            0,
            value,
        )
    } != 0
    {
        return Err(format!(
            "set ioPriority: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The kernel's struct sched_attr (sched_setattr(2)).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// process.scheduler through sched_setattr.
pub fn set_scheduler(s: Option<&oci_spec::runtime::Scheduler>) -> Result<()> {
    use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    let Some(s) = s else { return Ok(()) };
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    // SAFETY: sched_setattr reads a sched_attr whose size field says how much to read.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
        return Err(format!(
            "set scheduler {:?}: {}",
            s.policy(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// linux.personality (only the execution domain; flags are not defined by the spec yet).
pub fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<()> {
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    let persona = match p.domain() {
        D::PerLinux => 0x0000,
        D::PerLinux32 => 0x0008,
    };
    // SAFETY: personality takes one integer.
    if unsafe { libc::personality(persona) } == -1 {
        return Err(format!(
            "set personality: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
