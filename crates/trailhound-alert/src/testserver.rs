//! Misbehaving HTTP receivers on 127.0.0.1 for the delivery tests: each runs on its own thread,
//! counts what it saw and what it managed to send, and lives as long as the test process.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Accepts, never reads nor answers.
    Stall,
    /// A 200 announcing a long body, then one byte every 20 ms.
    Trickle,
    /// A 200 without a length, then body bytes as fast as it can, up to `ENDLESS_LIMIT`.
    Endless,
    /// `status` with an empty body and the extra header line (`retry-after: 3600`).
    Status(u16, &'static str),
}

/// What a body-sending receiver stops at (keeps a broken client from exhausting the machine).
pub const ENDLESS_LIMIT: u64 = 64 << 20;

/// A running receiver: its URL and counters.
pub struct Receiver {
    pub url: String,
    /// Connections accepted.
    pub connections: Arc<AtomicU64>,
    /// Body bytes written successfully.
    pub body_sent: Arc<AtomicU64>,
}

impl Receiver {
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn body_sent(&self) -> u64 {
        self.body_sent.load(Ordering::SeqCst)
    }
}

/// The secret part of every test receiver's URL; must never be printed.
pub const SECRET_PATH: &str = "/services/T0SECRET/B0SECRET/hunter2token";

/// Starts a receiver.
pub fn start(behaviour: Behaviour) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("address").port();
    let connections = Arc::new(AtomicU64::new(0));
    let body_sent = Arc::new(AtomicU64::new(0));
    let (c, b) = (connections.clone(), body_sent.clone());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            match behaviour {
                Behaviour::Stall => held.push(stream),
                other => {
                    let b = b.clone();
                    std::thread::spawn(move || serve(stream, other, &b));
                }
            }
        }
    });
    Receiver {
        url: format!("http://127.0.0.1:{port}{SECRET_PATH}"),
        connections,
        body_sent,
    }
}

fn serve(mut stream: TcpStream, behaviour: Behaviour, body_sent: &AtomicU64) {
    read_request(&mut stream);
    match behaviour {
        Behaviour::Stall => {}
        Behaviour::Trickle => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n");
            while body_sent.load(Ordering::SeqCst) < ENDLESS_LIMIT && stream.write_all(b"x").is_ok() {
                body_sent.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Behaviour::Endless => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
            let chunk = vec![b'x'; 16 * 1024];
            while body_sent.load(Ordering::SeqCst) < ENDLESS_LIMIT && stream.write_all(&chunk).is_ok() {
                body_sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
        Behaviour::Status(status, header) => {
            let extra = if header.is_empty() {
                String::new()
            } else {
                format!("{header}\r\n")
            };
            let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n{extra}\r\n");
            let _ = stream.write_all(head.as_bytes());
        }
    }
}

/// Reads one request: its head, then `content-length` bytes of body.
fn read_request(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + length {
                return;
            }
        }
    }
}

/// A finding of the built-in StopLogging rule whose principal is `principal`.
pub fn finding(principal: &str) -> trailhound_finding::Finding {
    let record_text = serde_json::json!({"eventVersion": "1.09", "eventTime": "2026-11-20T22:03:15Z",
        "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging", "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.66", "eventID": "e1", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": principal}})
    .to_string();
    let rule = trailhound_rules::builtin_rules()
        .0
        .into_iter()
        .find(|r| r.id == "aws-cloudtrail-stop-logging")
        .expect("rule");
    let mut found = None;
    let _ = trailhound_event::for_each_record(&record_text, &mut |slot| {
        if let Ok(record) = slot.record {
            found = Some(trailhound_finding::Finding::new(
                rule.info(),
                &record,
                "s3://b/k",
                false,
            ));
        }
    });
    found.expect("a finding")
}
