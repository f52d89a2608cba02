//! mantle: an OCI container runtime with runc's command line and a syscall-emulating sentry
//! mode. `cli` holds the argument types, `commands` adapts them, `container` is the
//! lifecycle and `linux` the mechanisms.

mod cli;
mod commands;
mod config;
mod container;
#[macro_use]
mod logging;
mod linux;
mod sentry_mode;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    logging::init(
        cli.global.log.as_deref(),
        cli.global.log_format,
        cli.global.debug,
    );
    debug!("mantle {:?}", std::env::args().collect::<Vec<_>>());
    let code = match commands::dispatch(&cli.global, cli.command) {
        Ok(code) => code,
        Err(e) => {
            // One error record, with the whole context chain in one line (what conmon shows).
            let msg = format!("{e:#}");
            logging::log(logging::Level::Error, &msg);
            if !logging::to_stderr() {
                eprintln!("mantle: {msg}");
            }
            1
        }
    };
    std::process::exit(code);
}
