//! Background servers for tests and the local run: each in its own process group,
//! logging to a file outside the workspace, stopped by its own PID.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Process groups still running, stopped when the process exits (see `stop_all_at_exit`).
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
static AT_EXIT: Once = Once::new();

/// A started server process.
pub struct Service {
    name: String,
    child: Child,
    pub log: PathBuf,
}

impl Service {
    /// Starts `cmd` in a new process group with stdout and stderr going to `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(log_dir)?;
        let log = log_dir.join(format!("{name}.log"));
        let file = File::create(&log)?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        AT_EXIT.call_once(|| unsafe {
            // SAFETY: registering a plain extern "C" function that only reads a static.
            libc::atexit(stop_all_at_exit);
        });
        RUNNING.lock().unwrap().push(child.id() as i32);
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

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
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited with {status} before listening on {addr}; log {}:\n{}",
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
        let pid = self.child.id() as i32;
        if self.child.try_wait().ok().flatten().is_none() {
            signal_group(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Children of the leader may outlive it; the group goes in any case.
        signal_group(pid, libc::SIGKILL);
        let _ = self.child.wait();
        RUNNING.lock().unwrap().retain(|&p| p != pid);
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) on a process group this process created.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

extern "C" fn stop_all_at_exit() {
    if let Ok(groups) = RUNNING.lock() {
        for &pgid in groups.iter() {
            signal_group(pgid, libc::SIGTERM);
        }
        if !groups.is_empty() {
            std::thread::sleep(Duration::from_millis(300));
        }
        for &pgid in groups.iter() {
            signal_group(pgid, libc::SIGKILL);
        }
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
