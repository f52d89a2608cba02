//! sentry: syscall interception and emulation for mantle's sentry mode.
//!
//! * `platform` — the `Platform` trait (contract) and `platforms::seccomp_notify`;
//! * `table` — one row per x86_64 syscall; `bpf` compiles it into the filter `filter` installs;
//! * `emulate` — what the sentry does for emulated rows (paths through the gofer);
//! * `sentry` — `Sentry::serve_seccomp`, the worker pool;
//! * `launch` — a standalone gofer + workload + sentry launcher (tests, benchmarks);
//! * `fdpass` — handing the listener fd to the sentry; `features` — what the kernel supports.

pub mod bpf;
pub mod confine;
mod emulate;
mod error;
pub mod fdpass;
pub mod features;
pub mod filter;
pub mod launch;
pub mod platform;
pub mod platforms;
mod sentry;
mod strace;
mod syscalls;
pub mod table;

pub use error::Error;
pub use sentry::{Sentry, SentryConfig};
