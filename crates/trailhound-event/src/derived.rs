//! Fields trailhound derives for a record: the `trailhound.` namespace.
//!
//! CloudTrail says where a call came from (`sourceIPAddress`) and who made it (`userIdentity`);
//! it does not say whether that address is AWS's, which network or country it is in, what kind
//! of principal made the call, or whether any of that is new for the principal. The context
//! (`trailhound-context`) works that out once per record and attaches it
//! ([`crate::Record::set_derived`]); rules, `--where` conditions and correlations then read the
//! values under these names like any other field. This module only names the fields and holds
//! their values: it knows nothing of how they are computed.
//!
//! A record without derived values (no context attached) answers the names from its own text, so a
//! test event or an enriched record written back out can carry them as a `trailhound` member.

use serde_json::Number;

use crate::path::Value;

macro_rules! fields {
    ($($variant:ident = $name:literal: $doc:literal,)*) => {
        /// A derived field (see the module documentation and the README, "Context").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DerivedField {
            $(#[doc = $doc] $variant,)*
        }

        impl DerivedField {
            /// Every derived field, in documentation order.
            pub const ALL: &'static [DerivedField] = &[$(DerivedField::$variant,)*];

            /// The field's dotted name (`trailhound.src.asn`).
            pub fn name(self) -> &'static str {
                match self {
                    $(DerivedField::$variant => $name,)*
                }
            }

            /// What the field holds, one line.
            pub fn doc(self) -> &'static str {
                match self {
                    $(DerivedField::$variant => $doc,)*
                }
            }

            /// The field a dotted path names, if it is one.
            pub fn from_path(path: &str) -> Option<DerivedField> {
                match path {
                    $($name => Some(DerivedField::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

fields! {
    SrcKind = "trailhound.src.kind": "What sourceIPAddress is: ipv4, ipv6, aws-service (a service name such as ec2.amazonaws.com), aws-internal, or other.",
    SrcPrivate = "trailhound.src.private": "The address is private, loopback or link-local (calls through a VPC endpoint show the caller's private address).",
    SrcAws = "trailhound.src.aws": "The call came from AWS: a service, AWS Internal, a VPC endpoint, or an address in AWS's published ranges. False for a public address outside them; absent when that cannot be told.",
    SrcAwsService = "trailhound.src.aws_service": "The AWS service: the range's service (EC2, S3, ...) or the service name in sourceIPAddress.",
    SrcAwsRegion = "trailhound.src.aws_region": "The region of the AWS range the address is in.",
    SrcAsn = "trailhound.src.asn": "The address's autonomous system number (GeoIP database).",
    SrcAsOrg = "trailhound.src.as_org": "The organisation of that autonomous system (GeoIP database).",
    SrcCountry = "trailhound.src.country": "The address's country, ISO 3166 two-letter code (GeoIP database).",
    SrcNetwork = "trailhound.src.network": "The network the call came from, as baselines compare them: aws, vpc, private, AS<number>, or without a GeoIP database the address's /16 (IPv4) or /48 (IPv6).",
    PrincipalKind = "trailhound.principal.kind": "Who made the call: root, iam-user, person (an SSO or federated role session), workload-role, instance (EC2 instance credentials), aws-service, service-linked-role, anonymous, or unknown.",
    PrincipalId = "trailhound.principal.id": "The principal baselines are kept for: the user, the person's session, the instance's session, or for a workload the role.",
    PrincipalByAws = "trailhound.principal.by_aws": "AWS made the call itself: an AWSService identity, a service-linked role, or a call invoked by a service from the service's own address.",
    PrincipalInstance = "trailhound.principal.instance": "The EC2 instance id instance credentials were issued to.",
    BaselineState = "trailhound.baseline.state": "learning (too little history to judge what is normal) or trained.",
    BaselinePrincipalSeen = "trailhound.baseline.principal_seen": "The principal has a profile: it was seen before.",
    BaselineNewNetwork = "trailhound.baseline.new_network": "First call of the principal from this network in the lookback.",
    BaselineNewCountry = "trailhound.baseline.new_country": "First call of the principal from this country in the lookback.",
    BaselineKeyNewNetwork = "trailhound.baseline.key_new_network": "First use of the access key from this network in the lookback.",
    BaselineKeyNewCountry = "trailhound.baseline.key_new_country": "First use of the access key from this country in the lookback.",
    BaselineKeyIdleDays = "trailhound.baseline.key_idle_days": "Whole days since the access key was last seen.",
    BaselineRoleIdleDays = "trailhound.baseline.role_idle_days": "For AssumeRole calls: whole days since the assumed role was last used.",
    BaselineRole = "trailhound.baseline.role": "For AssumeRole calls: the role assumed.",
    BaselineNewService = "trailhound.baseline.new_service": "First call of the principal to this service (eventSource) in the lookback.",
    BaselineNewRegion = "trailhound.baseline.new_region": "First call of the principal in this region in the lookback.",
    BaselineNormal = "trailhound.baseline.normal": "What was normal for the principal or key, in words, when something was new.",
}

/// One derived value.
#[derive(Debug, Clone, PartialEq)]
pub enum DerivedValue {
    Str(Box<str>),
    /// A fixed word (a kind, a state): no allocation for every record.
    Word(&'static str),
    Bool(bool),
    Number(Number),
}

impl DerivedValue {
    /// The value as a path lookup hands it out.
    pub fn as_value(&self) -> Value<'_> {
        match self {
            DerivedValue::Str(s) => Value::Str(s),
            DerivedValue::Word(s) => Value::Str(s),
            DerivedValue::Bool(b) => Value::Bool(*b),
            DerivedValue::Number(n) => Value::Number(n),
        }
    }

    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            DerivedValue::Str(s) => serde_json::Value::String(s.to_string()),
            DerivedValue::Word(s) => serde_json::Value::String(s.to_string()),
            DerivedValue::Bool(b) => serde_json::Value::Bool(*b),
            DerivedValue::Number(n) => serde_json::Value::Number(n.clone()),
        }
    }
}

impl std::fmt::Display for DerivedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DerivedValue::Str(s) => f.write_str(s),
            DerivedValue::Word(s) => f.write_str(s),
            DerivedValue::Bool(b) => write!(f, "{b}"),
            DerivedValue::Number(n) => write!(f, "{n}"),
        }
    }
}

impl From<&str> for DerivedValue {
    fn from(s: &str) -> DerivedValue {
        DerivedValue::Str(s.into())
    }
}

impl From<String> for DerivedValue {
    fn from(s: String) -> DerivedValue {
        DerivedValue::Str(s.into_boxed_str())
    }
}

impl From<bool> for DerivedValue {
    fn from(b: bool) -> DerivedValue {
        DerivedValue::Bool(b)
    }
}

impl From<u64> for DerivedValue {
    fn from(n: u64) -> DerivedValue {
        DerivedValue::Number(n.into())
    }
}

/// The derived values of one record: a few, kept in field order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derived {
    values: Vec<(DerivedField, DerivedValue)>,
}

impl Derived {
    /// Room for `n` values without growing.
    pub fn with_capacity(n: usize) -> Derived {
        Derived {
            values: Vec::with_capacity(n),
        }
    }

    /// Sets `field` (replacing an earlier value).
    pub fn set(&mut self, field: DerivedField, value: impl Into<DerivedValue>) {
        let value = value.into();
        match self.values.binary_search_by_key(&field, |(f, _)| *f) {
            Ok(at) => self.values[at].1 = value,
            Err(at) => self.values.insert(at, (field, value)),
        }
    }

    /// Sets `field` when there is a value.
    pub fn set_some<V: Into<DerivedValue>>(&mut self, field: DerivedField, value: Option<V>) {
        if let Some(value) = value {
            self.set(field, value);
        }
    }

    /// The value of `field`, if derived.
    pub fn get(&self, field: DerivedField) -> Option<&DerivedValue> {
        self.values
            .binary_search_by_key(&field, |(f, _)| *f)
            .ok()
            .map(|at| &self.values[at].1)
    }

    /// Sets `field` to a fixed word.
    pub fn set_word(&mut self, field: DerivedField, word: &'static str) {
        self.set(field, DerivedValue::Word(word));
    }

    /// A string field's text.
    pub fn text(&self, field: DerivedField) -> Option<&str> {
        match self.get(field) {
            Some(DerivedValue::Str(s)) => Some(s),
            Some(DerivedValue::Word(s)) => Some(s),
            _ => None,
        }
    }

    /// A boolean field (absent and non-boolean values are `None`).
    pub fn flag(&self, field: DerivedField) -> Option<bool> {
        match self.get(field) {
            Some(DerivedValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// A numeric field as an integer.
    pub fn number(&self, field: DerivedField) -> Option<u64> {
        match self.get(field) {
            Some(DerivedValue::Number(n)) => n.as_u64(),
            _ => None,
        }
    }

    /// Every value, in field order.
    pub fn iter(&self) -> impl Iterator<Item = (DerivedField, &DerivedValue)> {
        self.values.iter().map(|(f, v)| (*f, v))
    }

    /// Whether nothing is derived.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_in_the_namespace() {
        for field in DerivedField::ALL {
            assert!(field.name().starts_with("trailhound."), "{}", field.name());
            assert_eq!(DerivedField::from_path(field.name()), Some(*field));
            assert!(!field.doc().is_empty());
        }
        assert_eq!(DerivedField::from_path("trailhound.src"), None);
    }

    #[test]
    fn values_are_kept_in_field_order_and_replaced() {
        let mut derived = Derived::default();
        derived.set(DerivedField::SrcNetwork, "AS64500");
        derived.set(DerivedField::SrcKind, "ipv4");
        derived.set(DerivedField::SrcAsn, 64500u64);
        derived.set(DerivedField::SrcKind, "ipv6");
        let names: Vec<_> = derived.iter().map(|(f, _)| f.name()).collect();
        assert_eq!(
            names,
            ["trailhound.src.kind", "trailhound.src.asn", "trailhound.src.network"]
        );
        assert_eq!(derived.text(DerivedField::SrcKind), Some("ipv6"));
        assert_eq!(derived.number(DerivedField::SrcAsn), Some(64500));
        assert_eq!(derived.flag(DerivedField::SrcAws), None);
    }
}
