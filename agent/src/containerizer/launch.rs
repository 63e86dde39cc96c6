//! Starting a task's process: its sandbox, stdio, environment and working
//! directory, a new session, and (for the cgroups containerizer) joining its
//! cgroups between fork and exec, so that not one instruction of the task
//! runs outside them.

use super::{ContainerError, ContainerId, sandbox_dir};
use agora_proto::TaskInfo;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tracing::warn;

/// Creates the sandbox of `id` under `work_dir` and returns its path.
pub(crate) fn create_sandbox(work_dir: &Path, id: &ContainerId) -> Result<PathBuf, ContainerError> {
    let dir = sandbox_dir(work_dir, id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ContainerError::Launch(format!("cannot create the sandbox {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Starts `task` in `sandbox` (its working directory; stdout and stderr go
/// to files there), in a new session, after writing itself into each of the
/// `cgroup_procs` files.
pub(crate) fn spawn(
    task: &TaskInfo,
    sandbox: &Path,
    cgroup_procs: &[PathBuf],
) -> Result<tokio::process::Child, ContainerError> {
    let output = |name: &str| {
        let path = sandbox.join(name);
        File::create(&path).map_err(|e| ContainerError::Launch(format!("cannot create {}: {e}", path.display())))
    };
    let (stdout, stderr) = (output("stdout")?, output("stderr")?);
    // Opened here, in the parent (O_CLOEXEC, as std opens every file), so the
    // child only writes to them.
    let procs: Vec<File> = cgroup_procs
        .iter()
        .map(|path| {
            OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| ContainerError::Launch(format!("cannot open {}: {e}", path.display())))
        })
        .collect::<Result<_, _>>()?;
    let command = &task.command;
    if let Some(user) = &command.user
        && Some(user.as_str()) != current_user().as_deref()
    {
        warn!(%user, task_id = %task.task_id, "running tasks as another user is not supported; the task runs as the agent's user");
    }
    let argv = command.argv();
    let Some((program, args)) = argv.split_first() else {
        return Err(ContainerError::UnsupportedCommand("empty command".to_owned()));
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(sandbox)
        .envs(&command.environment)
        .env("MESOS_SANDBOX", sandbox)
        .env("AGORA_SANDBOX", sandbox)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    let fds: Vec<RawFd> = procs.iter().map(AsRawFd::as_raw_fd).collect();
    join_before_exec(&mut cmd, fds);
    let child = tokio::process::Command::from(cmd)
        .spawn()
        .map_err(|e| ContainerError::Launch(format!("cannot run {program:?}: {e}")))?;
    drop(procs);
    Ok(child)
}

/// Makes the child start a new session (so the task is its own process
/// group, apart from the agent's) and write `0` (itself) into each
/// `cgroup.procs` file in `fds` before it execs.
#[allow(unsafe_code)]
fn join_before_exec(cmd: &mut Command, fds: Vec<RawFd>) {
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe functions may be called. It calls only `setsid` and
    // `write` (both async-signal-safe per signal-safety(7)), iterates a Vec
    // allocated before the fork (no allocation, no lock), and builds its
    // errors with `io::Error::last_os_error`, which reads errno and does not
    // allocate. The fds stay open in the parent until `spawn` returns, so
    // they are valid in the child; they are O_CLOEXEC, so the task does not
    // inherit them.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            for &fd in &fds {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// The name of the user this process runs as.
fn current_user() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}
