//! Linux mechanisms, one module per concern. Nothing here knows about the CLI.

pub mod capabilities;
pub mod cgroupfs;
pub mod console;
pub mod copyup;
pub mod hooks;
pub mod init;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod selfexe;
pub mod sync;
