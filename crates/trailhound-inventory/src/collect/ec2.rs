//! The EC2 collector, region by region: VPCs, subnets, VPN, customer, internet and NAT gateways,
//! route tables, network ACLs, security groups with their rules, VPC peering, flow logs.
//!
//! One task per region. DescribeVpcs goes first: a region that is not enabled or does not
//! answer fails there, and is recorded once instead of eleven times. Lists inside an item
//! (rules, routes, entries) are sorted so two collections of the same network read the same.

use crate::kind::Kind;
use crate::snapshot::Item;
use aws_sdk_ec2::types::{IpPermission, Tag};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{Call, Found, Scope, all_pages, names, text};
use trailhound_aws::AwsError;

pub(crate) async fn collect(scope: &Scope) -> Found {
    let mut found = Found::default();
    let mut tasks = JoinSet::new();
    for region in scope.regions.iter() {
        tasks.spawn(region_items(scope.clone(), region.clone()));
    }
    found.join(tasks, "ec2", "DescribeVpcs").await;
    found
}

/// An error that says the region itself is unusable, so its other calls would fail alike.
fn region_unusable(error: &AwsError) -> bool {
    match error {
        AwsError::RegionNotEnabled { .. } | AwsError::Unreachable { .. } => true,
        // No AWS error code at all: whatever answered is not a working EC2 endpoint.
        AwsError::Service { code, .. } => code == "Unknown",
        _ => false,
    }
}

async fn region_items(scope: Scope, region: String) -> Found {
    let mut found = Found::default();
    let ec2 = scope.aws.ec2(&region);
    let resource = format!("ec2 in {region}");
    let on = |operation| Call {
        service: "ec2",
        operation,
        region: Some(&region),
        resource: &resource,
    };
    let vpcs = scope
        .call(on("DescribeVpcs"), async {
            all_pages!(ec2.describe_vpcs().into_paginator().send())
        })
        .await;
    match vpcs {
        Ok(pages) => {
            for vpc in pages.iter().flat_map(|p| p.vpcs()) {
                let Some(id) = vpc.vpc_id() else { continue };
                let item = Item::new(Kind::Vpc, id, name_tag(vpc.tags()))
                    .with("cidr", text(vpc.cidr_block()))
                    .with("is_default", vpc.is_default().unwrap_or(false))
                    .with("state", text(vpc.state().map(|s| s.as_str())));
                found.items.push(regional(item, &region));
            }
        }
        Err(failure) => {
            let unusable = region_unusable(&failure.error);
            found.fail(failure);
            if unusable {
                return found;
            }
        }
    }
    let (subnets, vpn, customer, internet, nat, routes, acls, groups, peering, flow) = tokio::join!(
        scope.call(on("DescribeSubnets"), async {
            all_pages!(ec2.describe_subnets().into_paginator().send())
        }),
        // The two gateway listings are not paginated.
        scope.call(on("DescribeVpnGateways"), ec2.describe_vpn_gateways().send()),
        scope.call(on("DescribeCustomerGateways"), ec2.describe_customer_gateways().send()),
        scope.call(on("DescribeInternetGateways"), async {
            all_pages!(ec2.describe_internet_gateways().into_paginator().send())
        }),
        scope.call(on("DescribeNatGateways"), async {
            all_pages!(ec2.describe_nat_gateways().into_paginator().send())
        }),
        scope.call(on("DescribeRouteTables"), async {
            all_pages!(ec2.describe_route_tables().into_paginator().send())
        }),
        scope.call(on("DescribeNetworkAcls"), async {
            all_pages!(ec2.describe_network_acls().into_paginator().send())
        }),
        scope.call(on("DescribeSecurityGroups"), async {
            all_pages!(ec2.describe_security_groups().into_paginator().send())
        }),
        scope.call(on("DescribeVpcPeeringConnections"), async {
            all_pages!(ec2.describe_vpc_peering_connections().into_paginator().send())
        }),
        scope.call(on("DescribeFlowLogs"), async {
            all_pages!(ec2.describe_flow_logs().into_paginator().send())
        }),
    );
    let mut items = Vec::new();
    for subnet in found.take(subnets).iter().flatten().flat_map(|p| p.subnets()) {
        let Some(id) = subnet.subnet_id() else { continue };
        items.push(
            Item::new(Kind::Subnet, id, name_tag(subnet.tags()))
                .with("vpc_id", text(subnet.vpc_id()))
                .with("cidr", text(subnet.cidr_block()))
                .with("availability_zone", text(subnet.availability_zone()))
                .with("map_public_ip", subnet.map_public_ip_on_launch().unwrap_or(false)),
        );
    }
    for gateway in found.take(vpn).iter().flat_map(|o| o.vpn_gateways()) {
        let Some(id) = gateway.vpn_gateway_id() else { continue };
        let attached = gateway
            .vpc_attachments()
            .iter()
            .filter(|a| a.state().is_none_or(|s| s.as_str() != "detached"))
            .filter_map(|a| a.vpc_id());
        items.push(
            Item::new(Kind::VpnGateway, id, name_tag(gateway.tags()))
                .with("state", text(gateway.state().map(|s| s.as_str())))
                .with("vpc_ids", names(attached))
                .with("bgp_asn", gateway.amazon_side_asn().map_or(Value::Null, Value::from)),
        );
    }
    for gateway in found.take(customer).iter().flat_map(|o| o.customer_gateways()) {
        let Some(id) = gateway.customer_gateway_id() else {
            continue;
        };
        items.push(
            Item::new(Kind::CustomerGateway, id, name_tag(gateway.tags()))
                .with("state", text(gateway.state()))
                .with("ip_address", text(gateway.ip_address()))
                .with("bgp_asn", text(gateway.bgp_asn())),
        );
    }
    for gateway in found
        .take(internet)
        .iter()
        .flatten()
        .flat_map(|p| p.internet_gateways())
    {
        let Some(id) = gateway.internet_gateway_id() else {
            continue;
        };
        let attachments = gateway.attachments();
        // An internet gateway has no state of its own; its attachment's is what matters.
        let state = attachments
            .first()
            .and_then(|a| a.state())
            .map_or("detached", |s| s.as_str());
        items.push(
            Item::new(Kind::InternetGateway, id, name_tag(gateway.tags()))
                .with("state", state)
                .with("vpc_ids", names(attachments.iter().filter_map(|a| a.vpc_id()))),
        );
    }
    for gateway in found.take(nat).iter().flatten().flat_map(|p| p.nat_gateways()) {
        let Some(id) = gateway.nat_gateway_id() else { continue };
        let ip = gateway.nat_gateway_addresses().iter().find_map(|a| a.public_ip());
        let mut item = Item::new(Kind::NatGateway, id, name_tag(gateway.tags()))
            .with("state", text(gateway.state().map(|s| s.as_str())))
            .with("vpc_ids", names(gateway.vpc_id()))
            .with("ip_address", text(ip));
        item.created = gateway.create_time().and_then(super::time);
        items.push(item);
    }
    for table in found.take(routes).iter().flatten().flat_map(|p| p.route_tables()) {
        let Some(id) = table.route_table_id() else { continue };
        let routes = table.routes().iter().map(|r| {
            let destination = r
                .destination_cidr_block()
                .or(r.destination_ipv6_cidr_block())
                .or(r.destination_prefix_list_id());
            let target = r
                .gateway_id()
                .or(r.nat_gateway_id())
                .or(r.transit_gateway_id())
                .or(r.vpc_peering_connection_id())
                .or(r.network_interface_id())
                .or(r.instance_id())
                .or(r.egress_only_internet_gateway_id())
                .or(r.local_gateway_id())
                .or(r.carrier_gateway_id())
                .or(r.core_network_arn());
            json!({"destination": destination, "target": target})
        });
        items.push(
            Item::new(Kind::RouteTable, id, name_tag(table.tags()))
                .with("vpc_id", text(table.vpc_id()))
                .with("routes", sorted(routes)),
        );
    }
    for acl in found.take(acls).iter().flatten().flat_map(|p| p.network_acls()) {
        let Some(id) = acl.network_acl_id() else { continue };
        let entries = acl.entries().iter().map(|e| {
            json!({
                "rule_number": e.rule_number(),
                "egress": e.egress(),
                "protocol": e.protocol(),
                "action": e.rule_action().map(|a| a.as_str()),
                "cidr": e.cidr_block().or(e.ipv6_cidr_block()),
                "from_port": e.port_range().and_then(|p| p.from()),
                "to_port": e.port_range().and_then(|p| p.to()),
            })
        });
        items.push(
            Item::new(Kind::NetworkAcl, id, name_tag(acl.tags()))
                .with("vpc_id", text(acl.vpc_id()))
                .with("is_default", acl.is_default().unwrap_or(false))
                .with("entries", sorted(entries)),
        );
    }
    for group in found.take(groups).iter().flatten().flat_map(|p| p.security_groups()) {
        let Some(id) = group.group_id() else { continue };
        items.push(
            Item::new(Kind::SecurityGroup, id, group.group_name().unwrap_or_default())
                .with("vpc_id", text(group.vpc_id()))
                .with("description", text(group.description()))
                .with("ingress", rules(group.ip_permissions()))
                .with("egress", rules(group.ip_permissions_egress())),
        );
    }
    for peering in found
        .take(peering)
        .iter()
        .flatten()
        .flat_map(|p| p.vpc_peering_connections())
    {
        let Some(id) = peering.vpc_peering_connection_id() else {
            continue;
        };
        let requester = peering.requester_vpc_info();
        let accepter = peering.accepter_vpc_info();
        items.push(
            Item::new(Kind::VpcPeering, id, name_tag(peering.tags()))
                .with("requester_vpc", text(requester.and_then(|v| v.vpc_id())))
                .with("accepter_vpc", text(accepter.and_then(|v| v.vpc_id())))
                .with("accepter_account", text(accepter.and_then(|v| v.owner_id())))
                .with(
                    "status",
                    text(peering.status().and_then(|s| s.code()).map(|c| c.as_str())),
                ),
        );
    }
    for log in found.take(flow).iter().flatten().flat_map(|p| p.flow_logs()) {
        let Some(id) = log.flow_log_id() else { continue };
        let mut item = Item::new(Kind::FlowLog, id, name_tag(log.tags()))
            .with("resource_id", text(log.resource_id()))
            .with("status", text(log.flow_log_status()))
            .with("destination", text(log.log_destination().or(log.log_group_name())));
        item.created = log.creation_time().and_then(super::time);
        items.push(item);
    }
    found
        .items
        .extend(items.into_iter().map(|item| regional(item, &region)));
    found
}

fn regional(mut item: Item, region: &str) -> Item {
    item.region = Some(region.to_string());
    item
}

/// The `Name` tag, or empty.
fn name_tag(tags: &[Tag]) -> String {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(Tag::value)
        .unwrap_or_default()
        .to_string()
}

/// JSON objects in a stable order (by their text).
fn sorted(values: impl Iterator<Item = Value>) -> Value {
    let mut list: Vec<(String, Value)> = values.map(|v| (v.to_string(), v)).collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list.dedup_by(|a, b| a.0 == b.0);
    Value::Array(list.into_iter().map(|(_, v)| v).collect())
}

/// A security group's permissions as one rule per source: `{protocol, from_port, to_port, cidr,
/// group, description}`. A prefix-list source is given in `cidr` (its id), as the range it
/// stands for.
pub(crate) fn rules(permissions: &[IpPermission]) -> Value {
    let mut out = Vec::new();
    for permission in permissions {
        let protocol = permission.ip_protocol().unwrap_or("-1");
        // All traffic has no ports; some emulators say -1 where AWS says nothing.
        let (from, to) = if protocol == "-1" {
            (None, None)
        } else {
            (permission.from_port(), permission.to_port())
        };
        let rule = |cidr: Option<&str>, group: Option<&str>, description: Option<&str>| {
            json!({
                "protocol": protocol,
                "from_port": from,
                "to_port": to,
                "cidr": cidr,
                "group": group,
                "description": description.filter(|d| !d.is_empty()),
            })
        };
        let before = out.len();
        for range in permission.ip_ranges() {
            out.push(rule(range.cidr_ip(), None, range.description()));
        }
        for range in permission.ipv6_ranges() {
            out.push(rule(range.cidr_ipv6(), None, range.description()));
        }
        for pair in permission.user_id_group_pairs() {
            out.push(rule(None, pair.group_id(), pair.description()));
        }
        for list in permission.prefix_list_ids() {
            out.push(rule(list.prefix_list_id(), None, list.description()));
        }
        if out.len() == before {
            out.push(rule(None, None, None));
        }
    }
    sorted(out.into_iter())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{IpRange, UserIdGroupPair};

    use super::*;

    #[test]
    fn permissions_become_one_rule_per_source() {
        let ssh = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(22)
            .to_port(22)
            .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").description("anyone").build())
            .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/8").build())
            .build();
        let all = IpPermission::builder()
            .ip_protocol("-1")
            .from_port(-1)
            .to_port(-1)
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
            .build();
        let rules = rules(&[ssh, all]);
        assert_eq!(
            rules,
            json!([
                {"cidr": "0.0.0.0/0", "description": "anyone", "from_port": 22, "group": null, "protocol": "tcp", "to_port": 22},
                {"cidr": "10.0.0.0/8", "description": null, "from_port": 22, "group": null, "protocol": "tcp", "to_port": 22},
                {"cidr": null, "description": null, "from_port": null, "group": "sg-1", "protocol": "-1", "to_port": null},
            ])
        );
    }

    #[test]
    fn unusable_regions_are_told_from_denied_calls() {
        let denied = AwsError::AccessDenied {
            resource: "ec2".into(),
            action: "ec2:DescribeVpcs".into(),
        };
        assert!(!region_unusable(&denied));
        let off = AwsError::RegionNotEnabled {
            resource: "ec2".into(),
            region: "ap-east-1".into(),
        };
        assert!(region_unusable(&off));
    }
}
