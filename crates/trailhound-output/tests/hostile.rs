//! Log values are hostile: no output format lets a control character (C0, DEL, C1), a bidi
//! control or another invisible format character from a value reach its stream raw, and a value
//! is never more than one line.

use chrono::Utc;
use trailhound_finding::{Finding, Level};
use trailhound_output::{
    Format, OcsfFindings, Options, ReadFigures, Report, RowFormat, Summary, Window, script_json, write_findings,
    write_html, write_rows, write_summary,
};

/// ESC (a colour sequence), BEL, DEL, CSI (C1), NEL (C1), RLO, LRI, zero-width space, BOM, CR,
/// LF, the line separator and a tag character.
const HOSTILE: &str =
    "a\u{1b}[31mb\u{7}c\u{7f}d\u{9b}e\u{85}f\u{202e}g\u{2066}h\u{200b}i\u{feff}j\r\nk\u{2028}l\u{e0041}m";

/// Characters no output may carry raw, apart from the writer's own line ends.
fn raw_hidden(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n')
        .filter(|&c| {
            c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}'..='\u{200f}'
                    | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{e0000}'..='\u{e007f}')
        })
        .collect()
}

fn hostile_finding() -> Finding {
    // As serde_json writes it (and a log file may hold it): DEL, C1 and bidi controls raw.
    let event = format!(
        "{{\"eventName\":{}}}",
        serde_json::to_string(HOSTILE).unwrap_or_default()
    );
    Finding {
        rule_id: format!("rule-{HOSTILE}"),
        rule_title: HOSTILE.into(),
        level: Level::Critical,
        tags: vec![HOSTILE.into()],
        event_id: Some(HOSTILE.into()),
        event_time: format!("2026-11-20T22:03:15Z{HOSTILE}"),
        event_name: HOSTILE.into(),
        event_source: HOSTILE.into(),
        aws_region: Some(HOSTILE.into()),
        account_id: Some(HOSTILE.into()),
        principal_arn: Some(format!("={HOSTILE}")),
        principal_type: Some(HOSTILE.into()),
        access_key_id: Some(HOSTILE.into()),
        source_ip: Some(HOSTILE.into()),
        user_agent: Some(HOSTILE.into()),
        error_code: Some(HOSTILE.into()),
        source_file: HOSTILE.into(),
        store_id: None,
        explanation: None,
        group: None,
        correlation: None,
        item: None,
        context: None,
        event: serde_json::value::RawValue::from_string(event).ok(),
        time: Utc::now(),
    }
}

fn findings_as(format: Format) -> String {
    let mut out = Vec::new();
    let options = Options {
        color: false,
        max_width: 0,
    };
    write_findings(&mut out, format, &[hostile_finding(), hostile_finding()], &options).expect("write");
    String::from_utf8(out).expect("utf8")
}

#[test]
fn json_findings_escape_del_c1_and_bidi_controls() {
    for format in [Format::Json, Format::Jsonl] {
        let text = findings_as(format);
        assert_eq!(raw_hidden(&text), [] as [char; 0], "{format:?}: {text}");
        assert!(
            text.contains("\\u007f") && text.contains("\\u009b") && text.contains("\\u202e"),
            "{text}"
        );
        if format == Format::Jsonl {
            assert_eq!(text.lines().count(), 2);
            for line in text.lines() {
                let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
                assert_eq!(value["rule_title"], HOSTILE, "the value itself is kept");
                assert!(
                    value["event"]["eventName"]
                        .as_str()
                        .is_some_and(|v| v.contains('\u{202e}'))
                );
            }
        }
    }
}

#[test]
fn csv_findings_show_controls_visibly_and_stay_formula_safe() {
    let text = findings_as(Format::Csv);
    assert_eq!(raw_hidden(&text), [] as [char; 0], "{text}");
    assert_eq!(text.lines().count(), 3, "one line per finding: {text}");
    assert!(text.contains("\\u{1b}[31m") && text.contains("j\\r\\nk"), "{text}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let column = headers.iter().position(|h| h == "principal_arn").expect("column");
    let row = reader.records().next().expect("a row").expect("a record");
    assert!(row[column].starts_with("'="), "{}", &row[column]);
}

#[test]
fn table_findings_show_no_hidden_character() {
    let text = findings_as(Format::Table);
    assert_eq!(raw_hidden(&text), [] as [char; 0], "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn rows_in_every_format_show_no_hidden_character() {
    let rows = vec![vec![HOSTILE.to_string(), format!("@{HOSTILE}")]];
    for format in [RowFormat::Table, RowFormat::Json, RowFormat::Jsonl, RowFormat::Csv] {
        let mut out = Vec::new();
        write_rows(&mut out, format, &["principal", "value"], &rows, 0).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(raw_hidden(&text), [] as [char; 0], "{format:?}: {text}");
    }
}

#[test]
fn the_run_summary_shows_no_hidden_character() {
    let mut out = Vec::new();
    let summary = Summary {
        stats: ReadFigures::default(),
        rules: 1,
        rules_unindexed: 0,
        correlations: 0,
    };
    write_summary(&mut out, &summary, &[hostile_finding()]).expect("write");
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(raw_hidden(&text), [] as [char; 0], "{text}");
}

#[test]
fn the_html_report_data_escapes_bidi_and_c1() {
    let text = script_json(&[hostile_finding()]).expect("json");
    assert_eq!(raw_hidden(&text), [] as [char; 0], "{text}");
}

/// The page's data, streamed into it, is the report's JSON: markup characters escaped, the
/// OCSF findings those of the findings, in their order.
#[test]
fn the_html_report_streams_its_data_escaped() {
    let mut second = hostile_finding();
    second.rule_id = "</script><b>&".into();
    let findings = [hostile_finding(), second];
    let report = Report {
        generated_at: "2026-12-07T00:00:00Z".into(),
        window: Window {
            since: None,
            until: None,
        },
        sources: &["</script>".to_string()],
        stats: serde_json::json!({"files_read": 1}),
        findings: &findings,
        console_logins: serde_json::json!([]),
        top_principals: serde_json::json!([]),
        coverage: serde_json::json!([]),
        ocsf: OcsfFindings(&findings),
    };
    let mut out = Vec::new();
    write_html(&mut out, &report).expect("write");
    let page = String::from_utf8(out).expect("utf8");
    let start = page.find("type=\"application/json\"").expect("data element");
    let data_start = start + page[start..].find('>').expect("tag end") + 1;
    let data_end = data_start + page[data_start..].find("</script>").expect("data end");
    let data = &page[data_start..data_end];
    assert!(!data.contains(['<', '>', '&']), "{data}");
    assert_eq!(raw_hidden(data), [] as [char; 0], "{data}");
    let value: serde_json::Value = serde_json::from_str(data).expect("the data is JSON");
    assert_eq!(value["sources"][0], "</script>");
    assert_eq!(value["findings"][1]["rule_id"], "</script><b>&");
    let ocsf: Vec<serde_json::Value> = findings
        .iter()
        .map(trailhound_output::ocsf::detection_finding)
        .collect();
    assert_eq!(value["ocsf"], serde_json::Value::Array(ocsf));
}
