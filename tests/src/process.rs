//! Background servers for tests and the local run: each in its own process group,
//! logging to a file outside the workspace, stopped when its [`Service`] drops, and in
//! any case when this process exits, however it exits.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The process-group leader of every service: `sh -c WATCHDOG NAME PROGRAM ARGS…`.
///
/// It keeps its stdin, a pipe from this process that nothing writes, as fd 3, and a
/// background reader waits for that pipe's end of file: this process has dropped the
/// [`Service`] or exited, even by SIGKILL, so the group gets SIGTERM, then SIGKILL after
/// five seconds. The command runs in the foreground (a background job would ignore
/// SIGINT and SIGQUIT); once it exits, the watchdog kills the rest of its group.
const WATCHDOG: &str = r#"
trap : TERM
exec 3<&0 </dev/null
{
    trap '' TERM
    while read -r line <&3; do :; done
    kill -TERM 0
    sleep 5
    kill -KILL 0
} &
"$@" 3<&-
echo "[watchdog] $0 exited with status $?; stopping its process group" >&2
kill -KILL 0
"#;

/// A started server process, with its process group: stopped on drop.
pub struct Service {
    name: String,
    /// The watchdog, whose stdin is the pipe it watches.
    child: Child,
    pub log: PathBuf,
}

impl Service {
    /// Starts `cmd` under a watchdog in a new process group, with stdout and stderr going
    /// to `<log_dir>/<name>.log`. Of `cmd`, its program, arguments, environment changes and
    /// directory carry over (not `env_clear`, `pre_exec` and the like).
    pub fn spawn(name: &str, cmd: Command, log_dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(log_dir)?;
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log)?;
        let mut watchdog = Command::new("sh");
        watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg(name)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => watchdog.env(key, value),
                None => watchdog.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            watchdog.current_dir(dir);
        }
        let child = watchdog
            .stdin(Stdio::piped())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// The watchdog's process ID, which is also the process group's.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `addr` accepts connections, failing early if the process died.
    pub fn wait_for_port(&mut self, addr: SocketAddr, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if !self.running() {
                return Err(io::Error::other(format!(
                    "{} exited before listening on {addr}; log {}:\n{}",
                    self.name,
                    self.log.display(),
                    self.log_tail()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} did not listen on {addr} within {timeout:?}; log {}",
                    self.name,
                    self.log.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text[text.floor_char_boundary(start)..].to_owned()
    }

    /// SIGTERM to the process group, then SIGKILL after five seconds.
    pub fn stop(&mut self) {
        // A watchdog that has exited took its group with it, and once reaped its ID
        // is no longer ours to signal.
        if !self.running() {
            return;
        }
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.running() {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }

    /// Whether the watchdog is still running (or at least not yet reaped).
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A fresh folder for logs, outside the workspace (which `cargo lambda watch` watches).
pub fn log_dir(label: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir()
        .join("data-export-segment")
        .join(format!("{label}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("log folder");
    dir
}

/// A command that finds the tools `scripts/tools.sh` installs (moto's server,
/// cargo-lambda, the Python packages) even when the caller's PATH lacks them.
pub fn command(program: &str) -> Command {
    let tools = std::env::var_os("DATA_EXPORT_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/data-export-segment/tools")));
    let mut cmd = Command::new(program);
    if let Some(bin) = tools.map(|t| t.join("bin")).filter(|b| b.is_dir()) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH entries"));
    }
    cmd
}

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    /// The live (not zombie) processes of a process group.
    fn members(group: u32) -> usize {
        let stats = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok());
        stats
            .filter(|stat| {
                // pid (comm) state ppid pgrp …
                let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
                fields[0] != "Z" && fields[2] == group.to_string()
            })
            .count()
    }

    fn gone_within(group: u32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while members(group) > 0 {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    #[test]
    fn dropping_a_service_stops_its_whole_group() {
        let service = Service::spawn("sleeper", shell("sleep 300 & sleep 300"), &log_dir("unit")).unwrap();
        let group = service.pid();
        std::thread::sleep(Duration::from_millis(200));
        assert!(members(group) >= 3, "the watchdog, its reader and the sleeps");
        let started = Instant::now();
        drop(service);
        assert!(started.elapsed() < Duration::from_secs(4), "stopped by SIGTERM");
        assert!(gone_within(group, Duration::from_secs(1)));
    }

    #[test]
    fn the_group_goes_when_the_pipe_closes_as_on_any_exit_of_this_process() {
        let mut service = Service::spawn("orphan", shell("sleep 300 & sleep 300"), &log_dir("unit")).unwrap();
        let group = service.pid();
        std::thread::sleep(Duration::from_millis(200));
        // What the kernel does to the pipe when this process exits, even by SIGKILL.
        drop(service.child.stdin.take());
        assert!(gone_within(group, Duration::from_secs(3)));
    }

    #[test]
    fn a_command_that_exits_fails_the_wait_at_once_and_takes_its_group_along() {
        let dir = log_dir("unit");
        let mut service = Service::spawn("crash", shell("sleep 300 & echo boom; exit 3"), &dir).unwrap();
        let group = service.pid();
        // A port no test server binds (a free port could be taken by another test's
        // server meanwhile, and then the wait would succeed).
        let addr = ([127, 0, 0, 1], 1).into();
        let started = Instant::now();
        let error = service
            .wait_for_port(addr, Duration::from_secs(30))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            error.contains("boom") && error.contains("exited with status 3"),
            "{error}"
        );
        assert!(gone_within(group, Duration::from_secs(1)));
    }

    #[test]
    fn the_command_keeps_its_signals_and_its_environment() {
        let dir = log_dir("unit");
        let mut cmd = shell("echo \"$GREETING from $(pwd)\"; grep SigIgn /proc/self/status");
        cmd.env("GREETING", "hello").current_dir(&dir);
        let mut service = Service::spawn("env", cmd, &dir).unwrap();
        let _ = service.wait_for_port(([127, 0, 0, 1], free_port()).into(), Duration::from_secs(5));
        let log = service.log_tail();
        assert!(log.contains(&format!("hello from {}", dir.display())), "{log}");
        let ignored = log
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .expect("SigIgn");
        let ignored = u64::from_str_radix(ignored.trim(), 16).unwrap();
        let (int, quit, term) = (1 << 1, 1 << 2, 1 << 14);
        assert_eq!(
            ignored & (int | quit | term),
            0,
            "SIGINT, SIGQUIT and SIGTERM reach the command"
        );
    }
}
