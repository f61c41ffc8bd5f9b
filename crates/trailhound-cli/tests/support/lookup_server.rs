//! A small server speaking CloudTrail's LookupEvents JSON protocol (and EC2 DescribeRegions),
//! from fixture events: moto does not implement LookupEvents. It pages newest first, honours
//! StartTime/EndTime, answers ThrottlingException on every Nth request, and can play a region
//! that is not enabled. It records each request's region, time and parameters.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub region: String,
    pub target: String,
    pub at: Instant,
    pub body: Value,
    pub throttled: bool,
}

pub struct LookupServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Clone)]
pub struct Behaviour {
    /// Events per region, in any order; served newest first.
    pub events: BTreeMap<String, Vec<Value>>,
    pub page: usize,
    /// Every Nth LookupEvents request is throttled (0: never).
    pub throttle_every: usize,
    /// Regions whose requests are rejected as from an unknown client (region not enabled).
    pub disabled: Vec<String>,
}

impl LookupServer {
    pub fn start(behaviour: Behaviour) -> LookupServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let state = (Arc::new(behaviour), seen.clone(), Arc::new(Mutex::new(0usize)));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || serve(stream, &state.0, &state.1, &state.2));
            }
        });
        LookupServer { port, seen }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, behaviour: &Behaviour, seen: &Mutex<Vec<Seen>>, counter: &Mutex<usize>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let region = header("authorization")
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split('/').nth(2))
            .unwrap_or_default()
            .to_string();
        let target = header("x-amz-target");
        let (status, content_type, response, throttled) = answer(behaviour, &region, &target, &body, counter);
        if let Ok(mut seen) = seen.lock() {
            seen.push(Seen {
                region: region.clone(),
                target: target.clone(),
                at: Instant::now(),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                throttled,
            });
        }
        let reason = if status == 200 { "OK" } else { "Bad Request" };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: test\r\n\r\n",
            response.len()
        );
        if writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(&response))
            .is_err()
        {
            return;
        }
    }
}

fn answer(
    behaviour: &Behaviour,
    region: &str,
    target: &str,
    body: &[u8],
    counter: &Mutex<usize>,
) -> (u16, &'static str, Vec<u8>, bool) {
    let json_type = "application/x-amz-json-1.1";
    if target.is_empty() && String::from_utf8_lossy(body).contains("Action=DescribeRegions") {
        let mut regions: Vec<&String> = behaviour.events.keys().chain(&behaviour.disabled).collect();
        regions.sort();
        let items: String = regions
            .iter()
            .map(|r| format!("<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item>"))
            .collect();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>test</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>"
        );
        return (200, "text/xml", xml.into_bytes(), false);
    }
    if !target.ends_with(".LookupEvents") {
        let error = json!({"__type": "UnknownOperationException", "message": target});
        return (400, json_type, error.to_string().into_bytes(), false);
    }
    if behaviour.disabled.iter().any(|r| r == region) {
        let error = json!({"__type": "UnrecognizedClientException", "message": "The security token included in the request is invalid."});
        return (400, json_type, error.to_string().into_bytes(), false);
    }
    let number = counter.lock().map(|mut c| {
        *c += 1;
        *c
    });
    if behaviour.throttle_every > 0 && number.is_ok_and(|n| n % behaviour.throttle_every == 0) {
        let error = json!({"__type": "ThrottlingException", "message": "Rate exceeded"});
        return (400, json_type, error.to_string().into_bytes(), true);
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let start = request["StartTime"].as_f64().unwrap_or(f64::MIN);
    let end = request["EndTime"].as_f64().unwrap_or(f64::MAX);
    let time_of = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["eventTime"].as_str().unwrap_or_default())
            .map(|t| t.timestamp() as f64)
            .unwrap_or(0.0)
    };
    let mut events: Vec<&Value> = behaviour
        .events
        .get(region)
        .map(|list| list.iter().filter(|e| (start..end).contains(&time_of(e))).collect())
        .unwrap_or_default();
    events.sort_by(|a, b| time_of(b).total_cmp(&time_of(a)));
    let offset: usize = request["NextToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("page-"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = events
        .iter()
        .skip(offset)
        .take(behaviour.page)
        .map(|e| {
            json!({
                "EventId": e["eventID"], "EventName": e["eventName"], "EventSource": e["eventSource"],
                "EventTime": time_of(e), "Username": e["userIdentity"]["userName"],
                "CloudTrailEvent": e.to_string(),
            })
        })
        .collect();
    let mut response = json!({"Events": page});
    if offset + behaviour.page < events.len() {
        response["NextToken"] = json!(format!("page-{}", offset + behaviour.page));
    }
    (200, json_type, response.to_string().into_bytes(), false)
}
