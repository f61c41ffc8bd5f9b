//! A small server speaking CloudTrail's LookupEvents JSON protocol (and EC2 DescribeRegions),
//! from fixture events: moto does not implement LookupEvents. It pages newest first, honours
//! StartTime/EndTime, answers ThrottlingException on every Nth request, and can play a region
//! that is not enabled. It records each request's region, time and parameters.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{Value, json};

use super::http::{HttpServer, Response};

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
    server: HttpServer,
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
        let counter = Mutex::new(0usize);
        let server = HttpServer::start(move |request| {
            let region = request
                .header("authorization")
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split('/').nth(2))
                .unwrap_or_default()
                .to_string();
            let target = request.header("x-amz-target");
            let (status, content_type, body, _) = answer(&behaviour, &region, &target, &request.body, &counter);
            let headers = vec![
                ("Content-Type".to_string(), content_type.to_string()),
                ("x-amzn-RequestId".to_string(), "test".to_string()),
            ];
            Response { status, headers, body }
        });
        LookupServer { server }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The requests so far, with their region and whether they were throttled.
    pub fn seen(&self) -> Vec<Seen> {
        self.server
            .requests()
            .into_iter()
            .map(|r| Seen {
                region: r
                    .header("authorization")
                    .split("Credential=")
                    .nth(1)
                    .and_then(|c| c.split('/').nth(2))
                    .unwrap_or_default()
                    .to_string(),
                target: r.header("x-amz-target"),
                at: r.at,
                body: r.json(),
                throttled: String::from_utf8_lossy(&r.response).contains("ThrottlingException"),
            })
            .collect()
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
