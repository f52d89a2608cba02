//! config.md#root and config.md#mounts (+ config-linux mount details).

use super::util::{expect_errno, expect_ok, mount_at, mountinfo};
use crate::suite::{Ctx, Test, TestResult};
use anyhow::{ensure, Context};
use serde_json::json;
use std::os::unix::fs::symlink;

const EROFS: i64 = libc::EROFS as i64;

pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "root.path_relative_to_bundle",
            clause: "config.md#root: path ... either an absolute path or a relative path to the bundle",
            run: root_relative,
        },
        Test {
            name: "root.path_absolute",
            clause: "config.md#root: path (string, REQUIRED) Specifies the path to the root filesystem for the container (absolute path)",
            run: root_absolute,
        },
        Test {
            name: "root.readonly_true",
            clause: "config.md#root: readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only inside the container",
            run: root_readonly,
        },
        Test {
            name: "root.readonly_false",
            clause: "config.md#root: readonly (bool, OPTIONAL) defaults to false (root filesystem writable)",
            run: root_writable,
        },
        Test {
            name: "mounts.tmpfs_type_and_options",
            clause: "config.md#mounts: type, options (nosuid,nodev,noexec) of the mount",
            run: tmpfs_options,
        },
        Test {
            name: "mounts.ro_option",
            clause: "config.md#mounts: options: ro makes the mount read-only",
            run: ro_option,
        },
        Test {
            name: "mounts.bind_source",
            clause: "config.md#mounts: source (string, OPTIONAL) A device name, but can also be a file or directory name for bind mounts",
            run: bind_source,
        },
        Test {
            name: "mounts.bind_readonly",
            clause: "config.md#mounts: options [bind, ro]: a read-only bind mount",
            run: bind_readonly,
        },
        Test {
            name: "mounts.bind_file",
            clause: "config.md#mounts: source ... a file ... for bind mounts (file onto file)",
            run: bind_file,
        },
        Test {
            name: "mounts.listed_order",
            clause: "config.md#mounts: The runtime MUST mount entries in the listed order",
            run: listed_order,
        },
        Test {
            name: "mounts.nested_order",
            clause: "config.md#mounts: The runtime MUST mount entries in the listed order (nested destinations)",
            run: nested_order,
        },
        Test {
            name: "mounts.destination_created",
            clause: "config.md#mounts: destination ... path inside container (missing directories are created)",
            run: destination_created,
        },
        Test {
            name: "mounts.destination_symlink_in_root",
            clause: "config.md#mounts: destination (string, REQUIRED) Destination of mount point: path inside container (symlinks resolve inside the container root)",
            run: destination_symlink,
        },
        Test {
            name: "mounts.destination_symlink_escape_confined",
            clause: "config.md#mounts: destination is a path inside container: a symlink pointing outside must not escape the container root",
            run: destination_escape,
        },
        Test {
            name: "mounts.proc_sysfs_mqueue_devpts",
            clause: "config.md#mounts: type (string, OPTIONAL) The type of the filesystem to be mounted (proc, sysfs, mqueue, devpts)",
            run: standard_types,
        },
    ]
}

fn root_relative(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    std::fs::rename(b.rootfs(), b.dir.join("myroot"))?;
    b.config["root"]["path"] = json!("myroot");
    let r = ctx.probe_cmd(&mut b, &["stat", "/bin/probe"])?;
    expect_ok(&r[0]["/bin/probe"], "stat /bin/probe")?;
    Ok(())
}

fn root_absolute(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.config["root"]["path"] = json!(b.rootfs());
    std::fs::write(b.rootfs().join("marker"), "abs")?;
    let r = ctx.probe_cmd(&mut b, &["read", "/marker"])?;
    ensure!(r[0]["data"] == "abs", "read /marker: {}", r[0]);
    Ok(())
}

fn root_readonly(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.config["root"]["readonly"] = json!(true);
    let r = ctx.probe_cmd(&mut b, &["write", "/newfile", ";", "write", "/shared/ok"])?;
    expect_errno(&r[0], EROFS, "write to / of a read-only root")?;
    expect_ok(&r[1], "write to a rw bind mount under a read-only root")?;
    Ok(())
}

fn root_writable(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.config["root"]["readonly"] = json!(false);
    let r = ctx.probe_cmd(&mut b, &["write", "/newfile"])?;
    expect_ok(&r[0], "write to / of a writable root")?;
    ensure!(
        b.rootfs().join("newfile").exists(),
        "the write did not reach the rootfs"
    );
    Ok(())
}

fn tmpfs_options(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.add_mount(
        json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"]}),
    );
    let r = ctx.probe_cmd(&mut b, &["report", ";", "stat", "/mnt/t"])?;
    let m = mount_at(&r[0], "/mnt/t")?;
    ensure!(m.fstype == "tmpfs", "type {}", m.fstype);
    for o in ["nosuid", "nodev", "noexec"] {
        ensure!(m.has_opt(o), "option {o} missing: {:?}", m.opts);
    }
    ensure!(
        m.super_opts.iter().any(|o| o == "size=1024k"),
        "size=1m not applied: {:?}",
        m.super_opts
    );
    ensure!(
        r[1]["/mnt/t"]["mode"] == 0o1770,
        "mode {} want 0o1770",
        r[1]["/mnt/t"]["mode"]
    );
    Ok(())
}

fn ro_option(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.add_mount(
        json!({"destination": "/mnt/ro", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
    );
    let r = ctx.probe_cmd(&mut b, &["write", "/mnt/ro/x"])?;
    expect_errno(&r[0], EROFS, "write into an ro tmpfs")?;
    Ok(())
}

fn host_dir(b: &crate::bundle::Bundle, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let d = b.dir.join(name);
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join("marker"), name)?;
    Ok(d)
}

fn bind_source(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let src = host_dir(&b, "src")?;
    b.add_mount(
        json!({"destination": "/mnt/b", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    b.add_mount(
        json!({"destination": "/mnt/c", "type": "none", "source": src, "options": ["bind"]}),
    );
    let r = ctx.probe_cmd(
        &mut b,
        &["read", "/mnt/b/marker", ";", "read", "/mnt/c/marker"],
    )?;
    ensure!(r[0]["data"] == "src", "type bind: {}", r[0]);
    ensure!(r[1]["data"] == "src", "options bind: {}", r[1]);
    Ok(())
}

fn bind_readonly(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let src = host_dir(&b, "src")?;
    b.add_mount(
        json!({"destination": "/mnt/b", "type": "bind", "source": src, "options": ["rbind", "ro"]}),
    );
    let r = ctx.probe_cmd(
        &mut b,
        &["write", "/mnt/b/new", ";", "read", "/mnt/b/marker"],
    )?;
    expect_errno(&r[0], EROFS, "write into a read-only bind mount")?;
    ensure!(r[1]["data"] == "src", "read: {}", r[1]);
    Ok(())
}

fn bind_file(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let f = b.dir.join("hostfile");
    std::fs::write(&f, "from-host")?;
    b.add_mount(
        json!({"destination": "/etc/hostfile", "type": "bind", "source": f, "options": ["bind"]}),
    );
    let r = ctx.probe_cmd(&mut b, &["read", "/etc/hostfile"])?;
    ensure!(r[0]["data"] == "from-host", "read: {}", r[0]);
    Ok(())
}

fn listed_order(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let first = host_dir(&b, "first")?;
    let second = host_dir(&b, "second")?;
    b.add_mount(
        json!({"destination": "/mnt/o", "type": "bind", "source": first, "options": ["bind"]}),
    );
    b.add_mount(
        json!({"destination": "/mnt/o", "type": "bind", "source": second, "options": ["bind"]}),
    );
    let r = ctx.probe_cmd(&mut b, &["read", "/mnt/o/marker"])?;
    ensure!(
        r[0]["data"] == "second",
        "the later mount is not on top: {}",
        r[0]
    );
    Ok(())
}

fn nested_order(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let inner = host_dir(&b, "inner")?;
    b.add_mount(json!({"destination": "/mnt/outer", "type": "tmpfs", "source": "tmpfs"}));
    b.add_mount(json!({"destination": "/mnt/outer/inner", "type": "bind", "source": inner, "options": ["bind"]}));
    let r = ctx.probe_cmd(&mut b, &["report", ";", "read", "/mnt/outer/inner/marker"])?;
    ensure!(r[1]["data"] == "inner", "inner mount hidden: {}", r[1]);
    let mi = mountinfo(&r[0])?;
    let pos = |p: &str| mi.iter().position(|m| m.mount_point == p);
    let (o, i) = (
        pos("/mnt/outer").context("no /mnt/outer")?,
        pos("/mnt/outer/inner").context("no inner")?,
    );
    ensure!(o < i, "inner mounted before outer");
    Ok(())
}

fn destination_created(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    b.add_mount(json!({"destination": "/a/b/c", "type": "tmpfs", "source": "tmpfs"}));
    let r = ctx.probe_cmd(&mut b, &["report"])?;
    mount_at(&r[0], "/a/b/c")?;
    Ok(())
}

fn destination_symlink(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    std::fs::create_dir_all(b.rootfs().join("real"))?;
    // An absolute link: inside the container it means <rootfs>/real.
    symlink("/real", b.rootfs().join("link"))?;
    let src = host_dir(&b, "src")?;
    b.add_mount(
        json!({"destination": "/link", "type": "bind", "source": src, "options": ["bind"]}),
    );
    let r = ctx.probe_cmd(&mut b, &["read", "/real/marker", ";", "report"])?;
    ensure!(
        r[0]["data"] == "src",
        "mount did not land on the symlink target: {}",
        r[0]
    );
    Ok(())
}

fn destination_escape(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    // On the host this would name /tmp/<unique>; inside the root it must stay in the rootfs.
    let unique = format!("conformance-escape-{}", b.id);
    let host_target = std::path::Path::new("/tmp").join(&unique);
    std::fs::create_dir_all(b.rootfs().join("tmp").join(&unique))?;
    symlink(
        format!("../../../../../../../../tmp/{unique}"),
        b.rootfs().join("escape"),
    )?;
    let src = host_dir(&b, "src")?;
    b.add_mount(
        json!({"destination": "/escape", "type": "bind", "source": src, "options": ["bind"]}),
    );
    let res = ctx.probe_cmd(&mut b, &["read", &format!("/tmp/{unique}/marker")]);
    let escaped = host_target.exists();
    let _ = std::fs::remove_dir_all(&host_target);
    ensure!(
        !escaped,
        "the runtime followed the symlink out of the rootfs to {}",
        host_target.display()
    );
    let r = res?;
    ensure!(
        r[0]["data"] == "src",
        "mount not at the in-root target: {}",
        r[0]
    );
    Ok(())
}

fn standard_types(ctx: &Ctx) -> TestResult {
    let mut b = ctx.bundle()?;
    let r = ctx.report(&mut b)?;
    for (path, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/mqueue", "mqueue"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
    ] {
        let m = mount_at(&r, path)?;
        ensure!(m.fstype == fstype, "{path} is {}, want {fstype}", m.fstype);
    }
    ensure!(
        mount_at(&r, "/sys")?.has_opt("ro"),
        "/sys lacks the ro option"
    );
    Ok(())
}
