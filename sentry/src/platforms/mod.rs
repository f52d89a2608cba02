//! Platform implementations. Only seccomp user notification exists today; a ptrace platform
//! would sit beside it behind the same `Platform` trait.

pub mod ptrace;
pub mod seccomp_notify;
