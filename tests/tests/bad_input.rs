//! Bad input: malformed or ill-typed config.json, missing pieces, failures at every stage of
//! create, and bad command lines. Each must be a clear error, a non-zero exit, never a panic,
//! and leave nothing behind (state dir, cgroups, mounts, processes).

use mantle_tests::*;
use serde_json::json;
use std::fs;

/// `create` must fail mentioning every word in `words` and leave nothing.
#[track_caller]
fn create_fails(rt: &Runtime, b: &Bundle, words: &[&str], cgroup_paths: &[&str]) -> Output {
    let id = unique("bad");
    let _g = rt.guard(&id);
    let out = rt.run(&["create", "--bundle", b.path_str(), &id]);
    assert_ne!(out.code, 0, "create succeeded: {out:?}");
    for w in words {
        assert!(
            out.stderr.contains(w),
            "error does not mention {w:?}: {}",
            out.stderr
        );
    }
    let left = leftovers(rt, &id, b.path(), cgroup_paths);
    assert!(left.is_empty(), "left behind after {words:?}: {left:?}");
    out
}

#[test]
fn malformed_and_ill_typed_config() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["true"]);
    for (text, words) in [
        (
            "{\"ociVersion\": \"1.0.2\", ",
            vec!["config.json", "malformed"],
        ),
        ("", vec!["config.json"]),
        ("[1, 2]", vec!["config.json"]),
        ("{\"ociVersion\": 5}", vec!["ociVersion"]),
    ] {
        b.write_raw(text);
        create_fails(&rt, &b, &words, &[]);
    }
    let typed = [
        ("/process/user/uid", json!("zero"), "process.user.uid"),
        ("/process/args", json!("sh -c true"), "process.args"),
        ("/mounts", json!({"destination": "/x"}), "mounts"),
        ("/linux/namespaces/0/type", json!(5), "linux.namespaces"),
        (
            "/process/rlimits/0/type",
            json!("RLIMIT_BOGUS"),
            "process.rlimits",
        ),
        (
            "/linux/seccomp",
            json!({"defaultAction": 7}),
            "linux.seccomp",
        ),
    ];
    for (ptr, v, word) in typed {
        let mut b = Bundle::new(&["true"]);
        b.set(ptr, v);
        b.write();
        create_fails(&rt, &b, &[word], &[]);
    }
}

#[test]
fn missing_pieces() {
    let rt = Runtime::mantle();
    let mut b = Bundle::new(&["true"]);
    b.config.as_object_mut().unwrap().remove("root");
    b.write();
    create_fails(&rt, &b, &["root"], &[]);

    let mut b = Bundle::new(&["true"]);
    b.config.as_object_mut().unwrap().remove("process");
    b.write();
    create_fails(&rt, &b, &["process"], &[]);

    let mut b = Bundle::new(&["true"]);
    b.set("/process/args", json!([]));
    b.write();
    create_fails(&rt, &b, &["process.args"], &[]);

    let mut b = Bundle::new(&["true"]);
    b.set("/process/cwd", json!("relative/dir"));
    b.write();
    create_fails(&rt, &b, &["process.cwd"], &[]);

    let mut b = Bundle::new(&["true"]);
    b.set("/root/path", json!("no-such-rootfs"));
    b.write();
    create_fails(&rt, &b, &["no-such-rootfs"], &[]);

    // No config.json at all.
    let b = Bundle::new(&["true"]);
    create_fails(&rt, &b, &["config.json"], &[]);

    // A bundle directory that does not exist.
    let id = unique("nobundle");
    let out = rt
        .run(&["create", "--bundle", "/nonexistent/bundle/dir", &id])
        .failure();
    assert!(out.stderr.contains("/nonexistent/bundle/dir"), "{out:?}");
    assert!(!rt.root.path().join(&id).exists());
}

/// A change to a bundle's config.
type Edit = Box<dyn Fn(&mut Bundle)>;

#[test]
fn failures_at_each_stage_of_create_clean_up_everything() {
    let rt = Runtime::mantle();
    // Each case fails at a different point: stage 1 (join), user namespace maps, mounts,
    // devices, after pivot (sysctl, cwd), and the executable lookup. A cgroupsPath is
    // configured so leftover cgroup directories would be visible.
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "join",
            Box::new(|b: &mut Bundle| {
                b.add_namespace("network", Some("/proc/self/ns/nope"));
            }),
            vec!["/proc/self/ns/nope"],
        ),
        (
            "uid map",
            Box::new(|b: &mut Bundle| {
                b.add_namespace("user", None);
                // Overlapping ranges: the kernel refuses the map.
                let maps = json!([{"containerID": 0, "hostID": 100000, "size": 10}, {"containerID": 5, "hostID": 200000, "size": 10}]);
                b.set("/linux/uidMappings", maps.clone());
                b.set("/linux/gidMappings", maps);
            }),
            vec!["map"],
        ),
        (
            "mount type",
            Box::new(|b: &mut Bundle| {
                b.push_mount(json!({"destination": "/x", "type": "no-such-fs", "source": "none"}));
            }),
            vec!["/x"],
        ),
        (
            "bind source",
            Box::new(|b: &mut Bundle| {
                b.push_mount(json!({"destination": "/x", "type": "bind", "source": "/no/such/source", "options": ["bind"]}));
            }),
            vec!["/no/such/source"],
        ),
        (
            "device",
            Box::new(|b: &mut Bundle| {
                b.set(
                    "/linux/devices",
                    json!([{"path": "/etc/notdev", "type": "c", "major": 1, "minor": 3}]),
                );
            }),
            vec!["/etc/notdev"],
        ),
        (
            "sysctl",
            Box::new(|b: &mut Bundle| {
                b.set("/linux/sysctl", json!({"kernel.no_such_knob": "1"}));
            }),
            vec!["kernel.no_such_knob"],
        ),
        (
            "cwd",
            Box::new(|b: &mut Bundle| {
                b.set("/process/cwd", json!("/etc/passwd"));
            }),
            vec!["cwd"],
        ),
        (
            "executable",
            Box::new(|b: &mut Bundle| {
                b.set_args(&["no-such-program"]);
            }),
            vec!["executable file not found in $PATH"],
        ),
    ];
    for (what, edit, words) in cases {
        let mut b = Bundle::new(&["true"]);
        let id = unique("stage");
        let cg = format!("/mantle-it/{id}");
        b.set("/linux/cgroupsPath", json!(cg));
        edit(&mut b);
        b.write();
        let _g = rt.guard(&id);
        let out = rt.run(&["create", "--bundle", b.path_str(), &id]);
        assert_ne!(out.code, 0, "{what}: create succeeded");
        for w in &words {
            assert!(
                out.stderr.contains(w),
                "{what}: error does not mention {w:?}: {}",
                out.stderr
            );
        }
        let left = leftovers(&rt, &id, b.path(), &[&cg]);
        assert!(left.is_empty(), "{what}: left behind: {left:?}");
    }
    // The shared parent of the cgroupsPath is ours to remove (runtimes leave parents).
    for ctrl in fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = fs::remove_dir(ctrl.path().join("mantle-it"));
    }
}

#[test]
fn bad_command_lines() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["true"]);
    b.write();
    for (args, word) in [
        (vec!["no-such-command"], "no-such-command"),
        (vec!["create", "--no-such-flag", "x"], "--no-such-flag"),
        (vec!["create"], "<ID>"),
        (
            vec!["create", "--bundle", b.path_str(), "../escape"],
            "invalid container id",
        ),
        (
            vec!["create", "--bundle", b.path_str(), "a/b"],
            "invalid container id",
        ),
        (
            vec![
                "create",
                "--preserve-fds",
                "many",
                "--bundle",
                b.path_str(),
                "x1",
            ],
            "many",
        ),
        (vec!["state", "no-such-container"], "does not exist"),
        (vec!["start", "no-such-container"], "does not exist"),
        (vec!["kill", "no-such-container"], "does not exist"),
        (vec!["delete", "no-such-container"], "does not exist"),
        (vec!["exec", "no-such-container", "true"], "does not exist"),
        (vec!["ps", "no-such-container"], "does not exist"),
        (vec!["state", ""], "invalid container id"),
        (vec!["state", ".."], "invalid container id"),
    ] {
        let out = rt.run(&args);
        assert_ne!(out.code, 0, "{args:?} succeeded");
        assert!(
            out.stderr.contains(word),
            "{args:?}: error does not mention {word:?}: {}",
            out.stderr
        );
    }
    assert!(
        fs::read_dir(rt.root.path()).map(|d| d.count()).unwrap_or(0) == 0,
        "a failed command left state behind"
    );
    // exec with neither a command nor --process.
    let b = Bundle::new(&["sleep", "100"]);
    let c = rt.create(&b, &unique("execargs"), &[]);
    let out = rt.run(&["exec", c.id()]).failure();
    assert!(
        out.stderr.contains("command") || out.stderr.contains("process"),
        "{out:?}"
    );
    let out = c.exec_with(&["--user", "root"], &["true"]).failure();
    assert!(out.stderr.contains("--user"), "{out:?}");
    // --root pointing at a file.
    let f = TempDir::new("rootfile");
    let file = f.path().join("file");
    fs::write(&file, "x").unwrap();
    let mut cmd = std::process::Command::new(mantle_bin());
    cmd.args([
        "--root",
        file.to_str().unwrap(),
        "create",
        "--bundle",
        b.path_str(),
        "x2",
    ]);
    let out = run_with_timeout(cmd, TIMEOUT);
    assert_no_panic(&out);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains(file.to_str().unwrap()), "{out:?}");
}

#[test]
fn help_and_version_succeed() {
    let rt = Runtime::mantle();
    assert!(rt.run(&["--version"]).success().stdout.contains("mantle"));
    assert!(rt.run(&["--help"]).success().stdout.contains("create"));
    assert!(rt
        .run(&["create", "--help"])
        .success()
        .stdout
        .contains("--bundle"));
}

#[test]
fn corrupt_state_is_an_error_not_a_panic() {
    let rt = Runtime::mantle();
    let id = unique("corrupt");
    let dir = rt.root.path().join(&id);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("state.json"), "{not json").unwrap();
    let out = rt.run(&["state", &id]).failure();
    assert!(out.stderr.contains(&id), "{out:?}");
    rt.run(&["list"]);
    rt.run(&["delete", "--force", &id]).success();
    assert!(!dir.exists());
}

#[test]
fn json_log_format_writes_one_error_object() {
    let rt = Runtime::mantle();
    let out = rt
        .run(&["--log-format", "json", "state", "no-such-container"])
        .failure();
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().unwrap().contains("does not exist"));
}

#[test]
fn failures_after_the_init_exists_clean_up() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    b.write();
    // The pid file is the last step of create: a bad path fails create after the init was
    // made, and the init, its cgroups and the state must go.
    let id = unique("badpid");
    let _g = rt.guard(&id);
    let out = rt.run(&[
        "create",
        "--pid-file",
        "/nonexistent/dir/pid",
        "--bundle",
        b.path_str(),
        &id,
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("/nonexistent/dir"), "{out:?}");
    let left = leftovers(&rt, &id, b.path(), &[]);
    assert!(left.is_empty(), "{left:?}");
    // A console socket that nobody listens on.
    let mut b = Bundle::new(&["true"]);
    b.set("/process/terminal", json!(true));
    b.write();
    let id = unique("badsock");
    let _g = rt.guard(&id);
    let out = rt.run(&[
        "create",
        "--console-socket",
        "/nonexistent/sock",
        "--bundle",
        b.path_str(),
        &id,
    ]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("/nonexistent/sock"), "{out:?}");
    assert!(leftovers(&rt, &id, b.path(), &[]).is_empty());
}
