//! Starting a task's process: its sandbox, stdio, environment and working
//! directory, a new session, (for the cgroups containerizer) joining its
//! cgroups between fork and exec, so that not one instruction of the task
//! runs outside them, and its waiter.
//!
//! **The waiter.** The process the agent forks does not exec the task: once
//! in its session and cgroups it forks again; the grandchild execs the task,
//! and the child stays as the task's *waiter*: its parent, which waits for
//! it, records how it ended in the task's exit status file
//! ([`exit_file`](crate::exit_file)) and then ends the same way (the task's
//! status, or the task's signal). The waiter is the process the agent
//! watches and checkpoints (the session leader, so its pid is the task's
//! process group id), and it outlives a dead agent, so the task's status is
//! on disk whenever the agent comes back. It ignores SIGTERM, SIGINT, SIGHUP
//! and SIGQUIT (a polite kill is for the task; the waiter stays to record
//! its end) but not SIGKILL, so the kill sequence (SIGTERM to every process,
//! grace, SIGKILL to all) still ends it. It holds no file open and shields
//! itself from the OOM killer (`oom_score_adj` -1000, where allowed), which
//! would otherwise count the agent's pages it shares.

use super::{ContainerError, ContainerId, sandbox_dir};
use crate::exit_file::{self, TaskExit};
use agora_proto::TaskInfo;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
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
/// `cgroup_procs` files, under a waiter that records its exit status at
/// `exit_file` (see the [module docs](self)). The child returned is the
/// waiter.
pub(crate) fn spawn(
    task: &TaskInfo,
    sandbox: &Path,
    cgroup_procs: &[PathBuf],
    exit_file: &Path,
) -> Result<tokio::process::Child, ContainerError> {
    let waiter = WaiterFiles::prepare(exit_file)?;
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
    join_before_exec(&mut cmd, fds, waiter);
    let child = tokio::process::Command::from(cmd)
        .spawn()
        .map_err(|e| ContainerError::Launch(format!("cannot run {program:?}: {e}")))?;
    drop(procs);
    Ok(child)
}

/// The waiter's files as C strings, made before the fork (the waiter may
/// not allocate).
#[derive(Debug)]
struct WaiterFiles {
    /// The exit status file.
    file: CString,
    /// Its temporary, renamed over it once whole.
    temp: CString,
    /// Their directory, flushed after the rename.
    dir: CString,
}

impl WaiterFiles {
    /// Creates the run directory of `exit_file` and removes what a previous
    /// task of the same id recorded there.
    fn prepare(exit_file: &Path) -> Result<Self, ContainerError> {
        let fail = |e: &dyn std::fmt::Display| ContainerError::Launch(e.to_string());
        let dir = exit_file.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| fail(&format!("cannot create the run directory {}: {e}", dir.display())))?;
        exit_file::clear(exit_file).map_err(|e| fail(&e))?;
        let c_path = |path: &Path| {
            CString::new(path.as_os_str().as_bytes())
                .map_err(|_| fail(&format!("the path {} holds a NUL byte", path.display())))
        };
        Ok(Self {
            file: c_path(exit_file)?,
            temp: c_path(&exit_file::temp_path(exit_file))?,
            dir: c_path(dir)?,
        })
    }
}

/// Makes the child start a new session (so the task is its own process
/// group, apart from the agent's), write `0` (itself) into each
/// `cgroup.procs` file in `fds`, then fork: the grandchild returns to exec
/// the task; the child becomes the task's waiter (see the [module
/// docs](self)), records its end in `files` and never returns.
#[allow(unsafe_code)]
fn join_before_exec(cmd: &mut Command, fds: Vec<RawFd>, files: WaiterFiles) {
    /// The waiter: waits for `task`, records how it ended, ends the same
    /// way. Only async-signal-safe calls: this is a forked copy of the
    /// multithreaded agent.
    fn wait_and_record(task: libc::pid_t, files: &WaiterFiles) -> ! {
        // SAFETY: called only in the forked child, where it makes only
        // async-signal-safe system calls (signal, close_range/close,
        // getrlimit, open, write, waitpid, fsync, rename, setrlimit, kill,
        // getpid, _exit) on pointers to memory it owns (C strings made before
        // the fork, stack buffers), and runs `exit_file::encode`, which
        // allocates nothing and cannot panic.
        unsafe {
            // Handlers the agent installed (tokio's SIGCHLD, the shutdown
            // signals) would run agent code here, writing to descriptors this
            // process closes below: back to the defaults first (SIGCHLD's
            // default keeps the task's status for `waitpid`).
            for signal in 1..65 {
                libc::signal(signal, libc::SIG_DFL);
            }
            // A polite kill is for the task; the waiter stays to record it.
            for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
                libc::signal(signal, libc::SIG_IGN);
            }
            // Hold nothing open: the task's stdio, the cgroup files, and
            // above all std's exec-error pipe, whose every copy must close
            // before the agent's `spawn` returns.
            let none: libc::c_uint = 0;
            if libc::syscall(libc::SYS_close_range, none, libc::c_uint::MAX, none) != 0 {
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0 {
                    limit.rlim_cur.min(1 << 20)
                } else {
                    1024
                };
                for fd in 0..libc::c_int::try_from(max).unwrap_or(1024) {
                    libc::close(fd);
                }
            }
            // The OOM killer counts the agent's pages this copy shares as
            // its own, and would pick it before a slightly smaller task.
            // (Lowering needs CAP_SYS_RESOURCE; without it the write fails.)
            let adj = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if adj >= 0 {
                libc::write(adj, b"-1000".as_ptr().cast(), 5);
                libc::close(adj);
            }
            let mut status: libc::c_int = 0;
            loop {
                let reaped = libc::waitpid(task, &raw mut status, 0);
                if reaped == task {
                    break;
                }
                if reaped == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                // Cannot happen (the task is our only child); nothing to record.
                libc::_exit(127);
            }
            let exit = if libc::WIFEXITED(status) {
                TaskExit::Exited(libc::WEXITSTATUS(status))
            } else {
                TaskExit::Signaled(libc::WTERMSIG(status))
            };
            let mut line = [0_u8; exit_file::MAX_LEN];
            let len = exit_file::encode(exit, &mut line);
            let mode: libc::c_uint = 0o644;
            let fd = libc::open(
                files.temp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
                mode,
            );
            if fd >= 0 {
                // One small write to a fresh regular file is whole unless
                // the disk is full; a short one is not renamed into place.
                let whole = usize::try_from(libc::write(fd, line.as_ptr().cast(), len)) == Ok(len);
                let flushed = whole && libc::fsync(fd) == 0;
                libc::close(fd);
                if flushed && libc::rename(files.temp.as_ptr(), files.file.as_ptr()) == 0 {
                    let dir = libc::open(files.dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC);
                    if dir >= 0 {
                        libc::fsync(dir);
                        libc::close(dir);
                    }
                }
            }
            // End as the task did, so that the agent that reaps the waiter
            // sees the task's status even if the file could not be written.
            match exit {
                TaskExit::Exited(code) => libc::_exit(code),
                TaskExit::Signaled(signal) => {
                    // No core dump of this copy of the agent.
                    let no_core = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    libc::setrlimit(libc::RLIMIT_CORE, &raw const no_core);
                    libc::signal(signal, libc::SIG_DFL);
                    libc::kill(libc::getpid(), signal);
                    // A signal whose default is not to end a process.
                    libc::_exit(128_i32.saturating_add(signal))
                }
            }
        }
    }

    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe functions may be called. It calls only `setsid`,
    // `write` and `fork` (async-signal-safe per signal-safety(7); this fork
    // is glibc's, and the fork std made just before left glibc's internal
    // locks reset in this single-threaded child, so its atfork handlers find
    // them free), iterates a Vec allocated before the fork (no allocation, no
    // lock), and builds its errors with `io::Error::last_os_error`, which
    // reads errno and does not allocate. The fds stay open in the parent
    // until `spawn` returns, so they are valid in the child; they are
    // O_CLOEXEC, so the task does not inherit them. The waiter's side is
    // `wait_and_record` above, which never returns into std's code.
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
            match libc::fork() {
                -1 => Err(std::io::Error::last_os_error()),
                // The task: std execs its command.
                0 => Ok(()),
                task => wait_and_record(task, &files),
            }
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
