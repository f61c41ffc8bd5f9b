//! The CloudTrail collector: every trail that records this account's regions, with whether it
//! is logging, its latest delivery and error, and its event selectors.
//!
//! DescribeTrails runs in each region (shadow trails included, so a multi-region or
//! organization trail whose home is elsewhere is still seen); trails are deduplicated by ARN and
//! their status and selectors read in their home region, where CloudTrail answers for them.

use std::collections::BTreeMap;

use crate::kind::Kind;
use crate::snapshot::Item;
use aws_sdk_cloudtrail::types::Trail;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{Call, Found, Scope, text, time_value};

pub(crate) async fn collect(scope: &Scope) -> Found {
    let mut found = Found::default();
    let mut listings = JoinSet::new();
    for region in scope.regions.iter() {
        listings.spawn(describe(scope.clone(), region.clone()));
    }
    let mut trails: BTreeMap<String, (String, Trail)> = BTreeMap::new();
    while let Some(done) = listings.join_next().await {
        let (region, listed) = match done {
            Ok(listed) => listed,
            Err(err) => {
                found.errors.push(crate::snapshot::CollectError {
                    service: "cloudtrail".into(),
                    region: None,
                    operation: "DescribeTrails".into(),
                    code: None,
                    message: format!("collector task failed: {err}"),
                });
                continue;
            }
        };
        let Some(listed) = found.take(listed) else {
            continue;
        };
        for trail in listed {
            let Some(arn) = trail.trail_arn() else { continue };
            let home = trail.home_region().unwrap_or(&region).to_string();
            trails.entry(arn.to_string()).or_insert((home, trail));
        }
    }
    let mut tasks = JoinSet::new();
    for (arn, (home, trail)) in trails {
        tasks.spawn(trail_details(scope.clone(), arn, home, trail));
    }
    found.join(tasks, "cloudtrail", "GetTrailStatus").await;
    found
}

async fn describe(scope: Scope, region: String) -> (String, Result<Vec<Trail>, super::Failure>) {
    let cloudtrail = scope.aws.cloudtrail(&region, true);
    let resource = format!("cloudtrail in {region}");
    let on = Call {
        service: "cloudtrail",
        operation: "DescribeTrails",
        region: Some(&region),
        resource: &resource,
    };
    let listed = scope
        .call(on, cloudtrail.describe_trails().include_shadow_trails(true).send())
        .await
        .map(|out| out.trail_list.unwrap_or_default());
    (region, listed)
}

async fn trail_details(scope: Scope, arn: String, home: String, trail: Trail) -> Found {
    let mut found = Found::default();
    let cloudtrail = scope.aws.cloudtrail(&home, true);
    let resource = format!("trail {arn}");
    let on = |operation| Call {
        service: "cloudtrail",
        operation,
        region: Some(&home),
        resource: &resource,
    };
    let (status, selectors) = tokio::join!(
        scope.call(on("GetTrailStatus"), cloudtrail.get_trail_status().name(&arn).send()),
        scope.call(
            on("GetEventSelectors"),
            cloudtrail.get_event_selectors().trail_name(&arn).send()
        ),
    );
    let status = found.take(status);
    let selectors = found.take(selectors).map_or(Value::Null, |out| {
        json!({
            "event_selectors": out.event_selectors().iter().map(|s| json!({
                "read_write_type": s.read_write_type().map(|t| t.as_str()),
                "include_management_events": s.include_management_events(),
                "exclude_management_event_sources": s.exclude_management_event_sources(),
                "data_resources": s.data_resources().iter().map(|d| json!({
                    "type": d.r#type(),
                    "values": d.values(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "advanced_event_selectors": out.advanced_event_selectors().iter().map(|s| json!({
                "name": s.name(),
                "field_selectors": s.field_selectors().iter().map(|f| {
                    let mut selector = serde_json::Map::new();
                    selector.insert("field".into(), f.field().into());
                    for (key, values) in [
                        ("equals", f.equals()),
                        ("starts_with", f.starts_with()),
                        ("ends_with", f.ends_with()),
                        ("not_equals", f.not_equals()),
                        ("not_starts_with", f.not_starts_with()),
                        ("not_ends_with", f.not_ends_with()),
                    ] {
                        if !values.is_empty() {
                            selector.insert(key.into(), values.into());
                        }
                    }
                    Value::Object(selector)
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    });
    let name = trail.name().unwrap_or(&arn);
    let mut item = Item::new(Kind::Trail, &arn, name)
        .with("multi_region", trail.is_multi_region_trail().unwrap_or(false))
        .with(
            "is_logging",
            status
                .as_ref()
                .and_then(|s| s.is_logging())
                .map_or(Value::Null, Value::Bool),
        )
        .with(
            "latest_delivery_time",
            time_value(status.as_ref().and_then(|s| s.latest_delivery_time())),
        )
        .with(
            "latest_delivery_error",
            text(status.as_ref().and_then(|s| s.latest_delivery_error())),
        )
        .with("s3_bucket", text(trail.s3_bucket_name()))
        .with("event_selectors", selectors)
        .with("organization_trail", trail.is_organization_trail().unwrap_or(false));
    item.region = Some(home);
    item.arn = Some(arn.clone());
    found.items.push(item);
    found
}
