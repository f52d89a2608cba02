//! sentry: syscall interception and emulation for sentry mode.
