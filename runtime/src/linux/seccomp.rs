//! linux.seccomp: the OCI profile compiled to a BPF filter with libseccomp.
//!
//! Why libseccomp and not seccompiler (the design card's first choice): OCI profiles are
//! multi-architecture (podman's default lists x86_64, x86 and x32), use SCMP_ACT_NOTIFY with a
//! listener, SCMP_ACT_TRACE/LOG/KILL_THREAD, and may put several conditions on the same
//! argument index; seccompiler targets one architecture and has no notify action. Using the
//! library runc uses also gives identical filters for the same profile, which is what the
//! differential test against runc checks.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;

pub type Result<T> = std::result::Result<T, String>;

fn action(a: LinuxSeccompAction, errno_ret: Option<u32>) -> ScmpAction {
    let errno = errno_ret.map(|e| e as i32).unwrap_or(libc::EPERM);
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno as u16),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    }
}

fn op(o: LinuxSeccompOperator, value_two: u64) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // OCI: `value` is the mask, `valueTwo` the value compared after masking.
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two),
    }
}

/// True when the profile needs a notification listener fd (SCMP_ACT_NOTIFY somewhere).
pub fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .iter()
            .flatten()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Build the filter; nothing is loaded. Done in the parent before fork so a bad profile
/// fails `create` cleanly.
pub fn compile(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| format!("seccomp: {e}"))?;
    // no_new_privs is applied by the runtime where the config asks for it, not by libseccomp.
    ctx.set_ctl_nnp(false)
        .map_err(|e| format!("seccomp: {e}"))?;
    for a in s.architectures().iter().flatten() {
        let name = format!("{a:?}");
        let arch = ScmpArch::from_str(&arch_name(&name))
            .map_err(|_| format!("linux.seccomp.architectures: unknown {name}"))?;
        ctx.add_arch(arch)
            .map_err(|e| format!("seccomp: add arch {name}: {e}"))?;
    }
    for f in s.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => ctx.set_ctl_waitkill(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
        }
        .map_err(|e| format!("linux.seccomp.flags {f:?}: {e}"))?;
    }
    if uses_notify(s) && s.listener_path().is_none() {
        return Err("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into());
    }
    for rule in s.syscalls().iter().flatten() {
        add_rule(&mut ctx, rule, default)?;
    }
    Ok(ctx)
}

/// oci-spec prints arch variants as e.g. `ScmpArchX86_64`; libseccomp wants SCMP_ARCH_X86_64.
fn arch_name(debug: &str) -> String {
    let rest = debug.trim_start_matches("ScmpArch");
    format!("SCMP_ARCH_{}", rest.to_uppercase())
}

fn add_rule(ctx: &mut ScmpFilterContext, rule: &LinuxSyscall, default: ScmpAction) -> Result<()> {
    let act = action(rule.action(), rule.errno_ret());
    // libseccomp refuses rules equal to the default; they are no-ops anyway.
    if act == default {
        return Ok(());
    }
    let args = rule.args().clone().unwrap_or_default();
    let conds: Vec<ScmpArgCompare> = args
        .iter()
        .map(|a| {
            ScmpArgCompare::new(
                a.index() as u32,
                op(a.op(), a.value()),
                if a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
                    a.value_two().unwrap_or(0)
                } else {
                    a.value()
                },
            )
        })
        .collect();
    // Several conditions on one argument cannot be ANDed by libseccomp; like runc, such a
    // rule becomes one rule per condition (OR).
    let mut idx: Vec<usize> = args.iter().map(|a| a.index()).collect();
    idx.sort_unstable();
    let repeated = idx.windows(2).any(|w| w[0] == w[1]);
    for name in rule.names() {
        // Syscalls unknown to this libseccomp (newer than it, or other arches) are skipped, as
        // runc does: the profile stays usable across kernels.
        let Ok(sc) = ScmpSyscall::from_name(name) else {
            crate::debug!("seccomp: unknown syscall {name:?} skipped");
            continue;
        };
        let res = if repeated {
            conds.iter().try_for_each(|c| {
                ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                    .map(|_| ())
            })
        } else {
            ctx.add_rule_conditional(act, sc, &conds).map(|_| ())
        };
        res.map_err(|e| format!("linux.seccomp: rule for {name}: {e}"))?;
    }
    Ok(())
}

/// Load the filter into the calling thread. Returns the notification fd when the profile
/// uses SCMP_ACT_NOTIFY.
pub fn load(ctx: &ScmpFilterContext, notify: bool) -> Result<Option<OwnedFd>> {
    ctx.load()
        .map_err(|e| format!("load seccomp filter: {e}"))?;
    if !notify {
        return Ok(None);
    }
    let fd = ctx
        .get_notify_fd()
        .map_err(|e| format!("seccomp notify fd: {e}"))?;
    // SAFETY: libseccomp hands us the listener fd created by the load; we take ownership.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Everything a process needs for linux.seccomp, done by the runtime before forking: the
/// compiled filter and, for notify profiles, the connection to the agent.
pub fn prepare(
    profile: Option<&LinuxSeccomp>,
) -> Result<(Option<ScmpFilterContext>, Option<OwnedFd>)> {
    match profile {
        Some(s) => Ok((Some(compile(s)?), connect_agent(s)?)),
        None => Ok((None, None)),
    }
}

/// Connect to the seccomp agent at listenerPath. Done by the runtime before forking: the
/// path is a host path, unreachable once the container has pivoted.
pub fn connect_agent(profile: &LinuxSeccomp) -> Result<Option<OwnedFd>> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let Some(path) = profile
        .listener_path()
        .as_ref()
        .filter(|_| uses_notify(profile))
    else {
        return Ok(None);
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("seccomp agent socket: {e}"))?;
    let addr = UnixAddr::new(path).map_err(|e| format!("seccomp listenerPath: {e}"))?;
    connect(sock.as_raw_fd(), &addr)
        .map_err(|e| format!("connect seccomp agent {}: {e}", path.display()))?;
    Ok(Some(sock))
}

/// Send the listener fd to the agent with the container process state, as the OCI spec
/// describes: a ContainerProcessState JSON in the message, the fd in SCM_RIGHTS.
pub fn send_to_agent(
    sock: &OwnedFd,
    profile: &LinuxSeccomp,
    state_json: &[u8],
    fd: &OwnedFd,
) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let state: serde_json::Value =
        serde_json::from_slice(state_json).unwrap_or(serde_json::json!({}));
    let msg = serde_json::json!({
        "ociVersion": state.get("ociVersion").cloned().unwrap_or_else(|| "1.2.0".into()),
        "fds": ["seccompFd"],
        "pid": state.get("pid").cloned().unwrap_or(0.into()),
        "metadata": profile.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    });
    let body = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(&body)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("send to seccomp agent: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn compiles_multi_arch_profile_with_masked_and_repeated_args() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[
                  {"names":["read","write","nonexistent_syscall_xyz"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
                     {"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                  {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[
                     {"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                  {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}
                ]}"#,
        );
        let ctx = compile(&p).unwrap();
        let path = std::env::temp_dir().join(format!("mantle-bpf-{}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        ctx.export_bpf(&f).unwrap();
        // Three arches, a dozen rules: well over a handful of 8-byte instructions.
        assert!(std::fs::metadata(&path).unwrap().len() > 8 * 20);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn notify_without_listener_is_an_error() {
        let p = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(compile(&p).unwrap_err().contains("listenerPath"));
    }

    #[test]
    fn arch_names_map_to_libseccomp() {
        assert_eq!(arch_name("ScmpArchX86_64"), "SCMP_ARCH_X86_64");
        assert_eq!(arch_name("ScmpArchX32"), "SCMP_ARCH_X32");
    }
}
