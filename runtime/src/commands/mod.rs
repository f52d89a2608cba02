//! Thin adapters from CLI arguments to the container library. Each returns the process exit
//! code on success; errors go up to `main`, which logs exactly one error record.

mod info;

use crate::cli::{self, Command, GlobalOpts};
use crate::container::builder::{ContainerBuilder, Sandbox};
use crate::container::exec::{self as cexec, ExecRequest};
use crate::container::{self, Container};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Process, Spec};

pub fn dispatch(g: &GlobalOpts, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Create(a) => create(g, a).map(|_| 0),
        Command::Start(a) => Container::load(&g.root, &a.id)?.start().map(|_| 0),
        Command::State(a) => {
            let c = Container::load(&g.root, &a.id)?;
            println!("{}", serde_json::to_string_pretty(&c.oci_state())?);
            Ok(0)
        }
        Command::Kill(a) => {
            let sig = container::parse_signal(a.signal.as_deref().unwrap_or("SIGTERM"))?;
            Container::load(&g.root, &a.id)?.kill(sig, a.all).map(|_| 0)
        }
        Command::Delete(a) => delete(g, &a.id, a.force).map(|_| 0),
        Command::Run(a) => run(g, a),
        Command::Exec(a) => exec(g, a),
        Command::List(a) => info::list(g, &a),
        Command::Ps(a) => info::ps(g, &a),
        Command::Pause(a) => Container::load(&g.root, &a.id)?.pause().map(|_| 0),
        Command::Resume(a) => Container::load(&g.root, &a.id)?.resume().map(|_| 0),
        Command::Update(a) => info::update(g, &a),
        Command::Events(a) => info::events(g, &a),
        Command::Features => info::features(),
        Command::Spec(a) => info::spec(&a),
        Command::Syscalls => info::syscalls(),
        Command::Gofer(_) => bail!("the gofer is started by mantle itself"),
    }
}

fn builder(g: &GlobalOpts, a: &cli::CreateArgs) -> ContainerBuilder {
    ContainerBuilder {
        id: a.id.clone(),
        root: g.root.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        systemd_cgroup: g.systemd_cgroup,
        sandbox: g.sandbox.map(|s| match s {
            cli::Sandbox::Native => Sandbox::Native,
            cli::Sandbox::Sentry => Sandbox::Sentry,
        }),
        platform: g.platform.map(|p| match p {
            cli::Platform::Seccomp => crate::sentry_mode::PlatformKind::Seccomp,
            cli::Platform::Ptrace => crate::sentry_mode::PlatformKind::Ptrace,
        }),
        strace: g.strace,
        debug: g.debug,
        log: g.log.clone(),
    }
}

fn create(g: &GlobalOpts, a: cli::CreateArgs) -> Result<()> {
    crate::linux::selfexe::ensure_sealed().map_err(|e| anyhow!(e))?;
    builder(g, &a).create()?;
    Ok(())
}

/// delete; a container that does not exist is an error, except that `--force` also cleans a
/// state directory left without state by a runtime killed mid-create, and succeeds when there
/// is nothing to delete (runc's behaviour: podman force-deletes after a failed create and
/// would otherwise print a spurious "does not exist" next to the real error).
fn delete(g: &GlobalOpts, id: &str, force: bool) -> Result<()> {
    match Container::load(&g.root, id) {
        Ok(c) => c.delete(force),
        Err(e) => {
            if !force || crate::container::builder::validate_id(id).is_err() {
                return Err(e);
            }
            let dir = g.root.join(id);
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("remove {}", dir.display()))?;
            }
            Ok(())
        }
    }
}

fn run(g: &GlobalOpts, a: cli::RunArgs) -> Result<i32> {
    crate::linux::selfexe::ensure_sealed().map_err(|e| anyhow!(e))?;
    let set = cexec::block_signals();
    let id = a.create.id.clone();
    let mut create_args = a.create.clone();
    let console = foreground_console(g, &a, &mut create_args)?;
    let state = builder(g, &create_args).create()?;
    let raw = match console {
        Some(c) => Some(crate::container::tty::proxy(c.receive_master()?)?),
        None => None,
    };
    let mut c = Container::load(&g.root, &id)?;
    if let Err(e) = c.start() {
        let _ = c.delete(true);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    let status = cexec::wait_forwarding(state.pid, &set)?;
    if let Some(r) = raw {
        r.finish();
    }
    if let Ok(mut c) = Container::load(&g.root, &id) {
        c.state.exit_reason =
            crate::container::cgroup::exit_reason(c.state.cgroup.as_ref(), status);
        crate::debug!(
            "container {id} exited: {}",
            c.state.exit_reason.as_deref().unwrap_or("unknown")
        );
        if a.keep {
            c.save()?;
        } else {
            c.delete(true)?;
        }
    }
    Ok(cexec::exit_code(status))
}

/// A terminal container run in the foreground without --console-socket: mantle holds the pty.
fn foreground_console(
    g: &GlobalOpts,
    a: &cli::RunArgs,
    c: &mut cli::CreateArgs,
) -> Result<Option<crate::container::tty::ConsoleSocket>> {
    if a.detach || c.console_socket.is_some() {
        return Ok(None);
    }
    let bundle = std::fs::canonicalize(&c.bundle)
        .with_context(|| format!("bundle {}", c.bundle.display()))?;
    let (spec, _) = crate::config::load(&bundle)?;
    if !spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        return Ok(None);
    }
    let sock = crate::container::tty::ConsoleSocket::new(&g.root, &c.id)?;
    c.console_socket = Some(sock.path.clone());
    Ok(Some(sock))
}

fn exec(g: &GlobalOpts, a: cli::ExecArgs) -> Result<i32> {
    crate::linux::selfexe::ensure_sealed().map_err(|e| anyhow!(e))?;
    let c = Container::load(&g.root, &a.id)?;
    let process = exec_process(&c, &a)?;
    let set = cexec::block_signals();
    // A terminal in the foreground without --console-socket: mantle holds the pty (as runc).
    let own_console = match (
        process.terminal().unwrap_or(false),
        &a.console_socket,
        a.detach,
    ) {
        (true, None, false) => Some(crate::container::tty::ConsoleSocket::new(
            &g.root,
            &format!("exec-{}", a.id),
        )?),
        _ => None,
    };
    let console_socket = a
        .console_socket
        .clone()
        .or_else(|| own_console.as_ref().map(|c| c.path.clone()));
    let pid = cexec::exec(
        &c,
        ExecRequest {
            process,
            console_socket,
            preserve_fds: a.preserve_fds,
        },
    )?;
    if let Some(p) = &a.pid_file {
        crate::container::builder::write_pid_file(p, pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    let raw = match own_console {
        Some(c) => Some(crate::container::tty::proxy(c.receive_master()?)?),
        None => None,
    };
    let status = cexec::wait_forwarding(pid, &set)?;
    if let Some(r) = raw {
        r.finish();
    }
    Ok(cexec::exit_code(status))
}

/// The process for `exec`: from --process, or the container's own process with the command
/// line and flags applied (runc's behaviour).
fn exec_process(c: &Container, a: &cli::ExecArgs) -> Result<Process> {
    if let Some(p) = &a.process {
        let text =
            std::fs::read(p).with_context(|| format!("read process file {}", p.display()))?;
        let v: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| anyhow!("process file {}: malformed JSON: {e}", p.display()))?;
        let proc: Process = serde_path_to_error::deserialize(v).map_err(|e| {
            anyhow!(
                "process file {}: field `{}`: {}",
                p.display(),
                e.path(),
                e.inner()
            )
        })?;
        if proc.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("process file {}: args must not be empty", p.display());
        }
        return Ok(proc);
    }
    if a.command.is_empty() {
        bail!("exec: a command or --process is required");
    }
    let spec: Spec = serde_json::from_value(c.state.config.clone()).context("stored config")?;
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(a.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.into());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let mut user = p.user().clone();
        user.set_uid(
            uid.parse()
                .map_err(|_| anyhow!("--user {u:?}: uid must be numeric"))?,
        );
        user.set_gid(
            gid.parse()
                .map_err(|_| anyhow!("--user {u:?}: gid must be numeric"))?,
        );
        if !a.additional_gids.is_empty() {
            user.set_additional_gids(Some(a.additional_gids.clone()));
        }
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        add_caps(&mut p, &a.cap)?;
    }
    Ok(p)
}

/// `exec --cap X`: X joins the bounding, effective and permitted sets (as with runc).
fn add_caps(p: &mut Process, names: &[String]) -> Result<()> {
    use oci_spec::runtime::{Capability, LinuxCapabilities};
    let mut c: LinuxCapabilities = p.capabilities().clone().unwrap_or_default();
    for n in names {
        // runc's spelling is "CAP_NET_RAW" (the config.json form); "NET_RAW" is accepted too.
        let full = if n.starts_with("CAP_") {
            n.clone()
        } else {
            format!("CAP_{n}")
        };
        let cap: Capability = serde_json::from_value(serde_json::Value::String(full))
            .map_err(|_| anyhow!("--cap {n:?}: unknown capability"))?;
        for set in [
            c.bounding().clone(),
            c.effective().clone(),
            c.permitted().clone(),
        ]
        .iter_mut()
        .enumerate()
        {
            let mut s = set.1.clone().unwrap_or_default();
            s.insert(cap);
            match set.0 {
                0 => c.set_bounding(Some(s)),
                1 => c.set_effective(Some(s)),
                _ => c.set_permitted(Some(s)),
            };
        }
    }
    p.set_capabilities(Some(c));
    Ok(())
}
