//! Test harness for the AWS-facing commands: moto's server on 127.0.0.1, started per test from
//! the project's virtualenv, and the environment that keeps the SDK on loopback.

#![allow(dead_code)]

pub mod http;
pub mod lookup_server;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};

use assert_cmd::Command;
use trailhound_aws::{Aws, AwsSettings};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with moto installed: `TRAILHOUND_PYTHON`, else the workspace's `.venv`.
fn python() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TRAILHOUND_PYTHON") {
        return Some(PathBuf::from(path));
    }
    let venv = root().join(".venv/bin/python");
    venv.exists().then_some(venv)
}

/// A free port on loopback (the listener is dropped before moto binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// moto's server for one test; stopped when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub recording: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto, or returns `None` (the test is skipped) when it is not installed and
    /// `TRAILHOUND_REQUIRE_MOTO` is unset. `.ci/run` installs it and sets the variable.
    pub fn start() -> Option<Moto> {
        Moto::start_with(&[])
    }

    /// [`Moto::start`] with extra environment for the server (e.g. `INITIAL_NO_AUTH_ACTION_COUNT`,
    /// after which moto checks IAM permissions).
    pub fn start_with(env: &[(&str, &str)]) -> Option<Moto> {
        let Some(python) = python() else {
            assert!(
                std::env::var_os("TRAILHOUND_REQUIRE_MOTO").is_none(),
                "moto is required (TRAILHOUND_REQUIRE_MOTO) but no .venv/bin/python or TRAILHOUND_PYTHON"
            );
            eprintln!("skipped: moto not installed (python3 -m venv .venv && .venv/bin/pip install 'moto[server]')");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let recording = dir.path().join("recording.jsonl");
        let port = free_port();
        let mut child = Process::new(python)
            .arg(root().join("crates/trailhound-cli/tests/support/moto_server.py"))
            .arg(port.to_string())
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts");
        let stdout = child.stdout.take().expect("moto's stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("moto says ready");
        assert_eq!(line.trim(), "ready", "moto did not start");
        Some(Moto {
            child,
            port,
            recording,
            _dir: dir,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK client setup talking to this server with fake credentials.
    pub fn aws(&self, runtime: &tokio::runtime::Runtime) -> Aws {
        let settings = AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(self.url()),
            max_attempts: 1,
            ..AwsSettings::default()
        };
        runtime
            .block_on(Aws::connect_static(&settings, "testing", "testing"))
            .expect("client")
    }

    /// The requests moto received since the last call, as recorded (method, url, headers, body).
    pub fn take_recorded(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.recording).unwrap_or_default();
        let _ = std::fs::write(&self.recording, "");
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect()
    }

    /// The requests moto received since the last call, as (method, url path and query).
    pub fn take_requests(&self) -> Vec<(String, String)> {
        self.take_recorded()
            .into_iter()
            .map(|v| {
                let url = v["url"].as_str().unwrap_or_default();
                let path = url.split_once("://").map_or(url, |(_, rest)| rest);
                let path = path.find('/').map_or("", |i| &path[i..]);
                (v["method"].as_str().unwrap_or_default().to_string(), path.to_string())
            })
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary, with an environment that can only reach the given endpoint: fake static
/// credentials, no profiles, no instance metadata.
pub fn trailhound() -> Command {
    Command::from_std(trailhound_process())
}

/// [`trailhound`] as a plain process, for a test that must signal it while it runs.
pub fn trailhound_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("trailhound"));
    for var in [
        "NO_COLOR",
        "TRAILHOUND_LOG",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_ENDPOINT_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn jsonl(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}
