//! Dynamically linked programs: the kernel maps the interpreter, ld.so opens every library
//! through the emulated openat and mmaps the injected fds.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Copy `bin` and the libraries `ldd` names into the rootfs at the same paths.
fn add_dynamic(r: &Rootfs, bin: &str) {
    let out = Command::new("ldd").arg(bin).output().expect("ldd");
    assert!(out.status.success(), "ldd {bin}");
    let mut files = vec![bin.to_string()];
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(p.to_string());
        }
    }
    for f in files {
        let dst = r.path().join(f.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dst).unwrap_or_else(|e| panic!("copy {f}: {e}"));
    }
}

#[test]
fn dynamic_ls_matches_native() {
    let r = busybox_rootfs("dyn-ls");
    add_dynamic(&r, "/usr/bin/ls");
    let script = "/usr/bin/ls -la /etc /bin/busybox /usr/bin; /usr/bin/ls -i /etc/passwd; /usr/bin/ls /nope; echo rc=$?";
    let (nst, nout) = sh_native(r.path(), script);
    let (sst, sout, log) = sh_sentry(r.path(), script);
    assert_eq!(sout, nout, "strace:\n{log}");
    assert_eq!(sst.code(), nst.code());
    assert!(sout.contains("passwd") && sout.contains("rc=2"), "{sout}");
    assert!(
        log.contains("openat(AT_FDCWD, \"/lib/x86_64-linux-gnu/libc.so.6\""),
        "{log}"
    );
}

#[test]
fn python3_runs() {
    let py = "/usr/bin/python3.11";
    if !Path::new(py).exists() {
        eprintln!("skipping: {py} not installed");
        return;
    }
    let r = busybox_rootfs("dyn-py");
    add_dynamic(&r, py);
    let lib = r.path().join("usr/lib/python3.11");
    std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
    // Hard links when /tmp and /usr share a filesystem (fast), else a copy. -B below: no .pyc
    // writes into the shared files.
    let st = Command::new("cp")
        .args(["-al", "/usr/lib/python3.11"])
        .arg(&lib)
        .status()
        .unwrap();
    if !st.success() {
        let _ = std::fs::remove_dir_all(&lib);
        assert!(Command::new("cp")
            .args(["-a", "/usr/lib/python3.11"])
            .arg(&lib)
            .status()
            .unwrap()
            .success());
    }
    let code = "import os, json, threading, subprocess\n\
        open('/tmp/p', 'w').write('xyz')\n\
        os.rename('/tmp/p', '/tmp/q')\n\
        print(json.dumps(sorted(os.listdir('/tmp'))), os.stat('/tmp/q').st_size)\n\
        print(os.getcwd(), os.uname().nodename)\n\
        t = threading.Thread(target=lambda: print('thread', len(os.listdir('/bin')) > 100)); t.start(); t.join()\n\
        print(subprocess.run(['/bin/echo', 'child'], capture_output=True).stdout.decode().strip())\n";
    std::fs::write(r.path().join("work/t.py"), code).unwrap();
    let (st, out, log) = sh_sentry(r.path(), &format!("{py} -B /work/t.py"));
    assert!(
        st.success(),
        "{out}\n{}",
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    assert_eq!(out, "[\"q\"] 3\n/ sentry-test\nthread True\nchild\n");
}
