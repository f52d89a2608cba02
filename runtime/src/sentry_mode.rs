//! Wiring of sentry mode into the lifecycle (see the sentry crate).

use crate::container::builder::Sandbox;

/// Hook run in the init right before execve.
pub fn before_exec(mode: Sandbox) -> Option<Box<dyn Fn() -> Result<(), String>>> {
    match mode {
        Sandbox::Native => None,
        Sandbox::Sentry => Some(Box::new(|| Err("sentry mode is not available in this build yet".to_string()))),
    }
}

/// What `mantle features` reports about sentry mode.
pub fn features() -> serde_json::Value {
    serde_json::json!({ "sandboxes": ["native"], "sentry": "not available in this build yet" })
}

/// The sentry's syscall table, as text.
pub fn syscall_table() -> String {
    "sentry mode is not available in this build yet".into()
}
