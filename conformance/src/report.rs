//! Running the tests against one runtime, TAP lines as they finish, and the final summary:
//! table, comparison, JSON file and exit code.

use crate::bundle::RootfsTemplate;
use crate::expected::Expected;
use crate::host::Host;
use crate::runtime::{Runtime, RuntimeSpec};
use crate::suite::{self, Ctx, Skip, Test};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

#[derive(Serialize, Clone)]
pub struct Outcome {
    pub name: String,
    pub clause: String,
    pub verdict: Verdict,
    pub message: String,
    pub millis: u128,
}

#[derive(Serialize)]
pub struct RuntimeRun {
    pub name: String,
    pub path: String,
    pub version: String,
    pub seconds: f64,
    pub results: Vec<Outcome>,
}

/// What every runtime's run shares.
pub struct Setup<'a> {
    pub work: &'a Path,
    pub probe: &'a Path,
    pub busybox: &'a Path,
    pub timeout: Duration,
    pub work_is_shared: bool,
    /// Keep every bundle (default: delete each test's bundles when it ends).
    pub keep: bool,
}

pub fn run_suite(
    spec: &RuntimeSpec,
    setup: &Setup,
    tests: &[&Test],
    counter: &mut usize,
) -> Result<RuntimeRun> {
    let (work, probe, busybox) = (setup.work, setup.probe, setup.busybox);
    let rt = Runtime::new(spec, work, setup.timeout)?;
    let bin = &spec.bin;
    let name = rt.name.clone();
    let version = rt.version();
    println!("# runtime {name}: {} ({version})", bin.display());
    let template = RootfsTemplate::new(busybox, probe)?;
    let ctx = Ctx::new(
        rt,
        template,
        Host::detect()?,
        work.join(&name),
        setup.work_is_shared,
    );
    let started = Instant::now();
    let mut results = Vec::new();
    for t in tests {
        if suite::interrupted() {
            println!("# interrupted: remaining tests not run");
            break;
        }
        let t0 = Instant::now();
        let r = (t.run)(&ctx);
        suite::reap_orphans();
        if !setup.keep {
            // Each bundle holds its own copy of busybox and the probe: drop them as we go.
            let bundles = ctx.work.join("bundles");
            suite::detach_mounts_under(&bundles);
            let _ = std::fs::remove_dir_all(&bundles);
        }
        let (verdict, message) = match r {
            Ok(()) => (Verdict::Pass, String::new()),
            Err(e) => match e.downcast_ref::<Skip>() {
                Some(s) => (Verdict::Skip, s.0.clone()),
                None => (Verdict::Fail, format!("{e:#}")),
            },
        };
        *counter += 1;
        let line = one_line(&message);
        match verdict {
            Verdict::Pass => println!("ok {counter} - [{name}] {}", t.name),
            Verdict::Skip => println!("ok {counter} - [{name}] {} # SKIP {line}", t.name),
            Verdict::Fail => {
                println!("not ok {counter} - [{name}] {}", t.name);
                println!(
                    "  ---\n  clause: {:?}\n  message: {:?}\n  ...",
                    t.clause, line
                );
            }
        }
        results.push(Outcome {
            name: t.name.to_string(),
            clause: t.clause.to_string(),
            verdict,
            message,
            millis: t0.elapsed().as_millis(),
        });
    }
    Ok(RuntimeRun {
        name,
        path: bin.display().to_string(),
        version,
        seconds: started.elapsed().as_secs_f64(),
        results,
    })
}

/// "document#section (test name)", cut to fit the table.
fn clause_cell(t: &Test) -> String {
    let section = t.clause.split(':').next().unwrap_or(t.clause);
    let cell = format!("{section} ({})", t.name);
    if cell.chars().count() > 84 {
        format!("{}...", cell.chars().take(81).collect::<String>())
    } else {
        cell
    }
}

fn one_line(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() > 400 {
        format!("{}...", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}

#[derive(Serialize)]
struct Problem {
    test: String,
    runtime: String,
    kind: &'static str,
    detail: String,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    runtimes: &'a [RuntimeRun],
    problems: Vec<Problem>,
    expected_differences: Vec<crate::expected::Entry>,
}

/// Prints the summary and returns the exit code: 0 when every failure is explained (and, when
/// comparing, everything passing under the reference passes under the other runtime).
pub fn finish(
    runs: &[RuntimeRun],
    tests: &[&Test],
    expected: &Expected,
    json: Option<&Path>,
) -> Result<i32> {
    let mut problems = Vec::new();
    let cell = |run: &RuntimeRun, i: usize| -> String {
        let o = &run.results[i];
        let listed = expected.find(&o.name, &run.name).is_some();
        match (o.verdict, listed) {
            (Verdict::Pass, false) => "pass".into(),
            (Verdict::Pass, true) => "pass (stale xfail)".into(),
            (Verdict::Fail, true) => "xfail".into(),
            (Verdict::Fail, false) => "FAIL".into(),
            (Verdict::Skip, _) => "skip".into(),
        }
    };
    println!();
    const W: usize = 84;
    let mut header = format!("{:<W$}", "clause: document#section (test)");
    for r in runs {
        header.push_str(&format!(" | {:<18}", r.name));
    }
    println!("{header}");
    println!("{}", "-".repeat(header.len()));
    for (i, t) in tests.iter().enumerate() {
        let mut row = format!("{:<W$}", clause_cell(t));
        for r in runs {
            row.push_str(&format!(" | {:<18}", cell(r, i)));
        }
        println!("{row}");
    }
    println!();
    for r in runs {
        let count = |v: Verdict| r.results.iter().filter(|o| o.verdict == v).count();
        println!(
            "# {}: {} pass, {} fail, {} skip in {:.1}s",
            r.name,
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Skip),
            r.seconds
        );
        let is_other = runs.len() == 2 && std::ptr::eq(r, &runs[1]);
        for (i, o) in r.results.iter().enumerate() {
            let listed = expected.find(&o.name, &r.name);
            match (o.verdict, listed) {
                // When comparing, a failure of the second runtime on a test the reference passes
                // is a regression (below); on one the reference does not pass either, it is
                // reported but not fatal: the contract is "at least as good as the reference".
                (Verdict::Fail, None)
                    if is_other && runs[0].results[i].verdict != Verdict::Pass =>
                {
                    problems.push(Problem {
                        test: o.name.clone(),
                        runtime: r.name.clone(),
                        kind: "reference-does-not-pass-either",
                        detail: o.message.clone(),
                    })
                }
                (Verdict::Fail, None) if is_other => {}
                (Verdict::Fail, None) => problems.push(Problem {
                    test: o.name.clone(),
                    runtime: r.name.clone(),
                    kind: "unexplained-failure",
                    detail: o.message.clone(),
                }),
                (Verdict::Pass, Some(_)) => problems.push(Problem {
                    test: o.name.clone(),
                    runtime: r.name.clone(),
                    kind: "stale-expected-difference",
                    detail: "listed in expected-differences.json but passes".into(),
                }),
                _ => {}
            }
        }
    }
    // Differential rule: what the reference passes, the other runtime must pass.
    if let [reference, other] = runs {
        for (a, b) in reference.results.iter().zip(&other.results) {
            if a.verdict == Verdict::Pass
                && b.verdict != Verdict::Pass
                && expected.find(&b.name, &other.name).is_none()
            {
                problems.push(Problem {
                    test: b.name.clone(),
                    runtime: other.name.clone(),
                    kind: "regression-vs-reference",
                    detail: format!(
                        "passes under {}, {:?} under {}: {}",
                        reference.name, b.verdict, other.name, b.message
                    ),
                });
            }
        }
    }
    // Stale entries and failures shared with the reference are reported but do not fail the
    // run; everything else does.
    let failing = problems
        .iter()
        .filter(|p| {
            !matches!(
                p.kind,
                "stale-expected-difference" | "reference-does-not-pass-either"
            )
        })
        .count();
    for p in &problems {
        println!(
            "# {} [{}] {}: {}",
            p.kind,
            p.runtime,
            p.test,
            one_line(&p.detail)
        );
    }
    if let Some(path) = json {
        let report = JsonReport {
            runtimes: runs,
            problems,
            expected_differences: expected.entries.clone(),
        };
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("# results written to {}", path.display());
    }
    Ok(if failing == 0 { 0 } else { 1 })
}
