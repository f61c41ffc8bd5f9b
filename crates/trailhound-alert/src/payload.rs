//! Alert messages: a Slack Block Kit message, a generic JSON webhook payload and an SNS text,
//! built from the findings of one run. Sending them is [`crate::deliver`]'s job.
//!
//! Log values are hostile: in Slack they are escaped for mrkdwn (`&`, `<`, `>`, so no link,
//! mention or `<!channel>` can be forged) and shown in code spans that cannot be closed early;
//! control characters never pass.

use serde_json::{Value, json};
use trailhound_finding::{Finding, Level};

/// Findings per Slack message: Slack allows 50 blocks; a header, a summary and a footer leave room.
pub const SLACK_FINDINGS_PER_MESSAGE: usize = 40;

/// What the run was, for the message's header.
#[derive(Debug, Clone)]
pub struct AlertRun {
    /// What ran: `hunt s3://trail-bucket`, `lambda s3://bucket/key`, `inventory audit`.
    pub what: String,
    /// When, RFC 3339.
    pub at: String,
}

/// Text escaped for Slack mrkdwn: `&`, `<` and `>` as entities, control characters shown.
pub fn mrkdwn(text: &str) -> String {
    let printable = trailhound_event::printable(text);
    let mut out = String::with_capacity(printable.len());
    for c in printable.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A value as an mrkdwn code span: escaped, with backticks replaced so it cannot end the span.
fn code(text: &str) -> String {
    format!("`{}`", mrkdwn(text).replace('`', "\u{2018}"))
}

/// Counts per level, highest first, as "critical 1, high 2".
pub fn level_counts(findings: &[Finding]) -> String {
    let parts: Vec<String> = Level::ALL
        .iter()
        .rev()
        .filter_map(|level| {
            let n = findings.iter().filter(|f| f.level == *level).count();
            (n > 0).then(|| format!("{level} {n}"))
        })
        .collect();
    parts.join(", ")
}

/// One line per finding, for Slack.
fn slack_line(f: &Finding) -> String {
    let mut line = format!(
        "*{}* {} {}",
        f.level.as_str().to_uppercase(),
        code(&f.rule_id),
        mrkdwn(&f.rule_title)
    );
    line.push_str(&format!("\n{} {}", code(&f.event_name), mrkdwn(&f.event_time)));
    if let Some(who) = f.principal_arn.as_deref().or(f.access_key_id.as_deref()) {
        line.push_str(&format!(" by {}", code(who)));
    }
    if let Some(ip) = &f.source_ip {
        line.push_str(&format!(" from {}", code(ip)));
    }
    if let Some(account) = &f.account_id {
        line.push_str(&format!(" in {}", code(account)));
    }
    if let Some(region) = &f.aws_region {
        line.push_str(&format!(" {}", code(region)));
    }
    if let Some(group) = &f.group {
        line.push_str(&format!(" (x{})", group.count));
    }
    if let Some(correlation) = &f.correlation {
        line.push_str(&format!(" ({} events)", correlation.count));
    }
    line
}

/// Slack incoming-webhook messages for a run: one, or several of at most
/// [`SLACK_FINDINGS_PER_MESSAGE`] findings each, all headed with the run and its counts.
pub fn slack_messages(run: &AlertRun, findings: &[Finding]) -> Vec<Value> {
    let chunks: Vec<&[Finding]> = findings.chunks(SLACK_FINDINGS_PER_MESSAGE).collect();
    let total = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let part = if total > 1 {
                format!(" ({}/{total})", index + 1)
            } else {
                String::new()
            };
            let title = format!("trailhound: {} new findings{part}", findings.len());
            let mut blocks = vec![
                json!({"type": "header", "text": {"type": "plain_text", "text": trailhound_event::printable(&title)}}),
                json!({"type": "context", "elements": [{"type": "mrkdwn",
                    "text": format!("{} at {}: {}", mrkdwn(&run.what), mrkdwn(&run.at), level_counts(findings))}]}),
            ];
            for finding in *chunk {
                blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_line(finding)}}));
            }
            json!({
                // The fallback text notifications show.
                "text": format!("{title}: {}", level_counts(findings)),
                "blocks": blocks,
            })
        })
        .collect()
}

/// The generic webhook's JSON body: the run and the findings in their contract form.
pub fn webhook_payload(run: &AlertRun, findings: &[Finding]) -> Value {
    json!({
        "tool": "trailhound",
        "run": {"what": run.what, "at": run.at, "findings": findings.len(), "levels": level_counts(findings)},
        "findings": findings,
    })
}

/// SNS subject (at most 100 characters, no control characters) and message text.
pub fn sns_message(run: &AlertRun, findings: &[Finding]) -> (String, String) {
    let subject: String = format!(
        "trailhound: {} new findings ({})",
        findings.len(),
        level_counts(findings)
    )
    .chars()
    .filter(|c| !c.is_control())
    .take(100)
    .collect();
    let mut text = format!("{} at {}\n\n", trailhound_event::printable(&run.what), run.at);
    for f in findings {
        text.push_str(&format!(
            "{} {} {} {} by {} from {}\n",
            f.level,
            f.rule_id,
            f.event_name,
            f.event_time,
            f.principal_arn.as_deref().unwrap_or("-"),
            f.source_ip.as_deref().unwrap_or("-")
        ));
    }
    (subject, trailhound_event::printable(&text).replace("\\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(principal: &str) -> Finding {
        let record_text = json!({"eventVersion": "1.09", "eventTime": "2026-11-20T22:03:15Z",
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
                found = Some(Finding::new(rule.info(), &record, "s3://b/k", false));
            }
        });
        found.expect("a finding")
    }

    #[test]
    fn slack_values_cannot_forge_markup() {
        let hostile = "arn:aws:iam::1:user/<!channel> *bold* `x` <https://evil|click> &amp; \u{1b}[31m";
        let run = AlertRun {
            what: "hunt <s3://b>".into(),
            at: "2026-11-20T22:05:00Z".into(),
        };
        let messages = slack_messages(&run, &[finding(hostile)]);
        assert_eq!(messages.len(), 1);
        let text = messages[0].to_string();
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(!text.contains("<https://evil"), "{text}");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        assert!(text.contains("&amp;amp;"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("hunt &lt;s3://b&gt;"), "{text}");
        // The principal's backticks cannot close its code span.
        let section = messages[0]["blocks"][2]["text"]["text"].as_str().unwrap_or_default();
        assert_eq!(section.matches('`').count() % 2, 0, "{section}");
        assert!(
            section.starts_with("*CRITICAL* `aws-cloudtrail-stop-logging`"),
            "{section}"
        );
    }

    #[test]
    fn many_findings_split_into_messages_of_at_most_40() {
        let findings: Vec<Finding> = (0..95).map(|_| finding("arn:aws:iam::1:user/x")).collect();
        let run = AlertRun {
            what: "hunt".into(),
            at: "t".into(),
        };
        let messages = slack_messages(&run, &findings);
        assert_eq!(messages.len(), 3);
        let blocks: Vec<usize> = messages
            .iter()
            .map(|m| m["blocks"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(blocks, [42, 42, 17]);
        assert!(
            messages[2]["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("(3/3)")
        );
        assert_eq!(level_counts(&findings), "critical 95");
        let (subject, text) = sns_message(&run, &findings);
        assert!(subject.len() <= 100);
        assert_eq!(text.lines().count(), 2 + 95);
        assert_eq!(
            webhook_payload(&run, &findings)["findings"].as_array().map(Vec::len),
            Some(95)
        );
    }
}
