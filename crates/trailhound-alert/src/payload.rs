//! Alert messages: a Slack Block Kit message, a generic JSON webhook payload and an SNS text,
//! built from the findings of one run. Sending them is [`crate::deliver`]'s job.
//!
//! Log values are hostile. No control character (CR and LF included), bidi control or other
//! invisible format character passes raw into any message: [`plain`] shows them as escapes
//! (`\n`, `\u{202e}`), so in an SNS text one finding is one line. In Slack they are escaped for
//! mrkdwn as well (`&`, `<`, `>`, so no link, mention or `<!channel>` can be forged), shown in
//! code spans that cannot be closed early, and cut to fit Slack's limits with a visible marker.

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

/// Whether `c` must never reach a message raw: a control character (C0, DEL, C1) or an
/// invisible format character (Unicode category Cf, bidi controls among them, and the line and
/// paragraph separators). The same set as the outputs' escaping (`trailhound_output::hidden`).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{890}'..='\u{891}'
            | '\u{8e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// How one character of a value is shown in plain text: itself, or a visible escape.
fn plain_char(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Text for a plain-text message (SNS: email, SMS, chat bridges): every control, bidi and
/// invisible format character shown as an escape (`\n`, `\u{202e}`), so a value is one line
/// that shows what it holds, in order.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    text.chars().for_each(|c| plain_char(c, &mut out));
    out
}

/// How one character of a value is shown in Slack mrkdwn: as in [`plain`], with `&`, `<` and
/// `>` as entities.
fn mrkdwn_char(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => plain_char(c, out),
    }
}

/// Text escaped for Slack mrkdwn: `&`, `<` and `>` as entities, control characters shown.
pub fn mrkdwn(text: &str) -> String {
    fitted(text, usize::MAX, mrkdwn_char)
}

/// `text` escaped by `escape`, at most `max` characters long: if it is longer, whole escapes are
/// kept up to a visible marker saying how many characters of the value were cut.
fn fitted(text: &str, max: usize, escape: fn(char, &mut String)) -> String {
    let mut out = String::new();
    text.chars().for_each(|c| escape(c, &mut out));
    if out.chars().count() <= max {
        return out;
    }
    out.clear();
    let mut unit = String::new();
    let mut length = 0;
    for (kept, c) in text.chars().enumerate() {
        unit.clear();
        escape(c, &mut unit);
        length += unit.chars().count();
        if length > max.saturating_sub(CUT_MARKER) {
            let cut = text.chars().count() - kept;
            out.push_str(&format!("… ({cut} characters cut)"));
            return out;
        }
        out.push_str(&unit);
    }
    out
}

/// Room kept for the cut marker: `… (12345678901234567890 characters cut)`.
const CUT_MARKER: usize = 40;

/// Longest value in a Slack text, escapes and cut marker included: a finding's section (eight
/// values and some words) stays well under Slack's 3,000 characters.
const SLACK_VALUE: usize = 280;

/// Slack's limit for a header's text.
const SLACK_HEADER: usize = 150;

/// Longest value in an SNS message.
const SNS_VALUE: usize = 1000;

/// SNS's limit for a message, in bytes.
const SNS_MESSAGE: usize = 256 * 1024;

/// A value for an mrkdwn text: escaped, cut at [`SLACK_VALUE`].
fn value(text: &str) -> String {
    fitted(text, SLACK_VALUE, mrkdwn_char)
}

/// A value as an mrkdwn code span: escaped, with backticks replaced so it cannot end the span,
/// cut at [`SLACK_VALUE`].
fn code(text: &str) -> String {
    format!("`{}`", fitted(text, SLACK_VALUE, code_char))
}

fn code_char(c: char, out: &mut String) {
    match c {
        '`' => out.push('\u{2018}'),
        c => mrkdwn_char(c, out),
    }
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
        value(&f.rule_title)
    );
    line.push_str(&format!("\n{} {}", code(&f.event_name), value(&f.event_time)));
    if let Some(who) = f.principal_arn.as_deref().or(f.access_key_id.as_deref()) {
        line.push_str(&format!(" by {}", code(who)));
    }
    if let Some(ip) = &f.source_ip {
        line.push_str(&format!(" from {}", code(ip)));
    }
    match (f.origin(), f.novelty()) {
        (Some(origin), Some(new)) => line.push_str(&format!(" ({}; *{}*)", value(&origin), value(&new))),
        (Some(origin), None) => line.push_str(&format!(" ({})", value(&origin))),
        (None, Some(new)) => line.push_str(&format!(" (*{}*)", value(&new))),
        (None, None) => {}
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
/// [`SLACK_FINDINGS_PER_MESSAGE`] findings each, all headed with the run and its counts. Every
/// text object is within Slack's limits (a header 150 characters, a section or context 3,000,
/// 50 blocks): a longer value is cut with a marker saying how much was cut.
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
                json!({"type": "header", "text": {"type": "plain_text", "text": fitted(&title, SLACK_HEADER, plain_char)}}),
                json!({"type": "context", "elements": [{"type": "mrkdwn",
                    "text": format!("{} at {}: {}", value(&run.what), value(&run.at), level_counts(findings))}]}),
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

/// SNS subject (under 100 characters, no control characters) and message text: one line per
/// finding, every value escaped by [`plain`] so no value can start a line of its own, within
/// SNS's 256 KiB (findings past it are counted, not shown).
pub fn sns_message(run: &AlertRun, findings: &[Finding]) -> (String, String) {
    let subject = format!(
        "trailhound: {} new findings ({})",
        findings.len(),
        level_counts(findings)
    );
    let subject = fitted(&subject, 99, plain_char);
    let field = |v: Option<&str>| fitted(v.unwrap_or("-"), SNS_VALUE, plain_char);
    let mut text = format!("{} at {}\n\n", field(Some(&run.what)), field(Some(&run.at)));
    for (shown, f) in findings.iter().enumerate() {
        let line = format!(
            "{} {} {} {} by {} from {}\n",
            f.level,
            field(Some(&f.rule_id)),
            field(Some(&f.event_name)),
            field(Some(&f.event_time)),
            field(f.principal_arn.as_deref()),
            field(f.source_ip.as_deref())
        );
        if text.len() + line.len() + 64 > SNS_MESSAGE {
            text.push_str(&format!("… and {} more findings\n", findings.len() - shown));
            break;
        }
        text.push_str(&line);
    }
    (subject, text)
}

/// Findings per Security Hub `BatchImportFindings` call (the API's limit). Built and tested
/// without the `aws` feature too, which alone sends them.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub const SECURITY_HUB_BATCH: usize = 100;

/// A finding in the AWS Security Finding Format, as plain data: what [`crate::send`] imports
/// into Security Hub (the SDK types are built from it), kept apart so its shape is testable
/// without AWS.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
pub struct Asff {
    /// Stable: `trailhound/RULE/UID` (the finding's [`Finding::uid`]), so a finding imported
    /// again updates the one Security Hub holds instead of adding a copy.
    pub id: String,
    /// The rule id.
    pub generator_id: String,
    /// At most 256 characters.
    pub title: String,
    /// At most 1,024 characters.
    pub description: String,
    /// ASFF finding types (`TTPs/Defense Evasion`, `Effects/Data Exfiltration`...).
    pub types: Vec<String>,
    /// INFORMATIONAL, LOW, MEDIUM, HIGH or CRITICAL.
    pub severity: &'static str,
    pub first_observed: String,
    pub last_observed: String,
    /// (Type, Id, Region): at least one.
    pub resources: Vec<(String, String, Option<String>)>,
    /// The API call behind an event finding: (API, service, remote IPv4 address).
    pub api_call: Option<(String, String, Option<String>)>,
    /// Extra name/value pairs (ASFF ProductFields, at most 50).
    pub fields: Vec<(String, String)>,
}

/// ASFF's `Types` for the ATT&CK tactics of a rule's tags.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
fn asff_types(tags: &[String]) -> Vec<String> {
    let mut types: Vec<String> = tags
        .iter()
        .filter_map(|t| t.strip_prefix("attack."))
        .filter_map(|t| {
            Some(match t {
                "initial-access" => "TTPs/Initial Access",
                "execution" => "TTPs/Execution",
                "persistence" => "TTPs/Persistence",
                "privilege-escalation" => "TTPs/Privilege Escalation",
                "defense-evasion" => "TTPs/Defense Evasion",
                "credential-access" => "TTPs/Credential Access",
                "discovery" => "TTPs/Discovery",
                "lateral-movement" => "TTPs/Lateral Movement",
                "collection" => "TTPs/Collection",
                "command-and-control" => "TTPs/Command and Control",
                "exfiltration" => "Effects/Data Exfiltration",
                "impact" => "Effects/Data Destruction",
                "reconnaissance" | "resource-development" => "Unusual Behaviors/User",
                _ => return None,
            })
        })
        .map(str::to_string)
        .collect();
    types.dedup();
    if types.is_empty() {
        types.push("Unusual Behaviors/User".to_string());
    }
    types
}

/// Cuts `text` to at most `max` characters (Security Hub refuses longer fields), with a marker.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
fn cut_to(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}\u{2026}")
}

/// The ASFF resource of an inventory item kind.
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
fn resource_type(kind: &str) -> &'static str {
    match kind {
        "access_key" => "AwsIamAccessKey",
        "iam_user" | "user" => "AwsIamUser",
        "iam_role" | "role" => "AwsIamRole",
        "iam_policy" | "policy" => "AwsIamPolicy",
        "s3_bucket" | "bucket" => "AwsS3Bucket",
        "security_group" => "AwsEc2SecurityGroup",
        "vpc" => "AwsEc2Vpc",
        "subnet" => "AwsEc2Subnet",
        "trail" => "AwsCloudTrailTrail",
        _ => "Other",
    }
}

/// A finding in ASFF. `account` is the account Security Hub imports into (the finding's own
/// account is kept in the fields when it differs, as for an organization trail).
#[cfg_attr(not(feature = "aws"), allow(dead_code))]
pub fn asff(finding: &Finding, account: &str) -> Asff {
    let (first, last) = match (&finding.correlation, &finding.group) {
        (Some(c), _) => (c.first_time.clone(), c.last_time.clone()),
        (None, Some(g)) => (g.first_time.clone(), g.last_time.clone()),
        (None, None) => (finding.event_time.clone(), finding.event_time.clone()),
    };
    let severity = match finding.level {
        Level::Informational => "INFORMATIONAL",
        Level::Low => "LOW",
        Level::Medium => "MEDIUM",
        Level::High => "HIGH",
        Level::Critical => "CRITICAL",
    };
    let mut resources = Vec::new();
    let region = finding.aws_region.clone();
    if let Some(item) = &finding.item {
        resources.push((resource_type(&item.kind).to_string(), item.id.clone(), region.clone()));
    }
    if let Some(arn) = &finding.principal_arn {
        let kind = if arn.contains(":user/") {
            "AwsIamUser"
        } else if arn.contains(":role/") {
            "AwsIamRole"
        } else {
            "Other"
        };
        resources.push((kind.to_string(), arn.clone(), None));
    }
    if let Some(key) = &finding.access_key_id
        && finding.item.is_none()
    {
        resources.push(("AwsIamAccessKey".to_string(), key.clone(), None));
    }
    if resources.is_empty() {
        let owner = finding.account_id.as_deref().unwrap_or(account);
        resources.push((
            "AwsAccount".to_string(),
            format!("AWS::::Account:{owner}"),
            region.clone(),
        ));
    }
    resources.truncate(32);
    let what = match &finding.item {
        Some(item) => format!("{} {}", item.kind, item.id),
        None => format!(
            "{} by {} from {}",
            finding.event_name,
            finding.principal_arn.as_deref().unwrap_or("an unknown principal"),
            finding.source_ip.as_deref().unwrap_or("an unknown address")
        ),
    };
    let mut description = format!("{}: {} at {}", finding.rule_title, what, finding.event_time);
    if let Some(c) = &finding.correlation {
        description.push_str(&format!(
            " ({} events from {} to {})",
            c.events, c.first_time, c.last_time
        ));
    }
    if let Some(e) = &finding.explanation {
        description.push_str(&format!(" Explained: {}", e.reason));
    }
    let api_call = (finding.item.is_none() && !finding.event_name.is_empty()).then(|| {
        let ip = finding
            .source_ip
            .as_deref()
            .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
            .map(str::to_string);
        (finding.event_name.clone(), finding.event_source.clone(), ip)
    });
    let mut fields = vec![
        ("trailhound/rule_id".to_string(), finding.rule_id.clone()),
        ("trailhound/level".to_string(), finding.level.as_str().to_string()),
        ("trailhound/source_file".to_string(), finding.source_file.clone()),
    ];
    let mut push = |name: &str, value: Option<&String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            fields.push((format!("trailhound/{name}"), v.clone()));
        }
    };
    push("event_id", finding.event_id.as_ref());
    push("account_id", finding.account_id.as_ref());
    push("access_key_id", finding.access_key_id.as_ref());
    push("user_agent", finding.user_agent.as_ref());
    push("error_code", finding.error_code.as_ref());
    if let Some(e) = &finding.explanation {
        fields.push(("trailhound/explanation".to_string(), e.reason.clone()));
    }
    let techniques: Vec<&str> = finding.tags.iter().filter_map(|t| t.strip_prefix("attack.t")).collect();
    if !techniques.is_empty() {
        let list: Vec<String> = techniques.iter().map(|t| format!("T{}", t.to_uppercase())).collect();
        fields.push(("trailhound/attack_techniques".to_string(), list.join(",")));
    }
    // ProductFields values are at most 4,096 characters; log values can be longer.
    let fields = fields.into_iter().map(|(k, v)| (k, cut_to(&plain(&v), 4096))).collect();
    Asff {
        id: format!("trailhound/{}/{}", finding.rule_id, finding.uid()),
        generator_id: finding.rule_id.clone(),
        title: cut_to(&plain(&finding.rule_title), 256),
        description: cut_to(&plain(&description), 1024),
        types: asff_types(&finding.tags),
        severity,
        first_observed: first,
        last_observed: last,
        resources,
        api_call,
        fields,
    }
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
        let findings = vec![finding("arn:aws:iam::1:user/x"); 95];
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

    /// Controls, bidi and invisible format characters left raw in `text`, apart from its own line ends.
    fn raw_hidden(text: &str) -> Vec<char> {
        text.chars()
            .filter(|&c| c != '\n')
            .filter(|&c| {
                c.is_control()
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}'
                        | '\u{2028}' | '\u{2029}' | '\u{feff}')
            })
            .collect()
    }

    #[test]
    fn sns_values_cannot_forge_lines() {
        let forged = "arn:aws:iam::1:user/x from -\ncritical aws-root-login ConsoleLogin 2026-11-20T22:00:00Z by root\r\u{85}\u{2028}\u{202e}\u{200b}\u{1b}[2K";
        let run = AlertRun {
            what: "lambda s3://b/evil\nkey".into(),
            at: "2026-11-20T22:05:00Z\u{7}".into(),
        };
        let (subject, text) = sns_message(&run, &[finding(forged), finding("arn:aws:iam::1:user/y")]);
        assert_eq!(text.lines().count(), 2 + 2, "one line per finding: {text}");
        assert_eq!(raw_hidden(&text), [] as [char; 0], "{text}");
        assert_eq!(raw_hidden(&subject), [] as [char; 0], "{subject}");
        assert!(
            text.contains("user/x from -\\ncritical") && text.contains("\\u{202e}"),
            "{text}"
        );
        assert!(
            text.lines().filter(|l| l.starts_with("critical")).count() == 2,
            "{text}"
        );
    }

    #[test]
    fn slack_text_objects_stay_within_slack_limits() {
        let huge = format!("arn:aws:iam::1:user/{}", "&<x>`\u{202e}".repeat(3000));
        let run = AlertRun {
            what: format!("hunt s3://{}", "b&".repeat(4000)),
            at: "2026-11-20T22:05:00Z".into(),
        };
        let findings = vec![finding(&huge); 45];
        let messages = slack_messages(&run, &findings);
        for message in &messages {
            let blocks = message["blocks"].as_array().expect("blocks");
            assert!(blocks.len() <= 50, "{} blocks", blocks.len());
            for block in blocks {
                let texts: Vec<&str> = match block["type"].as_str() {
                    Some("header") => {
                        let text = block["text"]["text"].as_str().unwrap_or_default();
                        assert!(text.chars().count() <= 150, "header of {}", text.chars().count());
                        vec![text]
                    }
                    Some("context") => block["elements"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e["text"].as_str())
                        .collect(),
                    _ => vec![block["text"]["text"].as_str().unwrap_or_default()],
                };
                for text in texts {
                    assert!(
                        text.chars().count() <= 3000,
                        "a text of {} characters",
                        text.chars().count()
                    );
                    assert!(!text.contains('<') && !text.contains('\u{202e}'), "{text}");
                    assert_eq!(text.matches('`').count() % 2, 0, "code spans stay closed: {text}");
                }
            }
            assert!(message["text"].as_str().is_some_and(|t| t.chars().count() <= 3000));
        }
        let section = messages[0]["blocks"][2]["text"]["text"].as_str().unwrap_or_default();
        assert!(section.contains("characters cut)"), "the cut is visible: {section}");
    }

    #[test]
    fn sns_messages_stay_within_256_kib() {
        let run = AlertRun {
            what: "hunt".into(),
            at: "t".into(),
        };
        let findings = vec![finding(&"\u{1b}".repeat(5000)); 1000];
        let (_, text) = sns_message(&run, &findings);
        assert!(text.len() <= 256 * 1024, "{} bytes", text.len());
        let last = text.lines().last().unwrap_or_default();
        assert!(last.starts_with("… and ") && last.ends_with(" more findings"), "{last}");
        assert!(text.contains("characters cut)"), "a long value is cut visibly");
    }

    #[test]
    fn asff_ids_are_stable_and_fields_fit_security_hub_limits() {
        let long = format!("arn:aws:iam::111122223333:user/{}\u{202e}", "x".repeat(3000));
        let a = asff(&finding(&long), "111122223333");
        let b = asff(&finding(&long), "111122223333");
        assert_eq!(a.id, b.id, "the same finding, the same id");
        assert!(a.id.starts_with("trailhound/aws-cloudtrail-stop-logging/"));
        assert_eq!(
            (a.severity, a.generator_id.as_str()),
            ("CRITICAL", "aws-cloudtrail-stop-logging")
        );
        assert_eq!(a.types, ["TTPs/Defense Evasion"]);
        assert!(a.title.chars().count() <= 256 && a.description.chars().count() <= 1024);
        assert!(
            !a.description.contains('\u{202e}'),
            "hidden characters shown as escapes"
        );
        assert!(a.fields.iter().all(|(_, v)| v.chars().count() <= 4096));
        assert_eq!(a.resources[0].0, "AwsIamUser");
        assert_eq!(
            a.api_call,
            Some((
                "StopLogging".into(),
                "cloudtrail.amazonaws.com".into(),
                Some("203.0.113.66".into())
            ))
        );
    }
}
