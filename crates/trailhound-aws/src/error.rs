//! AWS errors as one clear line each: what failed, on which resource, and what to do.
//!
//! The SDK's errors are precise but long (nested dispatch failures, provider chains). Users need
//! "no credentials: run aws sso login" or "access denied to s3://bucket: allow s3:ListBucket".
//! Messages never include credentials or signed URLs.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// An AWS call that failed, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS region: give --region, set AWS_REGION, or set a region in the profile")]
    NoRegion,
    #[error(
        "no AWS credentials found (environment, ~/.aws profiles, SSO, container and instance roles): set AWS_PROFILE or --profile, run `aws sso login`, or run under `aws-vault exec PROFILE --`"
    )]
    NoCredentials,
    #[error("AWS credentials could not be loaded: {0}")]
    CredentialsFailed(String),
    #[error("the AWS session token has expired: refresh it (`aws sso login`, aws-vault) and run again")]
    Expired,
    #[error("access denied to {resource}: the credentials need {action} on it (see deploy/iam-policy.json)")]
    AccessDenied { resource: String, action: String },
    #[error("{0}: no such bucket")]
    NoSuchBucket(String),
    #[error(
        "{resource}: the credentials are not valid in {region}: the region may not be enabled for the account (opt-in regions), or the key is wrong"
    )]
    RegionNotEnabled { resource: String, region: String },
    #[error("{resource}: throttled by AWS ({action}) after retries: lower --concurrency or try again later")]
    Throttled { resource: String, action: String },
    #[error("{resource}: cannot reach AWS: {message}")]
    Unreachable { resource: String, message: String },
    #[error("{resource}: {action} failed: {code}: {message}")]
    Service {
        resource: String,
        action: String,
        code: String,
        message: String,
    },
}

impl AwsError {
    /// Errors that end the whole command: every later request would fail the same way.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            AwsError::NoRegion | AwsError::NoCredentials | AwsError::CredentialsFailed(_) | AwsError::Expired
        )
    }

    /// Errors worth another attempt later (throttling, the network).
    pub fn is_transient(&self) -> bool {
        matches!(self, AwsError::Throttled { .. } | AwsError::Unreachable { .. })
    }

    /// The AWS error code, when AWS sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Service { code, .. } => Some(code),
            AwsError::AccessDenied { .. } => Some("AccessDenied"),
            AwsError::Expired => Some("ExpiredToken"),
            AwsError::NoSuchBucket(_) => Some("NoSuchBucket"),
            AwsError::Throttled { .. } => Some("Throttling"),
            _ => None,
        }
    }
}

/// Throttling codes across services.
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "SlowDown"
    )
}

/// Classifies an SDK error from `action` on `resource` (in `region`).
pub fn classify<E, R>(err: &SdkError<E, R>, resource: &str, action: &str, region: &str) -> AwsError
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(cred) = find_source::<CredentialsError>(err) {
        return match cred {
            CredentialsError::CredentialsNotLoaded(_) => AwsError::NoCredentials,
            other => {
                let text = chain_text(other);
                if text.contains("ExpiredToken") || text.contains("expired") {
                    AwsError::Expired
                } else {
                    AwsError::CredentialsFailed(text)
                }
            }
        };
    }
    let resource = resource.to_string();
    let action = action.to_string();
    match err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsError::Unreachable {
            resource,
            message: chain_text(err),
        },
        SdkError::ConstructionFailure(_) => AwsError::Service {
            resource,
            action,
            code: "RequestNotBuilt".into(),
            message: chain_text(err),
        },
        _ => {
            let code = err.code().unwrap_or("").to_string();
            let message = err.message().unwrap_or("").to_string();
            from_code(&code, &message, resource, action, region, || chain_text(err))
        }
    }
}

/// The error for an AWS error `code` (empty when the response had none).
pub(crate) fn from_code(
    code: &str,
    message: &str,
    resource: String,
    action: String,
    region: &str,
    detail: impl FnOnce() -> String,
) -> AwsError {
    match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError" => {
            AwsError::AccessDenied { resource, action }
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => AwsError::Expired,
        "NoSuchBucket" => AwsError::NoSuchBucket(resource),
        "UnrecognizedClientException" | "InvalidClientTokenId" | "AuthFailure" | "OptInRequired" => {
            AwsError::RegionNotEnabled {
                resource,
                region: region.to_string(),
            }
        }
        code if is_throttling_code(code) => AwsError::Throttled { resource, action },
        "" => AwsError::Service {
            resource,
            action,
            code: "Unknown".into(),
            message: detail(),
        },
        code => AwsError::Service {
            resource,
            action,
            code: code.to_string(),
            message: if message.is_empty() {
                detail()
            } else {
                message.to_string()
            },
        },
    }
}

/// The first error in `err`'s source chain of type `T`.
fn find_source<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The messages of an error and its sources, joined: the SDK's top message alone is often only
/// "dispatch failure".
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// The IAM action that allows API `operation` of `service`: the same name, except for the S3
/// calls whose permission is named otherwise.
pub fn iam_action(service: &str, operation: &str) -> String {
    let action = match (service, operation) {
        ("s3", "ListBuckets") => "ListAllMyBuckets",
        ("s3", "ListObjectsV2" | "ListObjects" | "HeadBucket") => "ListBucket",
        ("s3", "HeadObject") => "GetObject",
        ("s3", "GetPublicAccessBlock") => "GetBucketPublicAccessBlock",
        (_, other) => other,
    };
    format!("{service}:{action}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_advice() {
        let e = from_code(
            "AccessDenied",
            "",
            "s3://b".into(),
            "s3:ListBucket".into(),
            "us-east-1",
            String::new,
        );
        assert_eq!(
            e.to_string(),
            "access denied to s3://b: the credentials need s3:ListBucket on it (see deploy/iam-policy.json)"
        );
        let e = from_code("ExpiredToken", "x", "r".into(), "a".into(), "us-east-1", String::new);
        assert!(e.is_fatal());
        let e = from_code(
            "UnrecognizedClientException",
            "x",
            "lookup:ap-east-1".into(),
            "a".into(),
            "ap-east-1",
            String::new,
        );
        assert!(e.to_string().contains("not valid in ap-east-1"), "{e}");
        let e = from_code(
            "ThrottlingException",
            "Rate exceeded",
            "r".into(),
            "a".into(),
            "us-east-1",
            String::new,
        );
        assert!(e.is_transient());
        let e = from_code("Weird", "", "r".into(), "a".into(), "us-east-1", || "detail".into());
        assert_eq!(e.to_string(), "r: a failed: Weird: detail");
    }
}
