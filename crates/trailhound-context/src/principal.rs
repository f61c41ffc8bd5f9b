//! Who made a call: the kind of principal, the identity baselines are kept for, and whether AWS
//! made the call itself.

use trailhound_event::{FieldPath, Record};

use crate::source::SourceKind;

/// The kind of principal (the value of `trailhound.principal.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    Root,
    IamUser,
    /// A person's role session: IAM Identity Center (SSO), SAML or web-identity federation, a
    /// federated user, or a console session.
    Person,
    /// A role session of a workload (CI, an application, a Lambda function).
    WorkloadRole,
    /// Credentials of an EC2 instance's role (the session is named after the instance id).
    Instance,
    /// An AWS service (`userIdentity.type` AWSService).
    AwsService,
    /// A service-linked role (AWS acting for a service in the account).
    ServiceLinkedRole,
    /// Another account (`AWSAccount`) or an anonymous caller.
    Anonymous,
    Unknown,
}

impl PrincipalKind {
    /// The name `trailhound.principal.kind` holds.
    pub fn name(self) -> &'static str {
        match self {
            PrincipalKind::Root => "root",
            PrincipalKind::IamUser => "iam-user",
            PrincipalKind::Person => "person",
            PrincipalKind::WorkloadRole => "workload-role",
            PrincipalKind::Instance => "instance",
            PrincipalKind::AwsService => "aws-service",
            PrincipalKind::ServiceLinkedRole => "service-linked-role",
            PrincipalKind::Anonymous => "anonymous",
            PrincipalKind::Unknown => "unknown",
        }
    }
}

/// A classified principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// What baselines are kept for (see `trailhound.principal.id`).
    pub id: Option<String>,
    /// The instance id of instance credentials.
    pub instance: Option<String>,
    /// AWS made the call itself.
    pub by_aws: bool,
}

/// `userIdentity.sessionContext.webIdFederationData.federatedProvider`: build it once.
pub fn web_identity_path() -> FieldPath {
    FieldPath::new("userIdentity.sessionContext.webIdFederationData.federatedProvider")
}

/// Classifies the principal of `record`, whose `sourceIPAddress` is of kind `source`;
/// `web_identity` is [`web_identity_path`].
pub fn classify(record: &Record<'_>, source: SourceKind, web_identity: &FieldPath) -> Principal {
    let identity = &record.identity;
    let arn = identity.arn.as_deref();
    let issuer = identity
        .session_context
        .as_ref()
        .and_then(|c| c.session_issuer.as_ref());
    let issuer_arn = issuer.and_then(|i| i.arn.as_deref());
    let mut instance = None;
    let (kind, id) = match identity.kind.as_deref().unwrap_or("") {
        "Root" => (PrincipalKind::Root, arn.map(str::to_string)),
        "IAMUser" => (PrincipalKind::IamUser, arn.map(str::to_string)),
        "AWSService" => (
            PrincipalKind::AwsService,
            identity.invoked_by.as_deref().map(str::to_string),
        ),
        "FederatedUser" | "SAMLUser" | "WebIdentityUser" | "IdentityCenterUser" => (
            PrincipalKind::Person,
            arn.or(identity.principal_id.as_deref()).map(str::to_string),
        ),
        "AWSAccount" | "Anonymous" | "AnonymousUser" => (
            PrincipalKind::Anonymous,
            identity
                .account_id
                .as_deref()
                .or(identity.principal_id.as_deref())
                .map(str::to_string),
        ),
        "AssumedRole" => {
            let (role, session) = arn.and_then(split_session).unwrap_or(("", ""));
            let role_arn = issuer_arn.map(str::to_string).or_else(|| {
                arn.filter(|_| !role.is_empty())
                    .map(|a| a.rsplit_once('/').map_or(a, |(r, _)| r).to_string())
            });
            if is_service_linked(issuer_arn.unwrap_or(""), role) {
                (PrincipalKind::ServiceLinkedRole, role_arn)
            } else if is_instance_id(session) {
                instance = Some(session.to_string());
                (PrincipalKind::Instance, arn.map(str::to_string))
            } else if role.starts_with("AWSReservedSSO_")
                || session.contains('@')
                || record.console_session.as_deref() == Some("true")
                || has_web_identity(record, web_identity)
            {
                (PrincipalKind::Person, arn.map(str::to_string))
            } else {
                (PrincipalKind::WorkloadRole, role_arn)
            }
        }
        _ => (PrincipalKind::Unknown, arn.map(str::to_string)),
    };
    let from_service = matches!(source, SourceKind::AwsService | SourceKind::AwsInternal);
    let by_aws = matches!(kind, PrincipalKind::AwsService | PrincipalKind::ServiceLinkedRole)
        || (identity.invoked_by.is_some() && from_service);
    Principal {
        kind,
        id,
        instance,
        by_aws,
    }
}

/// `arn:aws:sts::1:assumed-role/ROLE/SESSION` -> (ROLE, SESSION).
fn split_session(arn: &str) -> Option<(&str, &str)> {
    // arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION; compared by parts, which costs no
    // substring searcher per call.
    let colon = memchr::memchr_iter(b':', arn.as_bytes()).nth(4)?;
    let resource = arn.get(colon + 1..)?;
    let rest = resource.strip_prefix("assumed-role/")?;
    let slash = memchr::memchr(b'/', rest.as_bytes())?;
    Some((rest.get(..slash)?, rest.get(slash + 1..)?))
}

/// A service-linked role: under `/aws-service-role/`, or named `AWSServiceRoleFor...`.
fn is_service_linked(issuer_arn: &str, role: &str) -> bool {
    // One searcher for the process: `str::contains` built one for every assumed-role record.
    static PATH: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(":role/aws-service-role/"));
    PATH.find(issuer_arn.as_bytes()).is_some() || role.starts_with("AWSServiceRoleFor")
}

/// `i-` and 8 or 17 hex digits.
fn is_instance_id(session: &str) -> bool {
    session
        .strip_prefix("i-")
        .is_some_and(|hex| (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A web-identity session (`sessionContext.webIdFederationData`) is a person's unless the
/// provider is a workload's (EKS service accounts, GitHub Actions and the like use OIDC too, but
/// their sessions are workload roles). Only the identity member is read.
fn has_web_identity(record: &Record<'_>, path: &FieldPath) -> bool {
    // The scan noted whether the member exists: most sessions have none, and looking for the
    // path searched the identity's text twice (the key, then `\u` escapes).
    if !record.has_web_identity_data() {
        return false;
    }
    record.visit(path, &mut |provider| {
        provider
            .text()
            .is_some_and(|p| !p.contains("oidc.eks.") && !p.contains("token.actions.githubusercontent.com"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(identity: &str, source: &str) -> Principal {
        let text = format!(
            r#"{{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","sourceIPAddress":"{source}","userIdentity":{identity}}}"#
        );
        let record = Record::parse(&text).expect("record");
        classify(
            &record,
            crate::source::Source::classify(Some(source)).kind,
            &web_identity_path(),
        )
    }

    #[test]
    fn assumed_role_arns_split_into_role_and_session() {
        let split = |arn| split_session(arn);
        assert_eq!(
            split("arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com"),
            Some(("Admin", "alice@example.com"))
        );
        assert_eq!(
            split("arn:aws-cn:sts::1:assumed-role/R/i-0abc/x"),
            Some(("R", "i-0abc/x"))
        );
        assert_eq!(split("arn:aws:sts::1:assumed-role//"), Some(("", "")));
        assert_eq!(split("arn:aws:sts::1:assumed-role/NoSession"), None);
        assert_eq!(split("arn:aws:iam::1:user/bob"), None);
        assert_eq!(split("arn:aws:sts::1"), None);
        assert_eq!(split("assumed-role/R/s"), None);
        assert_eq!(split("arn:aws:sts::1:assumed-role/Ré/sé"), Some(("Ré", "sé")));
    }

    #[test]
    fn kinds_of_principal() {
        let role = |arn: &str, issuer: &str| {
            format!(
                r#"{{"type":"AssumedRole","arn":"{arn}","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"{issuer}"}}}}}}"#
            )
        };
        let cases = [
            (
                r#"{"type":"Root","arn":"arn:aws:iam::1:root"}"#.to_string(),
                PrincipalKind::Root,
                Some("arn:aws:iam::1:root"),
            ),
            (
                r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/alice"}"#.to_string(),
                PrincipalKind::IamUser,
                Some("arn:aws:iam::1:user/alice"),
            ),
            (
                role(
                    "arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com",
                    "arn:aws:iam::1:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123",
                ),
                PrincipalKind::Person,
                Some("arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com"),
            ),
            (
                role(
                    "arn:aws:sts::1:assumed-role/deploy/botocore-session-17",
                    "arn:aws:iam::1:role/deploy",
                ),
                PrincipalKind::WorkloadRole,
                Some("arn:aws:iam::1:role/deploy"),
            ),
            (
                role(
                    "arn:aws:sts::1:assumed-role/web/i-0123456789abcdef0",
                    "arn:aws:iam::1:role/web",
                ),
                PrincipalKind::Instance,
                Some("arn:aws:sts::1:assumed-role/web/i-0123456789abcdef0"),
            ),
            (
                role(
                    "arn:aws:sts::1:assumed-role/AWSServiceRoleForECS/ecs",
                    "arn:aws:iam::1:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
                ),
                PrincipalKind::ServiceLinkedRole,
                Some("arn:aws:iam::1:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS"),
            ),
            (
                r#"{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"}"#.to_string(),
                PrincipalKind::AwsService,
                Some("cloudtrail.amazonaws.com"),
            ),
            (
                r#"{"type":"AWSAccount","accountId":"999988887777"}"#.to_string(),
                PrincipalKind::Anonymous,
                Some("999988887777"),
            ),
            (r#"{}"#.to_string(), PrincipalKind::Unknown, None),
        ];
        for (identity, kind, id) in cases {
            let p = principal(&identity, "203.0.113.9");
            assert_eq!(p.kind, kind, "{identity}");
            assert_eq!(p.id.as_deref(), id, "{identity}");
        }
        let instance = principal(
            &role("arn:aws:sts::1:assumed-role/web/i-0123abcd", "arn:aws:iam::1:role/web"),
            "203.0.113.9",
        );
        assert_eq!(instance.instance.as_deref(), Some("i-0123abcd"));
        // Not an instance id: wrong length, not hex.
        for session in ["i-0123abc", "i-0123456789abcdefg", "instance"] {
            let p = principal(
                &role(
                    &format!("arn:aws:sts::1:assumed-role/web/{session}"),
                    "arn:aws:iam::1:role/web",
                ),
                "203.0.113.9",
            );
            assert_eq!(p.kind, PrincipalKind::WorkloadRole, "{session}");
        }
    }

    #[test]
    fn web_identity_sessions_are_people_unless_a_workload_provider_issued_them() {
        let session = |data: &str| {
            format!(
                r#"{{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/app/s1","sessionContext":{{"sessionIssuer":{{"type":"Role","arn":"arn:aws:iam::1:role/app"}},"webIdFederationData":{data}}}}}"#
            )
        };
        // Every role session carries an empty webIdFederationData: not a person for that.
        assert_eq!(
            principal(&session("{}"), "203.0.113.9").kind,
            PrincipalKind::WorkloadRole
        );
        assert_eq!(
            principal(
                &session(r#"{"federatedProvider":"accounts.google.com"}"#),
                "203.0.113.9"
            )
            .kind,
            PrincipalKind::Person
        );
        assert_eq!(
            principal(
                &session(
                    r#"{"federatedProvider":"arn:aws:iam::1:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"}"#
                ),
                "203.0.113.9"
            )
            .kind,
            PrincipalKind::WorkloadRole
        );
    }

    #[test]
    fn calls_aws_makes_itself() {
        assert!(
            principal(
                r#"{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}"#,
                "ec2.amazonaws.com"
            )
            .by_aws
        );
        // A person's call a service made for them, from the service's address.
        assert!(
            principal(
                r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","invokedBy":"cloudformation.amazonaws.com"}"#,
                "cloudformation.amazonaws.com"
            )
            .by_aws
        );
        // invokedBy alone, from the person's own address (the console), is the person's.
        assert!(
            !principal(
                r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","invokedBy":"signin.amazonaws.com"}"#,
                "203.0.113.9"
            )
            .by_aws
        );
        assert!(
            !principal(
                r#"{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"}"#,
                "ec2.amazonaws.com"
            )
            .by_aws
        );
    }
}
