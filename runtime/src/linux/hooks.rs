//! OCI hooks: each runs with the container state JSON on stdin, its own args/env, and an
//! optional timeout (seconds). A failing createRuntime/createContainer/prestart/startContainer
//! hook fails the operation; poststart and poststop failures are logged only (runtime.md).

use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run_all(kind: &str, hooks: &[Hook], state_json: &[u8]) -> Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        crate::debug!("running {kind} hook {i}: {}", h.path().display());
        run(h, state_json)
            .map_err(|e| format!("{kind} hook #{i} ({}): {e}", h.path().display()))?;
    }
    Ok(())
}

pub fn run(h: &Hook, state_json: &[u8]) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    // Only stdio reaches a hook: fds our caller leaked to us (podman's, a shell's) and ours
    // must not, as with runc, whose hooks get exactly stdin, stdout and stderr.
    // SAFETY: between fork and exec the closure only makes one syscall, close_range, which
    // is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            if libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("exited with {status}"))
            };
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    #[test]
    fn hook_gets_state_on_stdin_and_failure_is_reported() {
        let out = std::env::temp_dir().join(format!("mantle-hook-{}", std::process::id()));
        let h = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                format!("cat > {}", out.display()),
            ])
            .build()
            .unwrap();
        run(&h, b"{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"{\"id\":\"x\"}");
        std::fs::remove_file(&out).unwrap();
        let bad = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".into(), "-c".into(), "exit 3".into()])
            .build()
            .unwrap();
        assert!(run(&bad, b"").unwrap_err().contains("exit status: 3"));
        let slow = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".into(), "-c".into(), "sleep 5".into()])
            .timeout(1i64)
            .build()
            .unwrap();
        assert!(run(&slow, b"").unwrap_err().contains("timed out"));
    }
}
