//! Command-line types only (clap derive). No logic lives here: `commands/` adapts these
//! into calls on the container library, so the CLI surface can be read in one place.
//!
//! The surface mirrors runc's, because podman (conmon), containerd (go-runc) and CRI-O
//! drive runtimes by that command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "mantle",
    version,
    about = "mantle: an OCI container runtime with a syscall-emulating sentry mode"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Directory holding the state of containers.
    #[arg(long, global = true, default_value = "/run/mantle")]
    pub root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log each lifecycle step (and, in sentry mode, each emulated syscall).
    #[arg(long, global = true)]
    pub debug: bool,
    /// Place cgroups with the systemd driver (`slice:prefix:name` paths).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Isolation mode: native (namespaces, like runc) or sentry (syscalls emulated).
    #[arg(long, global = true, value_enum)]
    pub sandbox: Option<Sandbox>,
    /// Interception platform of sentry mode.
    #[arg(long, global = true, value_enum)]
    pub platform: Option<Platform>,
    /// In sentry mode, log every emulated syscall.
    #[arg(long, global = true)]
    pub strace: bool,
    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    Native,
    Sentry,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Seccomp,
    Ptrace,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Start the user process of a created container.
    Start(IdArg),
    /// Print the state of a container as JSON.
    State(IdArg),
    /// Send a signal to the container's init (or all its processes).
    Kill(KillArgs),
    /// Delete a container and release its resources.
    Delete(DeleteArgs),
    /// Create and start a container, wait for it, and delete it.
    Run(RunArgs),
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// List containers.
    List(ListArgs),
    /// List processes of a container.
    Ps(PsArgs),
    /// Freeze all processes of a container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Update the resource limits of a running container.
    Update(UpdateArgs),
    /// Stream container events and statistics as JSON.
    Events(EventsArgs),
    /// Print the features this build supports (OCI features document).
    Features,
    /// Write a default config.json.
    Spec(SpecArgs),
    /// Print the sentry's syscall table.
    Syscalls,
    /// Internal: the file broker of a sentry-mode container.
    #[command(hide = true)]
    Gofer(GoferArgs),
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the OCI bundle.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File the container init's pid is written to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) into the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return after start instead of waiting for the container.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long = "keep")]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process of the container, not only its init.
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Signal name or number (default SIGTERM).
    pub signal: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container if it is still running.
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// JSON file with the process to run (OCI process object).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    /// Environment variables (KEY=VALUE), repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    #[arg(long)]
    pub cwd: Option<String>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids, repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Capabilities to add, repeatable.
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility.
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long = "apparmor", hide = true)]
    pub apparmor: Option<String>,
    #[arg(long = "ignore-paused", hide = true)]
    pub ignore_paused: bool,
    pub id: String,
    /// Command and arguments (when --process is not given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    pub id: String,
    /// Options passed to ps(1) in table format.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// JSON file with linux.resources ("-" for stdin).
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one stats snapshot and exit.
    #[arg(long)]
    pub stats: bool,
    /// Stats interval (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a rootless container (user namespace, no cgroup limits).
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Args, Debug)]
pub struct GoferArgs {
    /// Inherited fd of the socket to the sentry.
    #[arg(long)]
    pub sock_fd: i32,
    /// Inherited fd of the container root directory.
    #[arg(long)]
    pub root_fd: i32,
    /// JSON of the gofer configuration.
    #[arg(long)]
    pub config: String,
}
