//! gofer: the file broker of sentry mode. See README.md in this folder for the protocol spec
//! and the security argument.
//!
//! * `protocol` — the message enums and their encoding;
//! * `wire` — packets and SCM_RIGHTS over SOCK_SEQPACKET;
//! * `client` — what the sentry calls;
//! * `server` — what the gofer process runs;
//! * `confine` — how the gofer process locks itself down before serving.

pub mod client;
pub mod confine;
mod error;
pub mod protocol;
pub mod server;
mod sys;
pub mod wire;

pub use error::Error;
