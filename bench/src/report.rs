//! The markdown report (bench/results.md).

use crate::results::Results;
use crate::runtimes::Runtime;
use std::fmt::Write;

pub struct Meta {
    pub date: String,
    pub kernel: String,
    pub cpu: String,
    pub cores: usize,
    pub mem: String,
    pub versions: Vec<(String, String)>,
    pub command: String,
    pub wrapper: String,
    pub params: String,
    pub plot_name: String,
    /// /proc/loadavg (1, 5, 15 min) at the start and at the end of the run.
    pub load: (String, String),
}

pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell(r: &Results, metric: &str, rt: &str) -> String {
    match r.get(metric, rt) {
        None => "–".into(),
        Some(s) => match s.summary() {
            None => "n/a (failed)".into(),
            Some(x) if x.n == 1 => num(x.median),
            Some(x) => format!("{} ({}–{})", num(x.median), num(x.p10), num(x.p90)),
        },
    }
}

fn ratio(r: &Results, metric: &str, a: &str, b: &str) -> String {
    match (r.median(metric, a), r.median(metric, b)) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}×", x / y),
        _ => "–".into(),
    }
}

/// One table: a row per metric, a column per runtime, then ratio columns.
fn table(
    out: &mut String,
    r: &Results,
    rows: &[(&str, &str)],
    cols: &[&str],
    ratios: &[(&str, &str)],
) {
    let mut head = String::from("| |");
    let mut rule = String::from("|---|");
    for c in cols {
        let _ = write!(head, " {c} |");
        rule.push_str("---|");
    }
    for (a, b) in ratios {
        let _ = write!(head, " {a}/{b} |");
        rule.push_str("---|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for (metric, label) in rows {
        let _ = write!(out, "| {label} |");
        for c in cols {
            let _ = write!(out, " {} |", cell(r, metric, c));
        }
        for (a, b) in ratios {
            let _ = write!(out, " {} |", ratio(r, metric, a, b));
        }
        out.push('\n');
    }
    out.push('\n');
}

/// A goal: metric, numerator and denominator columns, the ratio aimed at (at most).
struct Goal {
    what: &'static str,
    metric: &'static str,
    num: &'static str,
    den: &'static str,
    target: f64,
}

const GOALS: &[Goal] = &[
    Goal {
        what: "native `run` vs runc",
        metric: "run",
        num: "mantle",
        den: "runc",
        target: 1.0,
    },
    Goal {
        what: "native `run` vs crun",
        metric: "run",
        num: "mantle",
        den: "crun",
        target: 1.2,
    },
    Goal {
        what: "native create+start+wait+delete vs crun",
        metric: "lifecycle.total",
        num: "mantle",
        den: "crun",
        target: 1.2,
    },
    Goal {
        what: "50 concurrent runs, wall time vs crun",
        metric: "concurrent.wall",
        num: "mantle",
        den: "crun",
        target: 1.2,
    },
    Goal {
        what: "native peak RSS vs runc",
        metric: "mem.peak_rss",
        num: "mantle",
        den: "runc",
        target: 0.5,
    },
    Goal {
        what: "sentry `run` vs native `run`",
        metric: "run",
        num: "mantle-sentry",
        den: "mantle",
        target: 2.0,
    },
    Goal {
        what: "sentry emulated uname vs raw notify floor",
        metric: "sys.uname",
        num: "mantle-sentry",
        den: "floor",
        target: 1.5,
    },
    Goal {
        what: "sentry stat vs native stat",
        metric: "sys.stat",
        num: "mantle-sentry",
        den: "mantle",
        target: 20.0,
    },
    Goal {
        what: "sentry untar vs native untar",
        metric: "files.untar",
        num: "mantle-sentry",
        den: "mantle",
        target: 3.0,
    },
    Goal {
        what: "sentry find -exec stat vs native",
        metric: "files.find_stat",
        num: "mantle-sentry",
        den: "mantle",
        target: 3.0,
    },
];

fn goals(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## Goals, as ratios (stated, not asserted)\n");
    let _ = writeln!(
        out,
        "| goal | target | measured (medians) | met |\n|---|---|---|---|"
    );
    for g in GOALS {
        let num = r.median(g.metric, g.num);
        let den = if g.den == "floor" {
            r.median("unotify.sync_wakeup", "host")
        } else {
            r.median(g.metric, g.den)
        };
        let (m, met) = match (num, den) {
            (Some(a), Some(b)) if b > 0.0 => {
                let x = a / b;
                (format!("{x:.2}×"), if x <= g.target { "yes" } else { "no" })
            }
            _ => ("n/a".into(), "–"),
        };
        let _ = writeln!(out, "| {} | ≤ {:.1}× | {m} | {met} |", g.what, g.target);
    }
    out.push('\n');
}

pub fn render(meta: &Meta, runtimes: &[Runtime], r: &Results, example: Option<&str>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# mantle benchmark results\n");
    let _ = writeln!(
        o,
        "Run on **{}** — kernel {}, {} cores ({}), {} RAM.\n",
        meta.date, meta.kernel, meta.cores, meta.cpu, meta.mem
    );
    let _ = writeln!(
        o,
        "Command: `{}`  \nParameters: {}\n",
        meta.command, meta.params
    );
    let _ = writeln!(
        o,
        "Load average (1/5/15 min) at the start: {}; at the end: {}, on {} cores. Above the \
         core count, other work shared the machine during the run, which widens the spreads; \
         the interleaving spreads it over all runtimes alike.\n",
        meta.load.0, meta.load.1, meta.cores
    );
    let _ = writeln!(o, "| runtime | version | status |\n|---|---|---|");
    for rt in runtimes {
        let v = meta
            .versions
            .iter()
            .find(|(l, _)| l == rt.label)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        let status = match &rt.unavailable {
            None => "measured".to_string(),
            Some(e) => format!("**n/a**: {}", e.replace('|', "\\|")),
        };
        let _ = writeln!(o, "| {} | {} | {} |", rt.label, v, status);
    }
    let _ = writeln!(
        o,
        "\nEvery runtime command is started the same way. Wrapper: {}. crun refuses this \
         machine's hybrid cgroup layout (\"cgroups in hybrid mode not supported\"); inside the \
         wrapper every runtime sees the same pure cgroup-v1 layout, and the wrapper's own cost \
         (below) is common to all columns. Runtimes are measured round robin inside each \
         repetition (the starting runtime rotates), all from the same busybox bundle \
         (`runc spec` defaults, without a terminal). Cells: median (p10–p90).\n",
        meta.wrapper
    );
    let _ = writeln!(o, "![benchmark plot]({})\n", meta.plot_name);
    goals(&mut o, r);

    let rts = ["mantle", "mantle-sentry", "runc", "crun"];
    let ratios = [
        ("mantle", "runc"),
        ("mantle", "crun"),
        ("mantle-sentry", "runc"),
        ("mantle-sentry", "crun"),
    ];
    let _ = writeln!(o, "## 1. Lifecycle of `/bin/true` (ms)\n");
    let _ = writeln!(
        o,
        "create+start+wait+delete: four commands; *wait* is from `start` returning until the \
         container init (pid from `--pid-file`) exits, seen on a pidfd by the bench, which is a \
         child subreaper and reaps the init as conmon would. `run`: the whole `run` command \
         (it waits for the container and deletes it).\n"
    );
    table(
        &mut o,
        r,
        &[
            ("lifecycle.total", "create+start+wait+delete"),
            ("lifecycle.create", "create"),
            ("lifecycle.start", "start"),
            ("lifecycle.wait", "wait"),
            ("lifecycle.delete", "delete"),
            ("run", "run"),
        ],
        &rts,
        &ratios,
    );
    let _ = writeln!(o, "Wrapper cost, host `/bin/true` spawn to exit (ms):\n");
    table(
        &mut o,
        r,
        &[
            ("wrapper.direct", "direct"),
            ("wrapper.wrapped", "through the wrapper"),
        ],
        &["host"],
        &[],
    );

    let _ = writeln!(
        o,
        "## 2. Concurrent `run` of `/bin/true` (ms, wall time of the batch)\n"
    );
    table(
        &mut o,
        r,
        &[
            ("concurrent.wall", "wall time"),
            ("concurrent.failed", "failed runs per batch"),
        ],
        &rts,
        &ratios[..2],
    );

    let _ = writeln!(
        o,
        "## 3. Memory of the runtime during a container's life (MiB)\n"
    );
    let _ = writeln!(
        o,
        "The container runs `sleep`. *peak RSS*: the largest sum of VmRSS over runtime \
         processes alive at once (every process descended from the bench except the workload, \
         sampled every 10 ms: the `run` process, its helpers, a sentry and gofer). *Σ VmHWM*: \
         sum of each such process's high-water mark. *ru_maxrss*: wait4 on the `run` command \
         (largest of it and its reaped descendants, workload included).\n"
    );
    table(
        &mut o,
        r,
        &[
            ("mem.peak_rss", "peak RSS"),
            ("mem.hwm_sum", "Σ VmHWM"),
            ("mem.run_maxrss", "ru_maxrss of run"),
        ],
        &rts,
        &ratios,
    );

    let _ = writeln!(o, "## 4. Syscall cost inside the container (ns per call)\n");
    let _ = writeln!(
        o,
        "A static workload program times N iterations of each call. getppid: allowed by the \
         sentry's BPF filter (the filter's cost); uname: emulated by the sentry alone; stat \
         (newfstatat) and open (openat): path calls emulated with the gofer; read/close and \
         the pipe write+read: pass through. *host*: the same program outside any container.\n"
    );
    let mut rows: Vec<(String, String)> = crate::syscalls::PROBES
        .iter()
        .map(|p| (format!("sys.{p}"), p.replace('_', " ")))
        .collect();
    rows.iter_mut().for_each(|(_, l)| {
        if l == "open read close" {
            *l = "open+read 4 KiB+close".into()
        } else if l == "pipe write read" {
            *l = "pipe write+read 64 B".into()
        }
    });
    let rows_ref: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mut cols = vec!["host"];
    cols.extend(rts);
    table(
        &mut o,
        r,
        &rows_ref,
        &cols,
        &[("mantle-sentry", "mantle"), ("mantle", "host")],
    );
    let _ = writeln!(
        o,
        "Raw seccomp user-notification round trip on this machine (the floor of any \
         notify-based sentry: a child's getppid answered at once by another process), ns per \
         call:\n"
    );
    table(
        &mut o,
        r,
        &[
            ("unotify.plain", "USER_NOTIF round trip"),
            (
                "unotify.sync_wakeup",
                "… with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP",
            ),
            (
                "unotify.plain_pinned",
                "round trip, both processes on one CPU",
            ),
            (
                "unotify.sync_wakeup_pinned",
                "… with SYNC_WAKE_UP, both on one CPU",
            ),
            ("sys.getppid", "getppid, no filter (host)"),
        ],
        &["host"],
        &[],
    );

    let _ = writeln!(o, "## 5. File-heavy workload (ms)\n");
    let _ = writeln!(
        o,
        "Inside the container, timed by the workload: `tar -xf /data.tar -C /scratch` (busybox \
         tar; the tarball holds the tree of small files given in the parameters) then `find \
         /scratch -exec stat {{}} +`.\n"
    );
    table(
        &mut o,
        r,
        &[
            ("files.untar", "untar"),
            ("files.find_stat", "find -exec stat"),
        ],
        &rts,
        &[
            ("mantle-sentry", "mantle"),
            ("mantle", "runc"),
            ("mantle", "crun"),
        ],
    );

    if let Some(text) = example {
        let _ = writeln!(
            o,
            "## 6. The sentry crate's own microbenchmarks\n\n`cargo run --release -p mantle-sentry \
             --example sentry-bench`: floor with a supervisor thread in the same process, and \
             its C probe natively in a chroot vs under `sentry::launch`; then the ptrace \
             platform: its emulated round trip next to the seccomp platform's and the raw \
             ptrace floor (RET_TRACE answered at once), with ratios; verbatim:\n\n```\n{}\n```\n",
            text.trim_end()
        );
    }
    let _ = writeln!(o, "## Failures and notes\n");
    let mut any = false;
    for rt in runtimes.iter().map(|r| r.label).chain(["host"]) {
        for (metric, n, e) in r.failures_of(rt) {
            any = true;
            let _ = writeln!(
                o,
                "- {rt}, {metric}: {n} failed; first: `{}`",
                e.replace('`', "'")
            );
        }
        if let Some(names) = r.mem_processes.get(rt) {
            let v: Vec<&str> = names.iter().map(String::as_str).collect();
            let _ = writeln!(
                o,
                "- {rt}: processes counted as runtime memory: {}",
                v.join(", ")
            );
        }
    }
    if !any {
        let _ = writeln!(o, "- no failures in any measured runtime.");
    }
    o
}
