//! Calls that would show host identity: uname and sysinfo.

use super::structs::bytes_of;
use super::{ok, Call, Res};

fn field(dst: &mut [libc::c_char; 65], s: &[u8]) {
    for (d, b) in dst.iter_mut().zip(s.iter().take(64)) {
        *d = *b as libc::c_char;
    }
}

/// uname: the container's hostname; the host's release (programs check kernel features by it)
/// but not its build string, and no domain name.
pub(crate) fn uname(c: &mut Call<'_>) -> Res {
    // The host release does not change while we run: ask once.
    static RELEASE: std::sync::OnceLock<[libc::c_char; 65]> = std::sync::OnceLock::new();
    let release = RELEASE.get_or_init(|| {
        // SAFETY: utsname is plain chars; zeroed is valid and NUL-terminates every field.
        let mut host: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `host` is writable for the call.
        unsafe { libc::uname(&mut host) };
        host.release
    });
    // SAFETY: as above.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    field(&mut u.sysname, b"Linux");
    field(&mut u.nodename, c.s.cfg.hostname.as_bytes());
    u.release = *release;
    field(&mut u.version, b"#1 SMP mantle");
    field(&mut u.machine, b"x86_64");
    // The runtime puts the sentry in the workload's UTS namespace: its domainname is the
    // container's (setdomainname is denied to the workload, so it cannot change under us).
    // SAFETY: as above.
    let mut own: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `own` is writable for the call.
    unsafe { libc::uname(&mut own) };
    u.domainname = own.domainname;
    c.write(c.arg(0), bytes_of(&u))?;
    ok(0)
}

/// sysinfo: uptime counts from the sentry's start and the load averages are zero (the host's
/// would reveal its activity); memory and swap figures are the host's, which programs use to
/// size caches (the cgroup limit is what really binds).
pub(crate) fn sysinfo(c: &mut Call<'_>) -> Res {
    // SAFETY: sysinfo is plain integers; zeroed is valid.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `si` is writable for the call.
    unsafe { libc::sysinfo(&mut si) };
    si.uptime = c.s.started.elapsed().as_secs() as _;
    si.loads = [0; 3];
    si.procs = 1;
    c.write(c.arg(0), bytes_of(&si))?;
    ok(0)
}
