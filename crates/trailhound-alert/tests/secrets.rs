//! Webhook URLs are secrets: no delivery error and no log line shows them, whatever the receiver
//! does. In its own test binary so the process-wide log subscriber sees every event.

#[allow(dead_code)]
#[path = "../src/testserver.rs"]
mod testserver;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use testserver::{Behaviour, SECRET_PATH};
use trailhound_alert::{AlertRun, AlertSettings, Secret, Target, send};

/// Everything written through `tracing`.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn delivery_errors_and_logs_never_show_the_url() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        format!("http://127.0.0.1:{port}{SECRET_PATH}")
    };
    let receivers = [
        testserver::start(Behaviour::Stall),
        testserver::start(Behaviour::Trickle),
        testserver::start(Behaviour::Endless),
        testserver::start(Behaviour::Status(500, "")),
        testserver::start(Behaviour::Status(404, "")),
        testserver::start(Behaviour::Status(429, "retry-after: 1")),
    ];
    let mut urls: Vec<String> = receivers.iter().map(|r| r.url.clone()).collect();
    urls.push(closed);
    urls.push(format!("http://[::1]:1{SECRET_PATH}?token=hunter2token"));
    urls.push(format!("https://127.0.0.1:1{SECRET_PATH}"));
    let settings = AlertSettings {
        interval: Duration::ZERO,
        deadline: Duration::from_millis(500),
        budget: Duration::from_secs(2),
        ..AlertSettings::default()
    };
    let run = AlertRun {
        what: "hunt".into(),
        at: "2026-11-20T22:05:00Z".into(),
    };
    let findings = [testserver::finding("arn:aws:iam::1:user/x")];
    for url in &urls {
        let targets = [Target::Webhook(Secret::new(url.as_str()))];
        let delivery = send(None, &targets, &run, &findings, &settings);
        let error = tokio::time::timeout(Duration::from_secs(40), delivery)
            .await
            .expect("bounded")
            .expect_err("every receiver fails");
        let shown = format!("{error} {error:?}");
        let authority = url.split('/').nth(2).unwrap_or_default();
        assert!(!shown.contains("hunter2") && !shown.contains(authority), "{shown}");
    }
    let logs = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(logs.contains("retrying"), "the logs were captured: {logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}
