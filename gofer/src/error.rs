//! The one error type of the gofer library.

use std::io;

use crate::protocol::DecodeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gofer answered the request with this errno.
    #[error("gofer replied: {}", io::Error::from_raw_os_error(*.0))]
    Remote(i32),
    /// A system call on the socket or during setup failed.
    #[error("gofer {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    /// A packet could not be decoded.
    #[error("gofer protocol: {0}")]
    Decode(#[from] DecodeError),
    /// The peer sent something the protocol does not allow here (wrong reply kind, fd count).
    #[error("gofer protocol: {0}")]
    Protocol(String),
    /// The peer closed the socket.
    #[error("gofer connection closed")]
    Closed,
    /// A confinement step (seccomp, Landlock, capabilities, no_new_privs) failed.
    #[error("gofer confinement, {step}: {source}")]
    Confine {
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The errno to hand to the workload for this failure (EIO when it is not the gofer's
    /// own answer).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Remote(e) => *e,
            Error::Io { source, .. } | Error::Confine { source, .. } => {
                source.raw_os_error().unwrap_or(libc::EIO)
            }
            _ => libc::EIO,
        }
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}
