//! A known-reasons file (`reasons.yml`) through its parser; what parses is asked to explain a
//! finding-like item and an inventory item, and its expired entries are listed.

#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use trailhound_finding::Reasons;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let reasons = match Reasons::parse("reasons.yml", &text) {
        Ok(reasons) => reasons,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
    let _ = reasons.expired(today).count();
    let field = |key: &str| match key {
        "rule" | "rule_id" => Some("aws-signin-console-login".to_string()),
        "principal_arn" => Some("arn:aws:iam::111122223333:user/alice".to_string()),
        "name" => Some("ci-deploy-eu".to_string()),
        "user" => Some("alice".to_string()),
        "source_ip" => Some("203.0.113.7".to_string()),
        _ => None,
    };
    for kind in ["finding", "iam_user", "access_key", "iam_role", "s3_bucket"] {
        let _ = reasons.explain(kind, today, &field);
    }
});
