//! The features report and the exported table.

#[test]
fn probe_reports_this_kernel() {
    let f = sentry::features::probe();
    assert_eq!(f.platform, "seccomp-notify");
    // This machine runs 6.18: user notification, SYNC_WAKE_UP and WAIT_KILLABLE_RECV exist.
    assert!(
        f.user_notif && f.sync_wake_up && f.wait_killable_recv,
        "{f}"
    );
    assert!(f.require().is_ok());
    let text = f.to_string();
    assert!(
        text.contains("SYNC_WAKE_UP (fast round trip): yes"),
        "{text}"
    );
    assert!(!f.kernel_release.is_empty());
}

#[test]
fn missing_user_notif_says_use_ptrace() {
    let mut f = sentry::features::probe();
    f.user_notif = false;
    let e = f.require().unwrap_err().to_string();
    assert!(e.contains("ptrace platform"), "{e}");
    assert!(f.to_string().contains("use the ptrace platform"));
}

#[test]
fn table_export_and_security_figure() {
    let text = sentry::table::render();
    let rows = sentry::table::table();
    assert_eq!(text.lines().count(), rows.len() + 1);
    assert!(text.contains("openat") && text.contains("emulate"));
    let pass = sentry::table::pass_count();
    assert!(text.contains(&format!("{pass} pass natively")));
    // Every pass row is listed as pass; nothing path-taking among them.
    for r in rows
        .iter()
        .filter(|r| matches!(r.action, sentry::table::Action::Pass))
    {
        for path_call in [
            "open", "stat", "access", "readlink", "rename", "unlink", "execve",
        ] {
            assert_ne!(r.name, path_call);
        }
    }
}
