//! config-linux.md#devices, runtime-linux.md default devices and /dev symlinks, and the device
//! cgroup allow list (config-linux.md#allowed-device-list).

use super::util::{expect_errno, expect_ok};
use crate::suite::{Ctx, Test, TestResult};
use anyhow::{ensure, Context};
use serde_json::{json, Value};

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "devices.char_device_created",
            clause: "config-linux.md#devices: devices (array of objects, OPTIONAL) lists devices that MUST be available in the container (type c, major, minor, fileMode, uid, gid)",
            run: char_device,
        },
        Test {
            name: "devices.block_and_fifo",
            clause: "config-linux.md#devices: type (string, REQUIRED) type of device: c, b, u or p",
            run: block_and_fifo,
        },
        Test {
            name: "devices.existing_file_mismatch_error",
            clause: "config-linux.md#devices: If a file already exists at path that does not match the requested device, the runtime MUST generate an error",
            run: existing_mismatch,
        },
        Test {
            name: "devices.default_devices",
            clause: "config-linux.md#default-devices: the runtime MUST supply /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom, /dev/tty, /dev/ptmx",
            run: default_devices,
        },
        Test {
            name: "devices.default_devices_usable",
            clause: "config-linux.md#default-devices: default devices are usable (open/read/write) even with a deny-all device cgroup",
            run: default_usable,
        },
        Test {
            name: "devices.dev_symlinks",
            clause: "runtime-linux.md#dev-symbolic-links: /dev/fd -> /proc/self/fd, /dev/stdin -> /proc/self/fd/0, /dev/stdout -> /proc/self/fd/1, /dev/stderr -> /proc/self/fd/2",
            run: dev_symlinks,
        },
        Test {
            name: "devices.console_with_terminal",
            clause: "config-linux.md#default-devices: /dev/console is set up if terminal is enabled in the config by bind mounting the pseudoterminal pty to /dev/console",
            run: console,
        },
        Test {
            name: "devices.cgroup_allow_list",
            clause: "config-linux.md#allowed-device-list: devices (array of objects, OPTIONAL) configures the allowed device list; entries are evaluated in order, last match wins",
            run: cgroup_allow_list,
        },
    ]
}

fn char_device(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.linux()["devices"] = json!([{
        "path": "/dev/conf-null", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o640, "uid": 1234, "gid": 2345
    }]);
    let r = ctx.probe_cmd(&mut b, &["stat", "/dev/conf-null"])?;
    let s = &r[0]["/dev/conf-null"];
    expect_ok(s, "stat /dev/conf-null")?;
    ensure!(
        s["type"] == "char" && s["major"] == 1 && s["minor"] == 3,
        "device {s}"
    );
    ensure!(s["mode"] == 0o640, "fileMode {} want 0o640", s["mode"]);
    ensure!(
        s["uid"] == 1234 && s["gid"] == 2345,
        "owner {}:{} want 1234:2345",
        s["uid"],
        s["gid"]
    );
    Ok(())
}

fn block_and_fifo(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.linux()["devices"] = json!([
        {"path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0},
        {"path": "/dev/conf-fifo", "type": "p", "fileMode": 0o600, "uid": 0, "gid": 0}
    ]);
    let r = ctx.probe_cmd(&mut b, &["stat", "/dev/conf-loop", "/dev/conf-fifo"])?;
    let blk = &r[0]["/dev/conf-loop"];
    ensure!(
        blk["type"] == "block" && blk["major"] == 7 && blk["minor"] == 200,
        "block device {blk}"
    );
    ensure!(
        r[0]["/dev/conf-fifo"]["type"] == "fifo",
        "fifo {}",
        r[0]["/dev/conf-fifo"]
    );
    Ok(())
}

fn existing_mismatch(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    // Outside /dev (which is a fresh tmpfs), so the regular file is really there.
    std::fs::write(b.rootfs().join("conf-dev"), "a regular file")?;
    b.linux()["devices"] = json!([{"path": "/conf-dev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0, "gid": 0}]);
    let (out, _c) = ctx.try_create(&b)?;
    ensure!(
        !out.success(),
        "create replaced or ignored a regular file at a device path"
    );
    Ok(())
}

fn default_devices(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let want = [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ];
    let mut args = vec!["stat"];
    args.extend(want.iter().map(|w| w.0));
    args.push("/dev/ptmx");
    let r = ctx.probe_cmd(&mut b, &args)?;
    for (path, maj, min) in want {
        let s = &r[0][path];
        ensure!(
            s["type"] == "char" && s["major"] == maj && s["minor"] == min,
            "{path}: {s}, want char {maj}:{min}"
        );
    }
    let ptmx = &r[0]["/dev/ptmx"];
    let ok = (ptmx["type"] == "symlink"
        && ptmx["target"].as_str().map(|t| t.ends_with("pts/ptmx")) == Some(true))
        || (ptmx["type"] == "char" && ptmx["major"] == 5 && ptmx["minor"] == 2);
    ensure!(
        ok,
        "/dev/ptmx is {ptmx}, want a link to pts/ptmx or the ptmx device"
    );
    Ok(())
}

fn default_usable(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.linux()["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
    let r = ctx.probe_cmd(
        &mut b,
        &[
            "write",
            "/dev/null",
            ";",
            "read",
            "/dev/zero",
            ";",
            "write",
            "/dev/full",
            ";",
            "read",
            "/dev/urandom",
        ],
    )?;
    expect_ok(&r[0], "write /dev/null")?;
    expect_ok(&r[1], "read /dev/zero")?;
    expect_errno(&r[2], libc::ENOSPC as i64, "write /dev/full")?;
    expect_ok(&r[3], "read /dev/urandom")?;
    Ok(())
}

fn dev_symlinks(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let links = [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ];
    let mut args = vec!["stat"];
    args.extend(links.iter().map(|l| l.0));
    let r = ctx.probe_cmd(&mut b, &args)?;
    for (path, target) in links {
        let s = &r[0][path];
        ensure!(
            s["type"] == "symlink" && s["target"] == target,
            "{path}: {s}, want -> {target}"
        );
    }
    Ok(())
}

fn console(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.process()["terminal"] = json!(true);
    b.set_args(&["/bin/probe", "stat", "/dev/console", ";", "report"]);
    let (mut c, reader) = ctx.create_with_console(&b)?;
    c.start()?;
    c.wait()?;
    let out = reader
        .join()
        .map_err(|_| anyhow::anyhow!("console thread panicked"))??
        .output;
    let v = crate::suite::parse_probe(&out)?;
    let s: &Value = &v[0]["/dev/console"];
    ensure!(s["type"] == "char", "/dev/console is {s}");
    // It must be the container's terminal: the same device as stdin.
    let stdin = v[1]["tty"]["stdin"].as_str().context("no stdin link")?;
    ensure!(
        s["major"] == 136 || stdin.starts_with("/dev/pts/"),
        "console {s} stdin {stdin}"
    );
    Ok(())
}

/// Major 240 is reserved for local/experimental use and has no driver here: an open the
/// device cgroup allows fails with ENXIO, one it denies fails with EPERM before any driver
/// lookup. That tells the two apart without touching a real device.
fn cgroup_allow_list(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.linux()["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 240, "minor": 0, "access": "rwm"},
        {"allow": true, "type": "c", "major": 240, "minor": 1, "access": "rwm"},
        {"allow": false, "type": "c", "major": 240, "minor": 1, "access": "rwm"}
    ]);
    let r = ctx.probe_cmd(
        &mut b,
        &[
            "mknod", "/tmp/a", "c", "240", "0", ";", "mknod", "/tmp/b", "c", "240", "1", ";",
            "mknod", "/tmp/c", "c", "240", "2", ";", "open", "/tmp/a", "r", ";", "open", "/tmp/b",
            "r", ";", "open", "/tmp/c", "r",
        ],
    )?;
    expect_ok(&r[0], "mknod of an allowed device")?;
    expect_errno(
        &r[3],
        libc::ENXIO as i64,
        "open of an allowed driverless device",
    )?;
    let eperm = libc::EPERM as i64;
    let denied = |mk: &Value, open: &Value| {
        super::util::errno_of(mk) == Some(eperm) || super::util::errno_of(open) == Some(eperm)
    };
    ensure!(
        denied(&r[1], &r[4]),
        "device denied by the last matching rule was usable: mknod {} open {}",
        r[1],
        r[4]
    );
    ensure!(
        denied(&r[2], &r[5]),
        "device outside the allow list was usable: mknod {} open {}",
        r[2],
        r[5]
    );
    Ok(())
}
