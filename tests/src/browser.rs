//! A real headless browser for the tests: Debian's `chromium` driven through
//! `chromedriver` (WebDriver), both installed by `scripts/tools.sh`. Chromium runs with a
//! fresh profile, without the sandbox (tests run as root) and without the background
//! networking this machine's closed network would refuse.

use crate::process::{Service, free_port};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Map, json};
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub struct Browser {
    driver: Service,
    port: u16,
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port; its log goes to `log_dir`.
    pub fn start(log_dir: &Path) -> io::Result<Self> {
        let port = free_port();
        let mut cmd = Command::new(driver_program());
        cmd.arg(format!("--port={port}")).arg("--allowed-ips=127.0.0.1");
        let mut driver = Service::spawn("chromedriver", cmd, log_dir)?;
        driver.wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(30))?;
        Ok(Self { driver, port })
    }

    /// A new browser window with its own empty profile.
    pub async fn session(&self) -> Result<Client, String> {
        let profile = std::env::temp_dir().join(format!("chromium-{}", uuid::Uuid::new_v4().simple()));
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let mut capabilities = Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium_program(), "args": args}),
        );
        ClientBuilder::rustls()
            .map_err(|e| e.to_string())?
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .map_err(|e| {
                format!(
                    "a chromium session through chromedriver: {e}; log {}",
                    self.driver.log.display()
                )
            })
    }
}

fn driver_program() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

fn chromium_program() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}
