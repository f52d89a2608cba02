//! The error type of the sentry library.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel lacks seccomp user notification (Linux < 5.0, or seccomp disabled).
    #[error(
        "seccomp user notification is not available on this kernel ({0}); \
         use the ptrace platform instead"
    )]
    NoUserNotif(io::Error),
    /// A system call the sentry itself makes failed.
    #[error("sentry {context}: {source}")]
    Sys {
        context: &'static str,
        #[source]
        source: io::Error,
    },
    /// The syscall table could not be turned into a filter (a bug in the table, caught early).
    #[error("sentry filter: {0}")]
    Filter(String),
    /// The gofer could not be reached or misbehaved.
    #[error("sentry: {0}")]
    Gofer(#[from] gofer::Error),
    /// Bad input from the caller (empty argv, unusable rootfs, ...).
    #[error("sentry: {0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn sys(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Sys { context, source }
    }
    pub(crate) fn last(context: &'static str) -> Error {
        Error::Sys {
            context,
            source: io::Error::last_os_error(),
        }
    }
}
