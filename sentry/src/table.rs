//! The syscall table: one row per x86_64 syscall, each with what sentry mode does with it and
//! why. The BPF filter is generated from these rows (`bpf::compile`) and the emulation code
//! dispatches on `Emu`, so the filter, the emulation and the exported listing cannot disagree.
//!
//! Deny by default: a syscall number not in `syscalls::X86_64` gets ENOSYS from the filter, and
//! a known syscall without a policy line is a bug caught by the unit tests.

use std::fmt;
use std::sync::OnceLock;

use crate::syscalls::X86_64;

/// What the filter does with a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// SECCOMP_RET_ALLOW: runs natively (data path on fds the workload already holds).
    Pass,
    /// Runs natively when `cond` holds on the register arguments, else fails with `errno`.
    /// Conditions look at registers only, never memory, so there is nothing to race.
    PassIf { cond: Cond, errno: i32 },
    /// SECCOMP_RET_USER_NOTIF: the sentry handles it.
    Emulate(Emu),
    /// SECCOMP_RET_ERRNO.
    Deny(i32),
    /// SECCOMP_RET_KILL_PROCESS.
    Kill,
}

/// A condition on register arguments, checked in BPF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    /// `args[arg] & mask == 0`.
    MaskClear { arg: u8, mask: u64 },
    /// `args[arg]` equals one of `values` (all 64 bits compared).
    OneOf { arg: u8, values: &'static [u64] },
    /// The low 32 bits of `args[arg]` equal none of `values` (for `unsigned int` arguments,
    /// whose upper half the kernel ignores: comparing 64 bits would be bypassable).
    Low32NoneOf { arg: u8, values: &'static [u32] },
}

/// Emulated syscalls. The emulation code matches on this exhaustively.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emu {
    Open,
    OpenAt,
    OpenAt2,
    Creat,
    Stat,
    Lstat,
    NewFstatAt,
    Statx,
    Access,
    FAccessAt,
    FAccessAt2,
    Readlink,
    ReadlinkAt,
    Mkdir,
    MkdirAt,
    Mknod,
    MknodAt,
    Unlink,
    UnlinkAt,
    Rmdir,
    Rename,
    RenameAt,
    RenameAt2,
    Link,
    LinkAt,
    Symlink,
    SymlinkAt,
    Chmod,
    FchmodAt,
    FchmodAt2,
    Chown,
    Lchown,
    FchownAt,
    Utime,
    Utimes,
    FutimesAt,
    UtimensAt,
    Truncate,
    Statfs,
    GetXattr,
    LGetXattr,
    SetXattr,
    LSetXattr,
    ListXattr,
    LListXattr,
    RemoveXattr,
    LRemoveXattr,
    Getcwd,
    /// The following four are answered with CONTINUE after checks that depend on registers
    /// and on the process root only; see `emulate::exec` for the argument.
    Chdir,
    Fchdir,
    Execve,
    ExecveAt,
    InotifyAddWatch,
    Uname,
    Sysinfo,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub nr: i64,
    pub name: &'static str,
    pub action: Action,
    pub reason: &'static str,
}

const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | 0x80/* CLONE_NEWTIME */) as u64;

/// personality(2) values that only query or select standard Linux behaviour.
const PERSONALITY_OK: &[u64] = &[0, 0x0008, 0x0002_0000, 0x0002_0008, 0xffff_ffff];

use Action::*;
use Emu as E;

/// The policy, grouped by reason. Every x86_64 syscall appears exactly once.
const POLICY: &[(&[&str], Action, &str)] = &[
    (&["read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
       "preadv2", "pwritev2", "lseek", "sendfile", "splice", "tee", "vmsplice",
       "copy_file_range", "readahead", "fadvise64", "fsync", "fdatasync", "syncfs",
       "sync_file_range", "ftruncate", "fallocate", "flock", "fcntl", "close",
       "close_range", "dup", "dup2", "dup3", "getdents", "getdents64", "fstat", "fstatfs",
       "fchmod", "fchown", "fgetxattr", "fsetxattr", "flistxattr", "fremovexattr", "sync"],
     Pass, "data path on an fd the workload already holds; files were opened by the gofer beneath the root"),
    (&["mmap", "mprotect", "munmap", "brk", "mremap", "msync", "mincore", "madvise", "mlock",
       "munlock", "mlockall", "munlockall", "mlock2", "pkey_mprotect", "pkey_alloc",
       "pkey_free", "membarrier", "mbind", "set_mempolicy", "get_mempolicy", "mseal",
       "map_shadow_stack", "cachestat", "memfd_create", "memfd_secret"],
     Pass, "memory management of the workload's own address space"),
    (&["poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
       "epoll_wait", "epoll_pwait", "epoll_pwait2", "futex", "futex_waitv", "futex_wake",
       "futex_wait", "futex_requeue", "set_robust_list", "get_robust_list", "eventfd",
       "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime", "signalfd",
       "signalfd4", "pipe", "pipe2", "inotify_init", "inotify_init1", "inotify_rm_watch",
       "io_setup", "io_destroy", "io_getevents", "io_submit", "io_cancel", "io_pgetevents"],
     Pass, "waiting and event fds on the workload's own objects"),
    (&["socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "sendto",
       "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "getsockname",
       "getpeername", "setsockopt", "getsockopt"],
     Pass, "networking is namespaced; unix socket paths resolve in the process root, which is the container root"),
    (&["rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
       "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "pause",
       "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal"],
     Pass, "signals; the pid namespace bounds who can be signalled"),
    (&["nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time",
       "getitimer", "setitimer", "alarm", "timer_create", "timer_settime", "timer_gettime",
       "timer_getoverrun", "timer_delete", "times", "getrusage", "getrandom", "getcpu",
       "sched_yield", "restart_syscall"],
     Pass, "time, randomness and scheduling hints"),
    (&["fork", "vfork", "exit", "exit_group", "wait4", "waitid", "set_tid_address",
       "arch_prctl", "rseq", "prctl", "getpid", "gettid", "getppid", "getpgrp", "getpgid",
       "setpgid", "getsid", "setsid", "getrlimit", "setrlimit", "prlimit64", "umask",
       "getpriority", "setpriority", "ioprio_get", "ioprio_set", "sched_setparam",
       "sched_getparam", "sched_setscheduler", "sched_getscheduler",
       "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
       "sched_setaffinity", "sched_getaffinity", "sched_setattr", "sched_getattr"],
     Pass, "process lifecycle and attributes; children inherit the filter"),
    (&["getuid", "getgid", "geteuid", "getegid", "getresuid", "getresgid", "getgroups",
       "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
       "setfsgid", "setgroups", "capget", "capset"],
     Pass, "credentials, bounded by the user namespace and capability sets set up by the runtime"),
    (&["shmget", "shmat", "shmctl", "shmdt", "semget", "semop", "semctl", "semtimedop",
       "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
       "mq_timedreceive", "mq_notify", "mq_getsetattr"],
     Pass, "System V and POSIX IPC, isolated by the IPC namespace"),
    (&["landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"],
     Pass, "self-restriction only ever removes access"),
    (&["ioctl"],
     PassIf { cond: Cond::Low32NoneOf { arg: 1, values: &[0x5412 /* TIOCSTI */, 0x541c /* TIOCLINUX */] }, errno: libc::EPERM },
     "device control on held fds, except faking terminal input (TIOCSTI) and console control (TIOCLINUX)"),
    (&["clone"],
     PassIf { cond: Cond::MaskClear { arg: 0, mask: CLONE_NS_FLAGS }, errno: libc::EPERM },
     "threads and processes yes, new namespaces no"),
    (&["personality"],
     PassIf { cond: Cond::OneOf { arg: 0, values: PERSONALITY_OK }, errno: libc::EPERM },
     "query or standard Linux personality only"),
    (&["open"], Emulate(E::Open), "path: the gofer opens beneath the root, the fd is injected"),
    (&["openat"], Emulate(E::OpenAt), "path: the gofer opens beneath the root, the fd is injected"),
    (&["openat2"], Emulate(E::OpenAt2), "path: the gofer opens beneath the root, the fd is injected"),
    (&["creat"], Emulate(E::Creat), "path: the gofer creates beneath the root, the fd is injected"),
    (&["stat"], Emulate(E::Stat), "path: stat through the gofer"),
    (&["lstat"], Emulate(E::Lstat), "path: stat through the gofer"),
    (&["newfstatat"], Emulate(E::NewFstatAt), "path: stat through the gofer (fstat of an fd is answered locally)"),
    (&["statx"], Emulate(E::Statx), "path: stat through the gofer (fstat of an fd is answered locally)"),
    (&["access"], Emulate(E::Access), "path: permission check on the gofer's stat"),
    (&["faccessat"], Emulate(E::FAccessAt), "path: permission check on the gofer's stat"),
    (&["faccessat2"], Emulate(E::FAccessAt2), "path: permission check on the gofer's stat"),
    (&["readlink"], Emulate(E::Readlink), "path: readlink through the gofer"),
    (&["readlinkat"], Emulate(E::ReadlinkAt), "path: readlink through the gofer"),
    (&["mkdir"], Emulate(E::Mkdir), "path: created by the gofer"),
    (&["mkdirat"], Emulate(E::MkdirAt), "path: created by the gofer"),
    (&["mknod"], Emulate(E::Mknod), "path: created by the gofer (devices refused there)"),
    (&["mknodat"], Emulate(E::MknodAt), "path: created by the gofer (devices refused there)"),
    (&["unlink"], Emulate(E::Unlink), "path: removed by the gofer"),
    (&["unlinkat"], Emulate(E::UnlinkAt), "path: removed by the gofer"),
    (&["rmdir"], Emulate(E::Rmdir), "path: removed by the gofer"),
    (&["rename"], Emulate(E::Rename), "path: renamed by the gofer"),
    (&["renameat"], Emulate(E::RenameAt), "path: renamed by the gofer"),
    (&["renameat2"], Emulate(E::RenameAt2), "path: renamed by the gofer"),
    (&["link"], Emulate(E::Link), "path: linked by the gofer"),
    (&["linkat"], Emulate(E::LinkAt), "path: linked by the gofer"),
    (&["symlink"], Emulate(E::Symlink), "path: created by the gofer"),
    (&["symlinkat"], Emulate(E::SymlinkAt), "path: created by the gofer"),
    (&["chmod"], Emulate(E::Chmod), "path: setattr through the gofer"),
    (&["fchmodat"], Emulate(E::FchmodAt), "path: setattr through the gofer"),
    (&["fchmodat2"], Emulate(E::FchmodAt2), "path: setattr through the gofer"),
    (&["chown"], Emulate(E::Chown), "path: setattr through the gofer"),
    (&["lchown"], Emulate(E::Lchown), "path: setattr through the gofer"),
    (&["fchownat"], Emulate(E::FchownAt), "path: setattr through the gofer"),
    (&["utime"], Emulate(E::Utime), "path: setattr through the gofer"),
    (&["utimes"], Emulate(E::Utimes), "path: setattr through the gofer"),
    (&["futimesat"], Emulate(E::FutimesAt), "path: setattr through the gofer"),
    (&["utimensat"], Emulate(E::UtimensAt), "path: setattr through the gofer (futimens of an fd continues)"),
    (&["truncate"], Emulate(E::Truncate), "path: setattr through the gofer"),
    (&["statfs"], Emulate(E::Statfs), "path: statfs through the gofer"),
    (&["getxattr"], Emulate(E::GetXattr), "path: xattr through the gofer"),
    (&["lgetxattr"], Emulate(E::LGetXattr), "path: xattr through the gofer"),
    (&["setxattr"], Emulate(E::SetXattr), "path: xattr through the gofer"),
    (&["lsetxattr"], Emulate(E::LSetXattr), "path: xattr through the gofer"),
    (&["listxattr"], Emulate(E::ListXattr), "path: xattr through the gofer"),
    (&["llistxattr"], Emulate(E::LListXattr), "path: xattr through the gofer"),
    (&["removexattr"], Emulate(E::RemoveXattr), "path: xattr through the gofer"),
    (&["lremovexattr"], Emulate(E::LRemoveXattr), "path: xattr through the gofer"),
    (&["getcwd"], Emulate(E::Getcwd), "answered from the workload's cwd, translated to the container view"),
    (&["chdir"], Emulate(E::Chdir), "checked, then continued: resolves in the process root (the container root)"),
    (&["fchdir"], Emulate(E::Fchdir), "continued: an fd the workload holds, in the container root"),
    (&["execve"], Emulate(E::Execve), "path checked through the gofer, exec continued in the container root"),
    (&["execveat"], Emulate(E::ExecveAt), "path checked through the gofer, exec continued in the container root"),
    (&["inotify_add_watch"], Emulate(E::InotifyAddWatch), "checked through the gofer, continued in the container root"),
    (&["uname"], Emulate(E::Uname), "container hostname, no host kernel build string"),
    (&["sysinfo"], Emulate(E::Sysinfo), "container uptime and process count instead of the host's"),
    (&["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
       "process_madvise", "process_mrelease"],
     Deny(libc::EPERM), "reaches into other processes; the sentry relies on being the only tracer"),
    (&["bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
       "io_uring_register", "seccomp", "lsm_set_self_attr"],
     Deny(libc::EPERM), "large kernel attack surface, or a way around the filter (io_uring does file I/O by path without syscalls; nested listeners)"),
    (&["keyctl", "add_key", "request_key"], Deny(libc::EPERM), "kernel keyrings are not namespaced"),
    (&["open_by_handle_at", "name_to_handle_at"], Deny(libc::EPERM), "file handles bypass path resolution beneath the root"),
    (&["kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
       "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "iopl", "ioperm",
       "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog", "vhangup",
       "sethostname", "setdomainname", "modify_ldt", "migrate_pages", "move_pages",
       "set_mempolicy_home_node", "fanotify_init", "fanotify_mark"],
     Deny(libc::EPERM), "host-wide state a container must not change or observe"),
    (&["mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "open_tree_attr",
       "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "statmount", "listmount",
       "unshare", "setns"],
     Deny(libc::EPERM), "changes or reveals the mount table or namespaces the sentry's view depends on"),
    (&["clone3"], Deny(libc::ENOSYS), "flags live in memory and cannot be checked in BPF; libc falls back to clone"),
    (&["setxattrat", "getxattrat", "listxattrat", "removexattrat", "file_getattr",
       "file_setattr"],
     Deny(libc::ENOSYS), "path-taking calls not emulated yet; callers fall back to the older calls"),
    (&["lsm_get_self_attr", "lsm_list_modules"], Deny(libc::ENOSYS), "host LSM details"),
    (&["uselib", "ustat", "sysfs", "_sysctl", "create_module", "get_kernel_syms",
       "query_module", "nfsservctl", "getpmsg", "putpmsg", "afs_syscall", "tuxcall",
       "security", "vserver", "lookup_dcookie", "epoll_ctl_old", "epoll_wait_old",
       "set_thread_area", "get_thread_area", "remap_file_pages"],
     Deny(libc::ENOSYS), "obsolete, unimplemented or 32-bit only"),
    (&["uretprobe"], Deny(libc::ENOSYS),
     "only valid from the uprobe trampoline; the kernel exempts it from seccomp since 6.11 (SIGILL elsewhere)"),
];

/// The table, one row per x86_64 syscall, sorted by number.
pub fn table() -> &'static [Row] {
    static TABLE: OnceLock<Vec<Row>> = OnceLock::new();
    TABLE.get_or_init(build)
}

fn build() -> Vec<Row> {
    X86_64
        .iter()
        .map(|&(nr, name)| {
            let found = POLICY.iter().find(|(names, _, _)| names.contains(&name));
            let (action, reason) = match found {
                Some((_, a, r)) => (*a, *r),
                // Unreachable while the unit test `every_syscall_has_one_policy` passes.
                None => (Deny(libc::ENOSYS), "no policy: denied by default"),
            };
            Row {
                nr,
                name,
                action,
                reason,
            }
        })
        .collect()
}

/// The row for a syscall number.
pub fn lookup(nr: i64) -> Option<&'static Row> {
    let t = table();
    t.binary_search_by_key(&nr, |r| r.nr).ok().map(|i| &t[i])
}

/// Name of a syscall number ("syscall_N" when unknown).
pub fn name(nr: i64) -> String {
    lookup(nr)
        .map(|r| r.name.to_string())
        .unwrap_or_else(|| format!("syscall_{nr}"))
}

/// How many rows run natively (Pass and PassIf): the security figure, smaller is tighter.
pub fn pass_count() -> usize {
    table()
        .iter()
        .filter(|r| matches!(r.action, Pass | PassIf { .. }))
        .count()
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pass => write!(f, "pass"),
            PassIf { errno, .. } => write!(f, "pass-if-args (else {})", errno_name(*errno)),
            Emulate(_) => write!(f, "emulate"),
            Deny(e) => write!(f, "deny {}", errno_name(*e)),
            Kill => write!(f, "kill"),
        }
    }
}

pub(crate) fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOSYS => "ENOSYS",
        libc::EACCES => "EACCES",
        libc::ENOENT => "ENOENT",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::EBADF => "EBADF",
        libc::ENOTDIR => "ENOTDIR",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::EIO => "EIO",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ELOOP => "ELOOP",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::EISDIR => "EISDIR",
        libc::ENOTSUP => "EOPNOTSUPP",
        libc::ENODATA => "ENODATA",
        libc::ERANGE => "ERANGE",
        libc::EROFS => "EROFS",
        libc::ECHILD => "ECHILD",
        _ => "E?",
    }
}

/// The table as text, one row per line (`mantle syscalls`): number, name, action, reason.
pub fn render() -> String {
    let mut s = String::new();
    for r in table() {
        s.push_str(&format!(
            "{:>3}  {:<24} {:<28} {}\n",
            r.nr,
            r.name,
            r.action.to_string(),
            r.reason
        ));
    }
    s.push_str(&format!(
        "# {} syscalls, {} pass natively, everything else emulated or denied; \
         unknown numbers ENOSYS, x32 and i386 calls kill the process\n",
        table().len(),
        pass_count()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_syscall_has_one_policy() {
        for &(_, name) in X86_64 {
            let n = POLICY
                .iter()
                .filter(|(ns, _, _)| ns.contains(&name))
                .count();
            assert_eq!(n, 1, "{name} appears in {n} policy lines");
        }
        for (names, _, _) in POLICY {
            for n in names.iter() {
                assert!(
                    X86_64.iter().any(|(_, k)| k == n),
                    "policy names unknown syscall {n}"
                );
            }
        }
    }

    #[test]
    fn numbers_are_sorted_and_unique() {
        assert!(X86_64.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(lookup(0).unwrap().name, "read");
        assert_eq!(lookup(257).unwrap().name, "openat");
        assert_eq!(lookup(437).unwrap().name, "openat2");
        assert!(lookup(400).is_none());
    }

    #[test]
    fn dangerous_calls_are_denied() {
        for n in [
            "ptrace",
            "bpf",
            "mount",
            "unshare",
            "setns",
            "seccomp",
            "io_uring_setup",
            "open_by_handle_at",
            "kexec_load",
            "init_module",
            "userfaultfd",
            "keyctl",
        ] {
            let r = table().iter().find(|r| r.name == n).unwrap();
            assert!(matches!(r.action, Deny(_) | Kill), "{n} is {:?}", r.action);
        }
    }

    #[test]
    fn path_calls_are_emulated() {
        for n in [
            "open",
            "openat",
            "openat2",
            "stat",
            "lstat",
            "newfstatat",
            "statx",
            "execve",
            "rename",
            "unlinkat",
            "readlinkat",
            "symlink",
            "link",
            "chdir",
        ] {
            let r = table().iter().find(|r| r.name == n).unwrap();
            assert!(matches!(r.action, Emulate(_)), "{n} is {:?}", r.action);
        }
    }

    #[test]
    fn render_lists_every_row() {
        let s = render();
        assert_eq!(s.lines().count(), table().len() + 1);
        assert!(pass_count() > 100 && pass_count() < table().len());
    }
}
