//! `run ROOTFS ARGV...`: run a command under the sentry with strace on stderr.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: run ROOTFS ARGV...");
        std::process::exit(2);
    }
    let argv: Vec<&str> = args[1..].iter().map(|s| s.as_str()).collect();
    let cfg = sentry::SentryConfig {
        strace: std::env::var_os("STRACE").is_some(),
        ..Default::default()
    };
    match sentry::launch::run_command(&argv, std::path::Path::new(&args[0]), cfg) {
        Ok(st) => {
            eprintln!("status: {st}");
            std::process::exit(
                st.code().unwrap_or(
                    128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0),
                ),
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
