//! A workload that dropped to an unprivileged user gets the permission bits enforced, even
//! though the gofer opens with its own privileged credentials. Differential against native.

mod common;

use common::*;

#[test]
fn unprivileged_user_permissions_match_native() {
    let script = r#"cd /tmp
echo top > rootonly; chmod 600 rootonly
echo pub > pub; chmod 644 pub
echo keep > keep; chmod 644 keep
/bin/runas 1000 1000 /bin/sh -c '
  id -u
  cat /tmp/rootonly 2>&1 | sed "s/.*: //"
  cat /tmp/pub
  (echo x > /tmp/pub) 2>&1 | sed "s/.*: //"
  (: > /tmp/keep) 2>&1 | sed "s/.*: //"
  test -r /tmp/rootonly || echo not-readable
  test -w /tmp/pub || echo not-writable
  echo mine > /tmp/mine; cat /tmp/mine; stat -c "%u %g %a" /tmp/mine
'
cat keep pub
"#;
    let a = busybox_rootfs("perm-native");
    let b = busybox_rootfs("perm-sentry");
    for r in [&a, &b] {
        r.add_prog("runas");
        std::fs::set_permissions(
            r.path().join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
    }
    let (nst, nout) = sh_native(a.path(), script);
    let (sst, sout, log) = sh_sentry(b.path(), script);
    assert_eq!(sout, nout, "left: sentry, right: native\n{log}");
    assert_eq!(sst.code(), nst.code());
    assert!(
        nout.contains("Permission denied") && nout.contains("keep\n"),
        "{nout}"
    );
}
