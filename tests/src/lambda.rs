//! The functions under `cargo lambda watch`: the real Lambda runtime API, locally.

use crate::process::{Service, command, free_port, workspace_root};
use serde_json::Value;
use std::io;
use std::path::Path;
use std::time::Duration;

pub struct LambdaWatch {
    pub service: Service,
    pub port: u16,
}

impl LambdaWatch {
    /// Starts `cargo lambda watch` over the workspace with `env` for every function.
    /// `reload`: rebuild and restart functions when the code changes (the local run).
    /// `release`: build them optimized. `port` 0 picks a free one.
    pub fn start(
        env: &[(String, String)],
        log_dir: &Path,
        reload: bool,
        release: bool,
        port: u16,
    ) -> io::Result<Self> {
        let port = if port == 0 { free_port() } else { port };
        let env_file = log_dir.join("functions.env");
        let lines: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        std::fs::write(&env_file, lines.join("\n") + "\n")?;
        let mut cmd = command("cargo");
        cmd.current_dir(workspace_root())
            .args([
                "lambda",
                "watch",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .arg("--env-file")
            .arg(&env_file)
            // The deployed HTTP API has no CORS of its own: only the functions' answers count.
            .arg("--disable-cors");
        if !reload {
            cmd.arg("--ignore-changes");
        }
        if release {
            cmd.arg("--release");
        }
        let mut service = Service::spawn("cargo-lambda-watch", cmd, log_dir)?;
        service.wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(300))?;
        Ok(Self { service, port })
    }

    /// Where `cargo lambda watch` serves an HTTP function (as a function URL).
    pub fn function_url(&self, function: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{function}", self.port)
    }

    /// Invokes a function through the Lambda Invoke API; the function's error as `Err`.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            self.port
        );
        let response = reqwest::Client::new()
            .post(url)
            .timeout(Duration::from_secs(600))
            .json(payload)
            .send()
            .await
            .map_err(|e| format!("invoking {function}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body: Value =
            serde_json::from_str(&text).map_err(|e| format!("{function} answered {status} {text:?}: {e}"))?;
        if !status.is_success() || body.get("errorType").is_some() {
            return Err(format!("{function} failed with {status}: {text}"));
        }
        Ok(body)
    }

    /// Invokes a function with `cargo lambda invoke --data-file`, as a user would.
    pub fn invoke_cli(&self, function: &str, data_file: &Path) -> Result<Value, String> {
        let out = command("cargo")
            .current_dir(workspace_root())
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(data_file)
            .args(["--output-format", "json"])
            .output()
            .map_err(|e| format!("running cargo lambda invoke: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "cargo lambda invoke {function} failed: {}{}",
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_str(stdout.trim())
            .map_err(|e| format!("cargo lambda invoke printed {stdout:?}: {e}"))
    }

    /// Invokes every function once, so that builds and cold starts happen before tests time
    /// anything: `export` through the Invoke API, the HTTP functions through their URLs
    /// (until each answers, for a function still being built can answer 500 meanwhile).
    pub async fn warm_up(&self) -> Result<(), String> {
        // An error response still means the function is built and running.
        let _ = self.invoke("export", &serde_json::json!({"Records": []})).await;
        let http = reqwest::Client::new();
        for function in ["destinations", "test-event"] {
            let url = format!("{}/api/v2/openapi.json", self.function_url(function));
            let mut answered = false;
            for _ in 0..120 {
                match http.get(&url).timeout(Duration::from_secs(60)).send().await {
                    Ok(r) if r.status().as_u16() < 500 => {
                        answered = true;
                        break;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
            if !answered {
                return Err(format!("{function} never answered under cargo lambda watch"));
            }
        }
        Ok(())
    }
}

impl LambdaWatch {
    /// The process of a function `cargo lambda watch` started (one that ran already), by
    /// its binary's name, among the descendants of this watch.
    pub fn function_pid(&self, function: &str) -> Option<u32> {
        let watch = self.service.pid();
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let exe = std::fs::read_link(entry.path().join("exe")).ok()?;
            if exe.file_name()?.to_str()? != function {
                return None;
            }
            // Its parents up to init: the watch's watchdog among them.
            let mut at = pid;
            while at > 1 {
                at = parent_of(at)?;
                if at == watch {
                    return Some(pid);
                }
            }
            None
        })
    }
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid …: the fields after the name's closing parenthesis.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// A process's open file descriptors now.
pub fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A process's peak resident memory (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
