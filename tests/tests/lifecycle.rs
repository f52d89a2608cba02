//! Lifecycle end to end: exit codes, signals, state transitions and the state document,
//! the create/start split, exec in all its forms, list and ps.

use mantle_tests::*;
use serde_json::json;
use std::fs;
use std::time::Duration;

#[test]
fn run_returns_the_container_exit_code() {
    let rt = Runtime::mantle();
    for (script, want) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("nope-not-a-program", 127),
        ("/etc/passwd", 126),
    ] {
        let b = Bundle::sh(script);
        let out = rt.run_bundle(&b, &unique("code"));
        assert_eq!(out.code, want, "{script}: {out:?}");
    }
}

#[test]
fn run_prints_container_stdout_and_stderr() {
    let rt = Runtime::mantle();
    let b = Bundle::sh("echo to-out; echo to-err >&2");
    let out = rt.run_bundle(&b, &unique("stdio")).success();
    assert_eq!(out.stdout, "to-out\n");
    assert!(out.stderr.contains("to-err"), "{out:?}");
}

#[test]
fn missing_or_unexecutable_program_fails_with_runc_words() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["definitely-not-here"]);
    let id = unique("missing");
    let out = rt.run_bundle(&b, &id).failure();
    assert!(
        out.stderr.contains("executable file not found in $PATH"),
        "{out:?}"
    );
    assert!(
        leftovers(&rt, &id, b.path(), &[]).is_empty(),
        "{:?}",
        leftovers(&rt, &id, b.path(), &[])
    );

    let b = Bundle::new(&["/etc/passwd"]);
    let out = rt.run_bundle(&b, &unique("noexec")).failure();
    assert!(out.stderr.contains("permission denied"), "{out:?}");

    let b = Bundle::new(&["/no/such/file"]);
    let out = rt.run_bundle(&b, &unique("nofile")).failure();
    assert!(out.stderr.contains("no such file or directory"), "{out:?}");
}

#[test]
fn signals_by_name_and_number_reach_the_init() {
    let rt = Runtime::mantle();
    // The shell traps USR1 and reports it through a file, then goes on waiting.
    let b = Bundle::sh("trap 'echo usr1 > /tmp/got' USR1; while :; do sleep 0.05; done");
    let c = rt.create(&b, &unique("sig"), &[]);
    c.start().success();
    c.wait_status("running");
    c.kill("USR1").success();
    let got = b.rootfs().join("tmp/got");
    assert_eq!(wait_file(&got, Duration::from_secs(10)), "usr1\n");
    fs::remove_file(&got).unwrap();
    c.kill("SIGUSR1").success();
    assert_eq!(wait_file(&got, Duration::from_secs(10)), "usr1\n");
    fs::remove_file(&got).unwrap();
    c.kill("10").success(); // SIGUSR1 on x86_64
    assert_eq!(wait_file(&got, Duration::from_secs(10)), "usr1\n");
    c.kill("9").success();
    c.wait_status("stopped");
    assert_eq!(c.state()["pid"], json!(0));
    // A stopped container cannot be signalled.
    let out = c.kill("KILL").failure();
    assert!(out.stderr.contains("not running"), "{out:?}");
    // Unknown signals are refused with a clear message.
    let b2 = Bundle::new(&["sleep", "100"]);
    let c2 = rt.create(&b2, &unique("sig2"), &[]);
    let out = c2.kill("SIGNOPE").failure();
    assert!(out.stderr.contains("unknown signal"), "{out:?}");
}

#[test]
fn run_reports_128_plus_signal() {
    let rt = Runtime::mantle();
    // The workload killed by a signal it cannot ignore.
    let b = Bundle::sh("sh -c 'kill -KILL $$'; exit $?");
    let out = rt.run_bundle(&b, &unique("k9"));
    assert_eq!(out.code, 137, "{out:?}");
    // The init killed from outside while `run` waits for it: run exits 128+9.
    let id = unique("kinit");
    let _g = rt.guard(&id);
    let b = Bundle::new(&["sleep", "30"]);
    b.write();
    let cmd = rt.command(&["run", "--bundle", b.path_str(), &id]);
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| rt.run_cmd(cmd, Duration::from_secs(30)));
        rt.wait_status(&id, "running", Duration::from_secs(10));
        rt.run(&["kill", &id, "KILL"]).success();
        h.join().unwrap()
    });
    assert_eq!(out.code, 137, "{out:?}");
}

#[test]
fn state_transitions_and_document_keys() {
    let rt = Runtime::mantle();
    let mut b = Bundle::new(&["sleep", "100"]);
    b.set("/annotations", json!({"org.example.key": "value"}));
    let id = unique("st");
    let c = rt.create(&b, &id, &[]);
    let s = c.state();
    for key in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
        "annotations",
    ] {
        assert!(s.get(key).is_some(), "state lacks {key}: {s}");
    }
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], json!(id));
    assert_eq!(s["ociVersion"], "1.0.2-dev");
    assert_eq!(s["bundle"], json!(b.path()));
    assert_eq!(s["rootfs"], json!(b.rootfs()));
    assert_eq!(s["annotations"]["org.example.key"], "value");
    let pid = s["pid"].as_i64().unwrap() as i32;
    assert!(pid > 0 && pid_alive(pid));
    // created is RFC 3339.
    let created = s["created"].as_str().unwrap();
    assert!(
        created.len() >= 20 && created.as_bytes()[4] == b'-' && created.contains('T'),
        "{created}"
    );
    c.start().success();
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid, "start keeps the init pid");
    // Starting twice is an error.
    c.start().failure();
    c.kill("KILL").success();
    c.wait_status("stopped");
    c.start().failure();
    // delete without --force works on a stopped container and removes it.
    rt.run(&["delete", &id]).success();
    let out = rt.run(&["state", &id]).failure();
    assert!(out.stderr.contains("does not exist"), "{out:?}");
}

#[test]
fn delete_refuses_running_container_without_force() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let id = unique("del");
    let c = rt.create(&b, &id, &[]);
    c.start().success();
    let out = rt.run(&["delete", &id]).failure();
    assert!(out.stderr.contains("not stopped"), "{out:?}");
    let pid = c.pid();
    rt.run(&["delete", "--force", &id]).success();
    assert!(
        wait_for(Duration::from_secs(5), || !pid_alive(pid)),
        "init {pid} survived delete --force"
    );
    assert!(
        leftovers(&rt, &id, b.path(), &[]).is_empty(),
        "{:?}",
        leftovers(&rt, &id, b.path(), &[])
    );
}

#[test]
fn create_does_not_run_the_process_until_start() {
    let rt = Runtime::mantle();
    let out = TempDir::new("marker");
    let mut b = Bundle::sh("echo started > /out/marker; sleep 100");
    b.bind_dir(out.path(), "/out");
    let pidfile = out.path().join("pid");
    let id = unique("split");
    let c = rt.create(&b, &id, &["--pid-file", pidfile.to_str().unwrap()]);
    // The pid file is complete when create returns.
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, c.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !out.path().join("marker").exists(),
        "process ran before start"
    );
    assert_eq!(c.status(), "created");
    c.start().success();
    assert_eq!(
        wait_file(&out.path().join("marker"), Duration::from_secs(10)),
        "started\n"
    );
}

#[test]
fn exec_cli_form_with_env_cwd_user() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let c = rt.create(&b, &unique("exec"), &[]);
    c.start().success();
    let out = c.exec(&["sh", "-c", "echo hello; exit 4"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.stdout, "hello\n");
    let out = c
        .exec_with(
            &["--env", "FOO=bar", "--env", "X=1 2"],
            &["sh", "-c", "echo \"$FOO|$X\""],
        )
        .success();
    assert_eq!(out.stdout, "bar|1 2\n");
    let out = c.exec_with(&["--cwd", "/etc"], &["pwd"]).success();
    assert_eq!(out.stdout, "/etc\n");
    let out = c.exec_with(&["--user", "1000:1001"], &["id"]).success();
    assert!(out.stdout.starts_with("uid=1000 gid=1001"), "{out:?}");
    let out = c
        .exec_with(
            &[
                "--user",
                "1000:1001",
                "--additional-gids",
                "5",
                "--additional-gids",
                "7",
            ],
            &["id", "-G"],
        )
        .success();
    let groups: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(groups.contains(&"5") && groups.contains(&"7"), "{out:?}");
    // The exec'd process is in the container's pid namespace (not pid 1, sees the init).
    let out = c
        .exec(&["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"])
        .success();
    assert_eq!(out.stdout.trim(), "sleep 100");
    let out = c.exec(&["not-a-program"]).failure();
    assert!(
        out.stderr.contains("executable file not found in $PATH"),
        "{out:?}"
    );
}

#[test]
fn exec_process_file_and_detach_with_pid_file() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let tmp = TempDir::new("execp");
    let c = rt.create(&b, &unique("execp"), &[]);
    c.start().success();
    let proc_file = tmp.path().join("process.json");
    fs::write(
        &proc_file,
        serde_json::to_vec(&json!({
            "terminal": false, "user": {"uid": 1234, "gid": 99}, "cwd": "/tmp",
            "args": ["sh", "-c", "echo $(id -u):$(id -g):$(pwd):$GREETING"],
            "env": ["PATH=/bin", "GREETING=hi"]
        }))
        .unwrap(),
    )
    .unwrap();
    let out = c
        .exec_with(&["--process", proc_file.to_str().unwrap()], &[])
        .success();
    assert_eq!(out.stdout, "1234:99:/tmp:hi\n");

    let pidfile = tmp.path().join("exec.pid");
    let out = c
        .exec_with(
            &["--detach", "--pid-file", pidfile.to_str().unwrap()],
            &["sleep", "77"],
        )
        .success();
    assert!(out.stdout.is_empty(), "{out:?}");
    let pid: i32 = fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(pid));
    let cmdline = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\x0077\x00");
    // ps lists the init and the exec'd process.
    let ps = rt.run(&["ps", "--format", "json", c.id()]).success();
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&c.pid()), "{pids:?}");
    // A malformed process file is a clear error.
    fs::write(&proc_file, "{\"args\": 7}").unwrap();
    let out = c
        .exec_with(&["--process", proc_file.to_str().unwrap()], &[])
        .failure();
    assert!(out.stderr.contains("args"), "{out:?}");
}

#[test]
fn exec_into_stopped_or_missing_container_fails() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["true"]);
    let c = rt.create(&b, &unique("execstop"), &[]);
    c.start().success();
    c.wait_status("stopped");
    let out = c.exec(&["true"]).failure();
    assert!(out.stderr.contains("stopped"), "{out:?}");
    let out = rt.run(&["exec", "no-such-ctr", "true"]).failure();
    assert!(out.stderr.contains("does not exist"), "{out:?}");
}

#[test]
fn list_shows_containers_as_json_and_table() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let (a, z) = (unique("list-a"), unique("list-z"));
    let ca = rt.create(&b, &a, &[]);
    let cz = rt.create(&b, &z, &[]);
    cz.start().success();
    let out = rt.run(&["list", "--format", "json"]).success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    let by_id = |id: &str| items.iter().find(|i| i["id"] == id).cloned().unwrap();
    assert_eq!(by_id(&a)["status"], "created");
    assert_eq!(by_id(&z)["status"], "running");
    assert_eq!(by_id(&a)["pid"], json!(ca.pid()));
    for key in [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ] {
        assert!(by_id(&z).get(key).is_some(), "list item lacks {key}");
    }
    let out = rt.run(&["list"]).success();
    assert!(out.stdout.starts_with("ID"), "{out:?}");
    assert!(out.stdout.contains(&a) && out.stdout.contains(&z));
    let out = rt.run(&["list", "-q"]).success();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec![a.as_str(), z.as_str()]
    );
    // An empty root lists nothing.
    let empty = Runtime::mantle();
    assert_eq!(
        empty
            .run(&["list", "--format", "json"])
            .success()
            .stdout
            .trim(),
        "[]"
    );
}

#[test]
fn ps_table_lists_container_processes() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let c = rt.create(&b, &unique("ps"), &[]);
    c.start().success();
    let out = rt.run(&["ps", c.id()]).success();
    let mut lines = out.stdout.lines();
    assert!(lines.next().unwrap().contains("PID"), "{out:?}");
    assert!(out.stdout.contains(&c.pid().to_string()), "{out:?}");
}

#[test]
fn run_detach_then_delete() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    b.write();
    let id = unique("detach");
    let _g = rt.guard(&id);
    let out = rt
        .run(&["run", "--detach", "--bundle", b.path_str(), &id])
        .success();
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(rt.status(&id), "running");
    rt.run(&["kill", &id, "KILL"]).success();
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    rt.run(&["delete", &id]).success();
    assert!(
        leftovers(&rt, &id, b.path(), &[]).is_empty(),
        "{:?}",
        leftovers(&rt, &id, b.path(), &[])
    );
}

#[test]
fn duplicate_id_is_refused() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let id = unique("dup");
    let _c = rt.create(&b, &id, &[]);
    let out = rt.run(&["create", "--bundle", b.path_str(), &id]).failure();
    assert!(out.stderr.contains("exists"), "{out:?}");
    assert_eq!(
        rt.status(&id),
        "created",
        "the first container must survive"
    );
}

#[test]
fn kill_all_signals_every_process() {
    let rt = Runtime::mantle();
    let b = Bundle::sh("trap '' TERM; sleep 100 & sleep 100 & wait");
    let c = rt.create(&b, &unique("killall"), &[]);
    c.start().success();
    let ps = |c: &Ctr| -> Vec<i32> {
        serde_json::from_str(
            &c.rt
                .run(&["ps", "--format", "json", c.id()])
                .success()
                .stdout,
        )
        .unwrap()
    };
    assert!(
        wait_for(Duration::from_secs(5), || ps(&c).len() == 3),
        "{:?}",
        ps(&c)
    );
    let pids = ps(&c);
    rt.run(&["kill", "--all", c.id(), "KILL"]).success();
    assert!(
        wait_for(Duration::from_secs(10), || pids
            .iter()
            .all(|p| !pid_alive(*p))),
        "processes survived kill --all"
    );
    c.wait_status("stopped");
}

#[test]
fn pause_and_resume() {
    let rt = Runtime::mantle();
    let b = Bundle::sh("i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.02; done");
    let c = rt.create(&b, &unique("pause"), &[]);
    c.start().success();
    let count = b.rootfs().join("tmp/count");
    wait_file(&count, Duration::from_secs(10));
    rt.run(&["pause", c.id()]).success();
    assert_eq!(c.status(), "paused");
    let before = fs::read_to_string(&count).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fs::read_to_string(&count).unwrap(),
        before,
        "a paused container kept running"
    );
    rt.run(&["resume", c.id()]).success();
    assert_eq!(c.status(), "running");
    assert!(wait_for(Duration::from_secs(5), || fs::read_to_string(
        &count
    )
    .unwrap()
        != before));
    // A paused container can be deleted by force.
    rt.run(&["pause", c.id()]).success();
    rt.run(&["delete", "--force", c.id()]).success();
    assert!(
        leftovers(&rt, c.id(), b.path(), &[]).is_empty(),
        "{:?}",
        leftovers(&rt, c.id(), b.path(), &[])
    );
}

#[test]
fn long_ids_and_concurrent_containers_in_one_root() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    b.write();
    // Ids as long as containerd's (64 hex) and longer: socket paths must still fit.
    let long = format!("{}-{}", "f".repeat(150), unique("long"));
    let c = rt.create(&b, &long, &[]);
    c.start().success();
    assert_eq!(c.status(), "running");
    drop(c);
    // Several containers created, used and deleted at once under the same --root.
    std::thread::scope(|s| {
        for i in 0..4 {
            let (rt, b) = (&rt, &b);
            s.spawn(move || {
                for j in 0..2 {
                    let id = unique(&format!("conc{i}-{j}"));
                    let c = rt.create(b, &id, &[]);
                    c.start().success();
                    assert_eq!(c.exec(&["echo", "hi"]).success().stdout, "hi\n");
                    c.kill("KILL").success();
                    c.wait_status("stopped");
                    rt.run(&["delete", &id]).success();
                }
            });
        }
    });
    let out = rt.run(&["list", "-q"]).success();
    assert!(out.stdout.trim().is_empty(), "{out:?}");
}

#[test]
fn run_forwards_signals_to_the_container() {
    let rt = Runtime::mantle();
    let b = Bundle::sh(
        "trap 'echo got-term; exit 42' TERM; echo ready > /tmp/ready; while :; do sleep 0.05; done",
    );
    b.write();
    let id = unique("fwd");
    let _g = rt.guard(&id);
    let mut child = rt
        .command(&["run", "--bundle", b.path_str(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_file(&b.rootfs().join("tmp/ready"), Duration::from_secs(10));
    // SAFETY: kill(2) on the pid of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(42));
    assert_eq!(read_all(child.stdout.take().unwrap()), "got-term\n");
}

#[test]
fn start_after_the_init_died_is_refused() {
    let rt = Runtime::mantle();
    let b = Bundle::new(&["sleep", "100"]);
    let tmp = TempDir::new("relpid");
    let id = unique("dead");
    b.write();
    let _g = rt.guard(&id);
    // A relative --pid-file is relative to the runtime's working directory.
    let mut cmd = rt.command(&[
        "create",
        "--pid-file",
        "rel.pid",
        "--bundle",
        b.path_str(),
        &id,
    ]);
    cmd.current_dir(tmp.path());
    rt.run_cmd(cmd, TIMEOUT).success();
    let pid: i32 = fs::read_to_string(tmp.path().join("rel.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rt.state(&id)["pid"], json!(pid));
    rt.run(&["kill", &id, "KILL"]).success();
    rt.wait_status(&id, "stopped", Duration::from_secs(10));
    let out = rt.run(&["start", &id]).failure();
    assert!(out.stderr.contains("stopped"), "{out:?}");
    rt.run(&["delete", &id]).success();
    assert!(leftovers(&rt, &id, b.path(), &[]).is_empty());
}

#[test]
fn no_pivot_and_no_new_keyring_flags() {
    let rt = Runtime::mantle();
    let b = Bundle::sh("ls /; test -e /bin/busybox && echo in-rootfs");
    b.write();
    for flag in ["--no-pivot", "--no-new-keyring"] {
        let id = unique("flags");
        let _g = rt.guard(&id);
        let out = rt
            .run(&["run", flag, "--bundle", b.path_str(), &id])
            .success();
        assert!(out.stdout.contains("in-rootfs"), "{flag}: {out:?}");
        assert!(
            !out.stdout.contains("mantle-it-"),
            "{flag}: host paths visible: {out:?}"
        );
    }
}

#[test]
fn real_time_signals_by_number_and_name() {
    // podman stops systemd containers with SIGRTMIN+3, passed to the runtime as a number.
    let rt = Runtime::mantle();
    let b = Bundle::sh(
        "trap 'echo rt >> /tmp/got' 37; echo ready > /tmp/ready; while :; do sleep 0.05; done",
    );
    let c = rt.create(&b, &unique("rtsig"), &[]);
    c.start().success();
    wait_file(&b.rootfs().join("tmp/ready"), Duration::from_secs(10));
    c.kill("37").success();
    assert_eq!(
        wait_file(&b.rootfs().join("tmp/got"), Duration::from_secs(10)),
        "rt\n"
    );
    c.kill("SIGRTMIN+3").success();
    assert!(wait_for(Duration::from_secs(10), || fs::read_to_string(
        b.rootfs().join("tmp/got")
    )
    .unwrap()
        == "rt\nrt\n"));
    let out = c.kill("65").failure();
    assert!(out.stderr.contains("unknown signal"), "{out:?}");
}

#[test]
fn spec_writes_a_config_that_runs() {
    let rt = Runtime::mantle();
    for rootless in [false, true] {
        let mut b = Bundle::new(&["true"]);
        fs::remove_file(b.path().join("config.json")).ok();
        let path = b.path_str().to_string();
        let mut args = vec!["spec", "--bundle", path.as_str()];
        if rootless {
            args.push("--rootless");
        }
        rt.run(&args).success();
        let text = fs::read_to_string(b.path().join("config.json")).unwrap();
        b.config = serde_json::from_str(&text).unwrap();
        assert_eq!(b.config["root"]["path"], "rootfs");
        b.set("/process/terminal", json!(false))
            .set_args(&["sh", "-c", "echo spec-ok"]);
        let out = rt.run_bundle(&b, &unique("spec")).success();
        assert_eq!(out.stdout, "spec-ok\n", "rootless={rootless}");
        // A second spec refuses to overwrite.
        let out = rt.run(&args);
        assert_ne!(out.code, 0, "spec overwrote config.json");
    }
}
