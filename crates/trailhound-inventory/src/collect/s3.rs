//! The S3 collector: every bucket with its creation date, region, public access block, whether
//! its policy makes it public, and versioning. ListBuckets once, then one task per bucket, its
//! settings read from the bucket's own region.

use crate::kind::Kind;
use crate::snapshot::Item;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{Call, Found, Scope, all_pages, text, time};

pub(crate) async fn collect(scope: &Scope) -> Found {
    let mut found = Found::default();
    let s3 = scope.aws.s3(None);
    let listed = scope
        .call(
            Call {
                service: "s3",
                operation: "ListBuckets",
                region: None,
                resource: "s3 buckets",
            },
            async { all_pages!(s3.list_buckets().into_paginator().send()) },
        )
        .await;
    let Some(pages) = found.take(listed) else {
        return found;
    };
    let mut tasks = JoinSet::new();
    for bucket in pages.into_iter().flat_map(|p| p.buckets.unwrap_or_default()) {
        tasks.spawn(bucket_details(scope.clone(), bucket));
    }
    found.join(tasks, "s3", "ListBuckets").await;
    found
}

/// The region of a `LocationConstraint`: none is us-east-1, and `EU` the old name of eu-west-1.
fn location_region(constraint: Option<&str>) -> &str {
    match constraint {
        None | Some("") => "us-east-1",
        Some("EU") => "eu-west-1",
        Some(region) => region,
    }
}

async fn bucket_details(scope: Scope, bucket: aws_sdk_s3::types::Bucket) -> Found {
    let mut found = Found::default();
    let Some(name) = bucket.name() else {
        return found;
    };
    let resource = format!("s3://{name}");
    let located = {
        let s3 = scope.aws.s3(None);
        let on = Call {
            service: "s3",
            operation: "GetBucketLocation",
            region: None,
            resource: &resource,
        };
        let got = scope.call(on, s3.get_bucket_location().bucket(name).send()).await;
        found
            .take(got)
            .map(|out| location_region(out.location_constraint().map(|c| c.as_str())).to_string())
    };
    // Without its region the bucket's settings are still asked for, from the default region.
    let s3 = scope.aws.s3(located.as_deref());
    let on = |operation| Call {
        service: "s3",
        operation,
        region: located.as_deref(),
        resource: &resource,
    };
    let (block, status, versioning) = tokio::join!(
        scope.call_allowing(
            on("GetPublicAccessBlock"),
            &["NoSuchPublicAccessBlockConfiguration"],
            s3.get_public_access_block().bucket(name).send()
        ),
        scope.call_allowing(
            on("GetBucketPolicyStatus"),
            &["NoSuchBucketPolicy"],
            s3.get_bucket_policy_status().bucket(name).send()
        ),
        scope.call(
            on("GetBucketVersioning"),
            s3.get_bucket_versioning().bucket(name).send()
        ),
    );
    let block = found.take(block).flatten().map_or(Value::Null, |out| {
        out.public_access_block_configuration().map_or(Value::Null, |c| {
            json!({
                "block_public_acls": c.block_public_acls().unwrap_or(false),
                "ignore_public_acls": c.ignore_public_acls().unwrap_or(false),
                "block_public_policy": c.block_public_policy().unwrap_or(false),
                "restrict_public_buckets": c.restrict_public_buckets().unwrap_or(false),
            })
        })
    });
    let public = found
        .take(status)
        .flatten()
        .and_then(|out| out.policy_status().and_then(|s| s.is_public()))
        .map_or(Value::Null, Value::Bool);
    let versioning = found
        .take(versioning)
        .map_or(Value::Null, |out| text(out.status().map(|s| s.as_str())));
    let mut item = Item::new(Kind::S3Bucket, name, name)
        .with("public_access_block", block)
        .with("policy_public", public)
        .with("versioning", versioning);
    item.region = located;
    item.arn = Some(format!("arn:aws:s3:::{name}"));
    item.created = bucket.creation_date().and_then(time);
    found.items.push(item);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_constraints_name_regions() {
        assert_eq!(location_region(None), "us-east-1");
        assert_eq!(location_region(Some("")), "us-east-1");
        assert_eq!(location_region(Some("EU")), "eu-west-1");
        assert_eq!(location_region(Some("ap-south-2")), "ap-south-2");
    }
}
