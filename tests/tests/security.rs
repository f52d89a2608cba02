//! Security: a hostile rootfs must not make mantle mount on the host; the runtime binary
//! cannot be overwritten from inside the container (CVE-2019-5736); no runtime fd or cwd
//! leads out of the container (CVE-2024-21626).

use mantle_tests::*;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// A symlink target that climbs out of any rootfs and lands on `host` (absolute host path).
fn climbing(host: &Path) -> String {
    format!("/../../../../../../../..{}", host.display())
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn symlinked_mount_targets_stay_inside_the_rootfs() {
    let rt = Runtime::mantle();
    let victim = TempDir::new("victim");
    fs::write(victim.path().join("keep"), "host file\n").unwrap();
    let victim2 = TempDir::new("victim");
    let bind_src = TempDir::new("bindsrc");
    fs::write(bind_src.path().join("from-bind"), "x").unwrap();
    let mut b = Bundle::new(&["sleep", "100"]);
    let r = b.rootfs();
    // /proc climbs to a host directory, /data is an absolute link to /etc, /evil climbs to
    // the host directory as well and receives a bind mount.
    fs::remove_dir(r.join("proc")).unwrap();
    std::os::unix::fs::symlink(climbing(victim.path()), r.join("proc")).unwrap();
    std::os::unix::fs::symlink("/etc", r.join("data")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../../../..{}", victim2.path().display()),
        r.join("evil"),
    )
    .unwrap();
    b.push_mount(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}))
        .push_mount(json!({"destination": "/evil", "type": "bind", "source": bind_src.path(), "options": ["rbind"]}));
    // The links resolve, with the rootfs as /, to directories that exist in the rootfs
    // too: a runtime that follows them on the host finds a target just as well.
    fs::create_dir_all(r.join(victim.path().strip_prefix("/").unwrap())).unwrap();
    fs::create_dir_all(r.join(victim2.path().strip_prefix("/").unwrap())).unwrap();
    let host_etc_mounts_before = mounts_under(Path::new("/etc"));
    let c = rt.create(&b, &unique("hostile"), &[]);
    c.start().success();
    // While the container runs: nothing was mounted on or created in the host paths.
    assert!(
        mounts_under(victim.path()).is_empty(),
        "{:?}",
        mounts_under(victim.path())
    );
    assert!(
        mounts_under(victim2.path()).is_empty(),
        "{:?}",
        mounts_under(victim2.path())
    );
    assert_eq!(
        entries(victim.path()),
        vec!["keep"],
        "something was created in the host directory"
    );
    assert!(
        entries(victim2.path()).is_empty(),
        "the bind landed on the host directory"
    );
    assert_eq!(
        mounts_under(Path::new("/etc")),
        host_etc_mounts_before,
        "a mount landed on the host's /etc"
    );
    assert!(
        mounts_under(b.path()).is_empty(),
        "{:?}",
        mounts_under(b.path())
    );
    // Inside, the mounts landed within the rootfs where the links resolve when the rootfs is /.
    let out = c
        .exec(&[
            "sh",
            "-c",
            "ls /etc; echo ---; ls /proc/self/ >/dev/null && echo proc-ok; ls /evil",
        ])
        .success();
    let (etc, rest) = out.stdout.split_once("---\n").unwrap();
    assert!(
        etc.trim().is_empty(),
        "/data -> /etc should show the tmpfs on the container's /etc: {etc:?}"
    );
    assert!(
        rest.contains("proc-ok") && rest.contains("from-bind"),
        "{out:?}"
    );
    assert!(fs::read_to_string(r.join("etc/passwd"))
        .unwrap()
        .contains("root"));
}

#[test]
fn dangling_symlink_mount_target_never_reaches_the_host() {
    // The link's in-rootfs resolution does not exist, its host resolution does.
    let rt = Runtime::mantle();
    let victim = TempDir::new("victim2");
    let mut b = Bundle::sh("echo ran");
    std::os::unix::fs::symlink(climbing(victim.path()), b.rootfs().join("mnt-link")).unwrap();
    b.push_mount(json!({"destination": "/mnt-link", "type": "tmpfs", "source": "tmpfs"}));
    let id = unique("dangling");
    let out = rt.run_bundle(&b, &id);
    assert!(
        out.code == 0 || out.stderr.contains("mnt-link") || out.stderr.contains("victim2"),
        "{out:?}"
    );
    assert!(mounts_under(victim.path()).is_empty());
    assert!(
        entries(victim.path()).is_empty(),
        "created on the host: {:?}",
        entries(victim.path())
    );
    assert!(
        leftovers(&rt, &id, b.path(), &[]).is_empty(),
        "{:?}",
        leftovers(&rt, &id, b.path(), &[])
    );
}

#[test]
fn bind_source_symlink_in_rootfs_destination_cannot_reach_host_files() {
    let rt = Runtime::mantle();
    let victim = TempDir::new("victimfile");
    let target = victim.path().join("target-file");
    fs::write(&target, "original\n").unwrap();
    let src = TempDir::new("src");
    fs::write(src.path().join("f"), "replacement\n").unwrap();
    let mut b =
        Bundle::sh("cat /etc/hostfile; echo changed > /etc/hostfile 2>/dev/null; echo done");
    // A file-type mount destination that is a link out of the rootfs.
    std::os::unix::fs::symlink(climbing(&target), b.rootfs().join("etc/hostfile")).unwrap();
    b.push_mount(json!({"destination": "/etc/hostfile", "type": "bind", "source": src.path().join("f"), "options": ["bind"]}));
    let out = rt.run_bundle(&b, &unique("filelink"));
    assert!(out.code == 0 || !out.stderr.is_empty(), "{out:?}");
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "original\n",
        "the host file was mounted over or written"
    );
    assert!(mounts_under(victim.path()).is_empty());
}

#[test]
fn runtime_binary_cannot_be_overwritten_from_the_container() {
    // CVE-2019-5736. The test runs a *copy* of mantle, so a successful attack damages only
    // the copy. The container's /bin/evil is a script whose interpreter is /proc/self/exe:
    // when `mantle exec` runs it, the exec'd process turns into whatever binary mantle runs
    // from, and the attacker (the probe, looping over /proc/*/exe) tries to write to it,
    // directly and by reopening an O_PATH fd after the process exits.
    let copy_dir = TempDir::new("bincopy");
    let copy = copy_dir.path().join("mantle");
    fs::copy(mantle_bin(), &copy).unwrap();
    let before = file_bytes(&copy);
    let rt = Runtime::with_bin(copy.clone());
    let out_dir = TempDir::new("attack");
    let mut b =
        Bundle::sh("probe exe-attack 5 > /out/attack.log 2>&1; echo finished >> /out/attack.log");
    b.add_probe().bind_dir(out_dir.path(), "/out");
    fs::write(b.rootfs().join("bin/evil"), "#!/proc/self/exe run\n").unwrap();
    fs::set_permissions(
        b.rootfs().join("bin/evil"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let c = rt.create(&b, &unique("cve5736"), &[]);
    c.start().success();
    let log = out_dir.path().join("attack.log");
    let mut seen = false;
    for _ in 0..60 {
        let _ = c.exec(&["/bin/evil"]);
        let _ = c.exec(&["true"]);
        let text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains("seen ") || text.contains("denied ") {
            seen = true;
            break;
        }
    }
    let text = wait_file_containing(&log, "finished", Duration::from_secs(30));
    assert!(
        !text.contains("writable"),
        "the attacker wrote to a runtime binary:\n{text}"
    );
    assert_eq!(
        file_bytes(&copy),
        before,
        "the runtime binary on the host changed"
    );
    // The host binary's path must never be the exe of a process inside the container.
    assert!(
        !text.contains(copy.to_str().unwrap()),
        "the host binary was visible as /proc/PID/exe:\n{text}"
    );
    assert!(
        seen,
        "the attacker never met a runtime process; the test proved nothing:\n{text}"
    );
}

fn wait_file_containing(p: &Path, needle: &str, timeout: Duration) -> String {
    assert!(
        wait_for(timeout, || fs::read_to_string(p)
            .unwrap_or_default()
            .contains(needle)),
        "{} never contained {needle:?}: {}",
        p.display(),
        fs::read_to_string(p).unwrap_or_default()
    );
    fs::read_to_string(p).unwrap()
}

#[test]
fn cwd_through_leaked_fds_cannot_escape() {
    // CVE-2024-21626: with a host directory fd leaked into the container process, a cwd
    // of /proc/self/fd/N would start the workload outside its root.
    let rt = Runtime::mantle();
    for n in 3..=9 {
        let mut b = Bundle::new(&["probe", "cwd"]);
        b.add_probe();
        b.set("/process/cwd", json!(format!("/proc/self/fd/{n}")));
        let out = rt.run_bundle(&b, &unique("cwdfd"));
        if out.code == 0 {
            let cwd = out.stdout.trim();
            assert!(
                cwd.starts_with('/') && !cwd.contains("unreachable"),
                "fd {n}: cwd escaped: {out:?}"
            );
            assert!(
                !cwd.starts_with(b.path().to_str().unwrap()),
                "fd {n}: cwd is a host path: {cwd}"
            );
        }
    }
    // The same through exec --cwd.
    let mut b = Bundle::new(&["sleep", "100"]);
    b.add_probe();
    let c = rt.create(&b, &unique("cwdexec"), &[]);
    c.start().success();
    for n in 3..=9 {
        let dir = format!("/proc/self/fd/{n}");
        let out = c.exec_with(&["--cwd", &dir], &["probe", "cwd"]);
        if out.code == 0 {
            let cwd = out.stdout.trim();
            assert!(
                cwd.starts_with('/') && !cwd.contains("unreachable"),
                "exec fd {n}: cwd escaped: {out:?}"
            );
        }
    }
}

#[test]
fn container_cannot_see_runtime_fds_while_created() {
    // Between create and start the init holds runtime fds (start socket, sync channel);
    // none may survive into the workload, and the rootfs must not be reachable via an fd
    // to the host's view.
    let rt = Runtime::mantle();
    let mut b = Bundle::sh("ls -l /proc/self/fd/ | grep -v ' [0-3] ->' | grep -- '->' ; echo end");
    b.add_probe();
    let out = rt.run_bundle(&b, &unique("fdview")).success();
    assert_eq!(out.stdout, "end\n", "unexpected fds: {out:?}");
}

#[test]
fn proc_and_sys_writes_are_refused() {
    let rt = Runtime::mantle();
    let b = Bundle::sh(
        "echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable; \
         echo x > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable; \
         echo x > /sys/kernel/uevent_helper 2>/dev/null && echo sysfs-writable; \
         mount -t tmpfs none /mnt 2>/dev/null && echo mount-ok; \
         echo done",
    );
    let out = rt.run_bundle(&b, &unique("procw")).success();
    assert_eq!(out.stdout, "done\n", "{out:?}");
}

#[test]
fn device_nodes_planted_as_links_never_touch_the_host() {
    // No /dev mount: devices are made in the image's own /dev, where the image planted links
    // to host files. They must be replaced (or bound) inside the rootfs, never followed.
    let rt = Runtime::mantle();
    for userns in [false, true] {
        let victim = TempDir::new("devvictim");
        let file = victim.path().join("file");
        fs::write(&file, "precious\n").unwrap();
        let mut b = Bundle::sh(
            "test -c /dev/null && echo null-is-a-device; echo data > /dev/null; echo ok",
        );
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
        std::os::unix::fs::symlink(climbing(&file), b.rootfs().join("dev/null")).unwrap();
        std::os::unix::fs::symlink(climbing(victim.path()), b.rootfs().join("dev/zero")).unwrap();
        if userns {
            b.add_namespace("user", None)
                .set(
                    "/linux/uidMappings",
                    json!([{"containerID": 0, "hostID": 600000, "size": 65536}]),
                )
                .set(
                    "/linux/gidMappings",
                    json!([{"containerID": 0, "hostID": 600000, "size": 65536}]),
                );
        }
        let out = rt.run_bundle(&b, &unique("devlink"));
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "precious\n",
            "userns={userns}: host file changed: {out:?}"
        );
        assert_eq!(
            entries(victim.path()),
            vec!["file"],
            "userns={userns}: {out:?}"
        );
        assert!(mounts_under(victim.path()).is_empty(), "userns={userns}");
        assert!(mounts_under(b.path()).is_empty(), "userns={userns}");
        if out.code == 0 {
            assert!(
                out.stdout.contains("null-is-a-device"),
                "userns={userns}: {out:?}"
            );
        }
    }
}
