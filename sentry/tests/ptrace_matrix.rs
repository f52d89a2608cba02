//! The test matrix: the sentry's scenario tests (the files below, unchanged) run again on the
//! ptrace platform. The launcher picks the platform from MANTLE_SENTRY_PLATFORM; this binary
//! sets it to `ptrace` before `main`, so every `run_sentry`/`sh_sentry` in the included files
//! goes through `platforms::ptrace::launch`. The same files built as their own test binaries
//! run on seccomp user notification. Add (or rename, remove) a scenario file here when one is
//! added beside them (or renamed, removed).

// Each scenario file declares `mod common;` itself, so the helpers are compiled once per file.
#![allow(clippy::duplicate_mod)]

/// Runs before `main` (an ELF constructor), so no test thread can observe the variable unset.
#[used]
#[link_section = ".init_array"]
static SELECT_PTRACE: extern "C" fn() = select_ptrace;

extern "C" fn select_ptrace() {
    std::env::set_var(sentry::platforms::ptrace::launch::PLATFORM_ENV, "ptrace");
}

#[test]
fn the_matrix_runs_on_ptrace() {
    assert!(sentry::platforms::ptrace::launch::selected());
}

#[path = "basic.rs"]
mod basic;
#[path = "confine.rs"]
mod confine;
#[path = "differential.rs"]
mod differential;
#[path = "dynamic.rs"]
mod dynamic;
#[path = "escape.rs"]
mod escape;
#[path = "permissions.rs"]
mod permissions;
#[path = "processes.rs"]
mod processes;
#[path = "procfs.rs"]
mod procfs;
