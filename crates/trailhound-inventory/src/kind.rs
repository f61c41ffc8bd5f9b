//! The closed set of inventory kinds, and the tables `inventory show` groups them into.
//!
//! A kind's name is the contract shared with the reasons file (`kind: iam_user`) and with the
//! snapshot format; a table's name is what a person types (`inventory show users`). This module
//! only names things: it holds no items.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What an inventory item is. Serialized snake_case, as the reasons file names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    IamUser,
    IamGroup,
    IamRole,
    AccessKey,
    IamPolicy,
    Vpc,
    Subnet,
    VpnGateway,
    CustomerGateway,
    InternetGateway,
    NatGateway,
    RouteTable,
    NetworkAcl,
    SecurityGroup,
    VpcPeering,
    FlowLog,
    S3Bucket,
    Trail,
    /// The one item holding account-wide settings (aliases, password policy). Reasons entries
    /// never match it.
    Account,
}

impl Kind {
    /// Every kind, in sort order.
    pub const ALL: [Kind; 19] = [
        Kind::IamUser,
        Kind::IamGroup,
        Kind::IamRole,
        Kind::AccessKey,
        Kind::IamPolicy,
        Kind::Vpc,
        Kind::Subnet,
        Kind::VpnGateway,
        Kind::CustomerGateway,
        Kind::InternetGateway,
        Kind::NatGateway,
        Kind::RouteTable,
        Kind::NetworkAcl,
        Kind::SecurityGroup,
        Kind::VpcPeering,
        Kind::FlowLog,
        Kind::S3Bucket,
        Kind::Trail,
        Kind::Account,
    ];

    /// The snake_case name used in snapshots and reasons files.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::IamUser => "iam_user",
            Kind::IamGroup => "iam_group",
            Kind::IamRole => "iam_role",
            Kind::AccessKey => "access_key",
            Kind::IamPolicy => "iam_policy",
            Kind::Vpc => "vpc",
            Kind::Subnet => "subnet",
            Kind::VpnGateway => "vpn_gateway",
            Kind::CustomerGateway => "customer_gateway",
            Kind::InternetGateway => "internet_gateway",
            Kind::NatGateway => "nat_gateway",
            Kind::RouteTable => "route_table",
            Kind::NetworkAcl => "network_acl",
            Kind::SecurityGroup => "security_group",
            Kind::VpcPeering => "vpc_peering",
            Kind::FlowLog => "flow_log",
            Kind::S3Bucket => "s3_bucket",
            Kind::Trail => "trail",
            Kind::Account => "account",
        }
    }

    /// What a person calls one of these in a sentence ("user backup-svc exists").
    pub fn noun(self) -> &'static str {
        match self {
            Kind::IamUser => "user",
            Kind::IamGroup => "group",
            Kind::IamRole => "role",
            Kind::AccessKey => "access key",
            Kind::IamPolicy => "policy",
            Kind::Vpc => "VPC",
            Kind::Subnet => "subnet",
            Kind::VpnGateway => "VPN gateway",
            Kind::CustomerGateway => "customer gateway",
            Kind::InternetGateway => "internet gateway",
            Kind::NatGateway => "NAT gateway",
            Kind::RouteTable => "route table",
            Kind::NetworkAcl => "network ACL",
            Kind::SecurityGroup => "security group",
            Kind::VpcPeering => "VPC peering",
            Kind::FlowLog => "flow log",
            Kind::S3Bucket => "bucket",
            Kind::Trail => "trail",
            Kind::Account => "account",
        }
    }

    /// The API the kind is read from, as CloudTrail names event sources.
    pub fn service(self) -> &'static str {
        match self {
            Kind::IamUser | Kind::IamGroup | Kind::IamRole | Kind::AccessKey | Kind::IamPolicy | Kind::Account => {
                "iam.amazonaws.com"
            }
            Kind::S3Bucket => "s3.amazonaws.com",
            Kind::Trail => "cloudtrail.amazonaws.com",
            _ => "ec2.amazonaws.com",
        }
    }

    /// The `inventory show` table the kind is listed in.
    pub fn table(self) -> Table {
        match self {
            Kind::IamUser => Table::Users,
            Kind::AccessKey => Table::Keys,
            Kind::IamGroup => Table::Groups,
            Kind::IamRole => Table::Roles,
            Kind::IamPolicy => Table::Policies,
            Kind::Vpc => Table::Vpcs,
            Kind::Subnet => Table::Subnets,
            Kind::VpnGateway | Kind::CustomerGateway | Kind::InternetGateway | Kind::NatGateway => Table::Gateways,
            Kind::RouteTable => Table::RouteTables,
            Kind::NetworkAcl => Table::NetworkAcls,
            Kind::SecurityGroup => Table::SecurityGroups,
            Kind::VpcPeering => Table::Peering,
            Kind::FlowLog => Table::FlowLogs,
            Kind::S3Bucket => Table::Buckets,
            Kind::Trail => Table::Trails,
            Kind::Account => Table::Account,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(text: &str) -> Result<Kind, String> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown inventory kind {text:?} (one of {})", names.join(", "))
        })
    }
}

/// A table of `inventory show`: one or more kinds under a plural name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Users,
    Keys,
    Groups,
    Roles,
    Policies,
    Vpcs,
    Subnets,
    /// VPN, customer, internet and NAT gateways.
    Gateways,
    RouteTables,
    NetworkAcls,
    SecurityGroups,
    Peering,
    FlowLogs,
    Buckets,
    Trails,
    Account,
}

impl Table {
    /// Every table, in the order `inventory show` lists them.
    pub const ALL: [Table; 16] = [
        Table::Users,
        Table::Keys,
        Table::Groups,
        Table::Roles,
        Table::Policies,
        Table::Vpcs,
        Table::Subnets,
        Table::Gateways,
        Table::RouteTables,
        Table::NetworkAcls,
        Table::SecurityGroups,
        Table::Peering,
        Table::FlowLogs,
        Table::Buckets,
        Table::Trails,
        Table::Account,
    ];

    /// The name a person types.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Keys => "keys",
            Table::Groups => "groups",
            Table::Roles => "roles",
            Table::Policies => "policies",
            Table::Vpcs => "vpcs",
            Table::Subnets => "subnets",
            Table::Gateways => "gateways",
            Table::RouteTables => "route-tables",
            Table::NetworkAcls => "network-acls",
            Table::SecurityGroups => "security-groups",
            Table::Peering => "peering",
            Table::FlowLogs => "flow-logs",
            Table::Buckets => "buckets",
            Table::Trails => "trails",
            Table::Account => "account",
        }
    }

    /// The kinds listed in this table.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Table::Users => &[Kind::IamUser],
            Table::Keys => &[Kind::AccessKey],
            Table::Groups => &[Kind::IamGroup],
            Table::Roles => &[Kind::IamRole],
            Table::Policies => &[Kind::IamPolicy],
            Table::Vpcs => &[Kind::Vpc],
            Table::Subnets => &[Kind::Subnet],
            Table::Gateways => &[
                Kind::VpnGateway,
                Kind::CustomerGateway,
                Kind::InternetGateway,
                Kind::NatGateway,
            ],
            Table::RouteTables => &[Kind::RouteTable],
            Table::NetworkAcls => &[Kind::NetworkAcl],
            Table::SecurityGroups => &[Kind::SecurityGroup],
            Table::Peering => &[Kind::VpcPeering],
            Table::FlowLogs => &[Kind::FlowLog],
            Table::Buckets => &[Kind::S3Bucket],
            Table::Trails => &[Kind::Trail],
            Table::Account => &[Kind::Account],
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Table {
    type Err = String;

    /// Accepts the plural name, with `_` for `-`, case-insensitively.
    fn from_str(text: &str) -> Result<Table, String> {
        let wanted = text.to_ascii_lowercase().replace('_', "-");
        Table::ALL.into_iter().find(|t| t.as_str() == wanted).ok_or_else(|| {
            let names: Vec<&str> = Table::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown inventory table {text:?} (one of {})", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_the_reasons_file_kinds_plus_account() {
        let reasons: Vec<&str> = trailhound_finding::reasons::KINDS
            .iter()
            .copied()
            .filter(|k| *k != "finding")
            .collect();
        let ours: Vec<&str> = Kind::ALL
            .iter()
            .filter(|k| **k != Kind::Account)
            .map(|k| k.as_str())
            .collect();
        assert_eq!(ours, reasons);
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>(), Ok(kind));
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert!(kind.table().kinds().contains(&kind), "{kind} in its table");
        }
        assert!("IamUser".parse::<Kind>().is_err());
    }

    #[test]
    fn tables_cover_every_kind_once() {
        let mut covered: Vec<Kind> = Table::ALL.iter().flat_map(|t| t.kinds().iter().copied()).collect();
        covered.sort();
        assert_eq!(covered, Kind::ALL.to_vec());
        assert_eq!("security_groups".parse::<Table>(), Ok(Table::SecurityGroups));
        assert_eq!("Route-Tables".parse::<Table>(), Ok(Table::RouteTables));
        let err = "dragons".parse::<Table>().expect_err("unknown");
        assert!(err.contains("users, keys"), "{err}");
    }
}
