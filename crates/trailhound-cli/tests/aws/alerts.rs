//! `hunt --alert`: Slack and webhook messages arrive at local receivers with the right content,
//! escaped, retried on 429 after Retry-After, and no URL ever reaches the logs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::http::{HttpServer, Response};
use crate::support::{run, trailhound};

/// Answers 429 with `Retry-After: 1` to the first request, then 200.
fn receiver() -> HttpServer {
    let calls = AtomicUsize::new(0);
    HttpServer::start(move |_| {
        if calls.fetch_add(1, Ordering::Relaxed) == 0 {
            Response {
                status: 429,
                headers: vec![("Retry-After".into(), "1".into())],
                body: b"rate_limited".to_vec(),
            }
        } else {
            Response {
                status: 200,
                headers: Vec::new(),
                body: b"ok".to_vec(),
            }
        }
    })
}

#[test]
fn slack_and_webhook_receive_the_high_findings_once_after_a_429() {
    let slack = receiver();
    let webhook = receiver();
    let slack_url = format!("{}/services/T000/B000/SECRETPART", slack.url());
    let out = run(trailhound()
        .env("TRAILHOUND_SLACK_WEBHOOK_URL", &slack_url)
        .env("TRAILHOUND_WEBHOOK_URL", format!("{}/hook", webhook.url()))
        .env("TRAILHOUND_LOG", "debug")
        .args(["hunt", &crate::support::root().join("examples").display().to_string()])
        .args([
            "--format",
            "jsonl",
            "--alert",
            "slack",
            "--alert",
            "webhook",
            "--alert-min-level",
            "high",
        ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("SECRETPART"),
        "the webhook URL never reaches the logs"
    );
    let high = crate::support::jsonl(&out.stdout)
        .iter()
        .filter(|f| matches!(f["level"].as_str(), Some("high" | "critical")))
        .count();
    assert_eq!(high, 8, "the example's high and critical findings");

    let requests = slack.requests();
    assert_eq!(requests.len(), 2, "one message, retried once after the 429");
    assert_eq!(requests[0].path, "/services/T000/B000/SECRETPART");
    assert_eq!(requests[0].body, requests[1].body, "the same message again");
    assert!(
        requests[1].at.duration_since(requests[0].at) >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    let message = requests[1].json();
    let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    assert_eq!(blocks.len(), 2 + high);
    assert_eq!(blocks[0]["text"]["text"], "trailhound: 8 new findings");
    assert!(
        message["text"]
            .as_str()
            .is_some_and(|t| t.contains("critical 1, high 7")),
        "{message}"
    );
    let sections: Vec<String> = blocks[2..]
        .iter()
        .map(|b| b["text"]["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        sections
            .iter()
            .any(|s| s.starts_with("*CRITICAL* `aws-cloudtrail-stop-logging`")
                && s.contains("`arn:aws:iam::111122223333:user/backup-svc`")
                && s.contains("from `203.0.113.66`")),
        "{sections:#?}"
    );

    let hooks = webhook.requests();
    assert_eq!(hooks.len(), 2);
    let payload = hooks[1].json();
    assert_eq!(payload["tool"], "trailhound");
    assert_eq!(payload["findings"].as_array().map(Vec::len), Some(high));
    crate::schema::assert_findings(payload["findings"].as_array().map_or(&[][..], Vec::as_slice));
    assert_eq!(
        payload["findings"][0]["rule_id"].as_str().map(|s| !s.is_empty()),
        Some(true)
    );
}

#[test]
fn hostile_values_are_escaped_for_slack() {
    let slack = receiver();
    let dir = tempfile::tempdir().expect("dir");
    let record = serde_json::json!({"Records": [{
        "eventVersion": "1.09", "eventTime": "2026-11-20T22:03:15Z", "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging", "awsRegion": "us-east-1", "sourceIPAddress": "<!channel> <https://evil.example|login>",
        "eventID": "e-hostile", "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/`*x*`&<b>"}}]});
    std::fs::write(dir.path().join("hostile.json"), record.to_string()).expect("write");
    let out = run(trailhound().env("TRAILHOUND_SLACK_WEBHOOK_URL", slack.url()).args([
        "hunt",
        &dir.path().display().to_string(),
        "--format",
        "jsonl",
        "--alert",
        "slack",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let message = slack.requests().last().map(|r| r.json()).unwrap_or_default();
    let text = message.to_string();
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil"),
        "{text}"
    );
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    assert!(text.contains("&amp;&lt;b&gt;"), "{text}");
}

#[test]
fn a_missing_target_or_a_refusing_receiver_fails_the_run() {
    let examples = crate::support::root().join("examples").display().to_string();
    let out = run(trailhound()
        .env_remove("TRAILHOUND_SLACK_WEBHOOK_URL")
        .args(["hunt", &examples, "--format", "jsonl", "--alert", "slack"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("set TRAILHOUND_SLACK_WEBHOOK_URL"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.is_empty(), "findings are still written");

    let refusing = HttpServer::start(|_| Response {
        status: 403,
        headers: Vec::new(),
        body: b"invalid_token".to_vec(),
    });
    let out = run(trailhound()
        .env("TRAILHOUND_WEBHOOK_URL", format!("{}/secret-token", refusing.url()))
        .args(["hunt", &examples, "--format", "jsonl", "--alert", "webhook"]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("alert to webhook: HTTP 403 (not retried)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("secret-token"));
    assert_eq!(refusing.requests().len(), 1);
}

#[test]
fn sns_publishes_to_the_topic() {
    let Some(moto) = crate::support::Moto::start() else {
        return;
    };
    let receiver = HttpServer::start(|_| Response {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    });
    let rt = crate::runtime();
    let sns = moto.aws(&rt).sns();
    let topic = rt
        .block_on(sns.create_topic().name("trailhound-alerts").send())
        .expect("topic")
        .topic_arn()
        .unwrap_or_default()
        .to_string();
    rt.block_on(
        sns.subscribe()
            .topic_arn(&topic)
            .protocol("http")
            .endpoint(format!("{}/sns", receiver.url()))
            .send(),
    )
    .expect("subscribed");
    let out = run(trailhound()
        .env("TRAILHOUND_SNS_TOPIC_ARN", &topic)
        .args(["hunt", &crate::support::root().join("examples").display().to_string()])
        .args(["--format", "jsonl", "--alert", "sns", "--endpoint-url", &moto.url()]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let notification = receiver
        .requests()
        .into_iter()
        .map(|r| r.json())
        .find(|v| v["Type"] == "Notification")
        .expect("moto delivered the published message");
    assert_eq!(
        notification["Subject"],
        "trailhound: 8 new findings (critical 1, high 7)"
    );
    let message = notification["Message"].as_str().unwrap_or_default();
    assert_eq!(
        message
            .lines()
            .filter(|l| l.starts_with("critical ") || l.starts_with("high "))
            .count(),
        8
    );
    assert!(
        message.contains("aws-cloudtrail-stop-logging StopLogging 2026-11-20T22:03:15Z"),
        "{message}"
    );
}

#[test]
fn webhook_urls_come_from_secrets_manager_and_ssm() {
    let Some(moto) = crate::support::Moto::start() else {
        return;
    };
    let rt = crate::runtime();
    let aws = moto.aws(&rt);
    let slack = receiver();
    let webhook = receiver();
    rt.block_on(
        aws.secrets_manager()
            .create_secret()
            .name("trailhound/slack")
            .secret_string(format!("{}/services/FROM-SECRETS-MANAGER", slack.url()))
            .send(),
    )
    .expect("secret");
    rt.block_on(
        aws.ssm()
            .put_parameter()
            .name("/trailhound/webhook")
            .value(format!("{}/from-ssm", webhook.url()))
            .r#type(aws_sdk_ssm_type())
            .send(),
    )
    .expect("parameter");
    let out = run(trailhound()
        .env("TRAILHOUND_SLACK_WEBHOOK_URL", "secretsmanager:trailhound/slack")
        .env("TRAILHOUND_WEBHOOK_URL", "ssm:/trailhound/webhook")
        .args(["hunt", &crate::support::root().join("examples").display().to_string()])
        .args([
            "--format",
            "jsonl",
            "--alert",
            "slack",
            "--alert",
            "webhook",
            "--endpoint-url",
            &moto.url(),
        ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("FROM-SECRETS-MANAGER") && !out.stderr.contains("from-ssm"));
    assert_eq!(
        slack.requests().last().map(|r| r.path.clone()).as_deref(),
        Some("/services/FROM-SECRETS-MANAGER")
    );
    assert_eq!(
        webhook.requests().last().map(|r| r.path.clone()).as_deref(),
        Some("/from-ssm")
    );

    let missing = run(trailhound()
        .env("TRAILHOUND_SLACK_WEBHOOK_URL", "secretsmanager:trailhound/nope")
        .args(["hunt", &crate::support::root().join("examples").display().to_string()])
        .args(["--format", "jsonl", "--alert", "slack", "--endpoint-url", &moto.url()]));
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("secret trailhound/nope"), "{}", missing.stderr);
}

fn aws_sdk_ssm_type() -> aws_sdk_ssm::types::ParameterType {
    aws_sdk_ssm::types::ParameterType::SecureString
}

/// `count` StopLogging records with distinct event ids, one NDJSON file.
fn many_findings(dir: &std::path::Path, count: usize) -> std::path::PathBuf {
    let path = dir.join("many.jsonl");
    let mut text = String::new();
    for i in 0..count {
        text.push_str(&format!(
            r#"{{"eventVersion":"1.09","eventTime":"2026-11-20T22:{:02}:{:02}Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventID":"00000000-0000-4000-8000-{i:012}","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.66","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/mallory","accountId":"111122223333","accessKeyId":"AKIAEXAMPLEMALLORY1"}},"requestParameters":{{"name":"trail-{i}"}}}}"#,
            i / 60,
            i % 60
        ));
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn security_hub_imports_findings_in_batches_of_100_and_a_second_import_updates_them() {
    let Some(moto) = crate::support::Moto::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let file = many_findings(dir.path(), 250).display().to_string();
    let hunt = || {
        run(trailhound()
            .args(["hunt", &file, "--format", "jsonl", "--alert", "securityhub"])
            .args(["--rule", "aws-cloudtrail-stop-logging", "--endpoint-url", &moto.url()]))
    };
    moto.take_requests();
    let first = hunt();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(crate::support::jsonl(&first.stdout).len(), 250);
    let imports = |requests: Vec<(String, String)>| {
        requests
            .into_iter()
            .filter(|(method, path)| method == "POST" && path.starts_with("/findings/import"))
            .count()
    };
    assert_eq!(imports(moto.take_requests()), 3, "250 findings: 100 + 100 + 50");
    let second = hunt();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(imports(moto.take_requests()), 3);

    let rt = crate::runtime();
    let hub = moto.aws(&rt).securityhub();
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = rt
            .block_on(hub.get_findings().max_results(100).set_next_token(token.clone()).send())
            .expect("get findings");
        for finding in page.findings() {
            ids.push(finding.id().unwrap_or_default().to_string());
            assert_eq!(finding.generator_id(), Some("aws-cloudtrail-stop-logging"));
            assert_eq!(
                finding.severity().and_then(|s| s.label()).map(|l| l.as_str()),
                Some("CRITICAL")
            );
            assert!(finding.types().iter().any(|t| t == "TTPs/Defense Evasion"));
            assert!(!finding.resources().is_empty());
        }
        token = page.next_token().map(str::to_string).filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "imported twice, held once: the ids are stable");
    assert!(
        ids.iter()
            .all(|id| id.starts_with("trailhound/aws-cloudtrail-stop-logging/"))
    );
}

#[test]
fn security_hub_respects_the_minimum_level_and_retries_throttled_findings() {
    // Our own Security Hub: the first import answers that every finding was throttled, the
    // second accepts them; the request body is checked as it arrives.
    let calls = AtomicUsize::new(0);
    let hub = HttpServer::start(move |request| {
        let body = request.json();
        let findings = body["Findings"].as_array().cloned().unwrap_or_default();
        let n = calls.fetch_add(1, Ordering::Relaxed);
        let failed: Vec<serde_json::Value> = if n == 0 {
            findings
                .iter()
                .map(|f| serde_json::json!({"Id": f["Id"], "ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}))
                .collect()
        } else {
            Vec::new()
        };
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::json!({"FailedCount": failed.len(), "SuccessCount": findings.len() - failed.len(), "FailedFindings": failed})
                .to_string()
                .into_bytes(),
        }
    });
    let product = "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default";
    let out = run(trailhound()
        .env("TRAILHOUND_SECURITYHUB_PRODUCT_ARN", product)
        .args(["hunt", &crate::support::root().join("examples").display().to_string()])
        .args([
            "--format",
            "jsonl",
            "--alert",
            "securityhub",
            "--alert-min-level",
            "high",
        ])
        .args(["--endpoint-url", &hub.url()]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let requests = hub.requests();
    assert_eq!(requests.len(), 2, "one import, sent again after the throttling");
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert!(request.path.starts_with("/findings/import"), "{}", request.path);
    }
    let findings = requests[1].json()["Findings"].as_array().cloned().unwrap_or_default();
    assert_eq!(findings.len(), 8, "the example's high and critical findings only");
    for f in &findings {
        assert_eq!(f["SchemaVersion"], "2018-10-08");
        assert_eq!(f["ProductArn"], product);
        assert_eq!(f["AwsAccountId"], "111122223333");
        assert!(f["Id"].as_str().is_some_and(|id| id.starts_with("trailhound/")));
        assert!(matches!(f["Severity"]["Label"].as_str(), Some("HIGH" | "CRITICAL")));
        assert!(f["Resources"].as_array().is_some_and(|r| !r.is_empty()));
        assert!(
            f["Title"]
                .as_str()
                .is_some_and(|t| !t.is_empty() && t.chars().count() <= 256)
        );
        assert!(f["Types"].as_array().is_some_and(|t| !t.is_empty()));
    }
    let stop = findings
        .iter()
        .find(|f| f["GeneratorId"] == "aws-cloudtrail-stop-logging")
        .expect("StopLogging imported");
    assert_eq!(stop["Action"]["ActionType"], "AWS_API_CALL");
    assert_eq!(stop["Action"]["AwsApiCallAction"]["Api"], "StopLogging");
    assert_eq!(
        stop["Action"]["AwsApiCallAction"]["RemoteIpDetails"]["IpAddressV4"],
        "203.0.113.66"
    );
    assert_eq!(
        requests[0].json()["Findings"],
        requests[1].json()["Findings"],
        "the same findings, same ids"
    );
}
