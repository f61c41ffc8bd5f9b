//! What `sourceIPAddress` is: an address (public or private), an AWS service's name, or AWS
//! Internal; and the network label baselines compare.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of `sourceIPAddress` (the value of `trailhound.src.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Ipv4,
    Ipv6,
    /// A service's name (`ec2.amazonaws.com`): the service made the call.
    AwsService,
    /// `AWS Internal`.
    AwsInternal,
    /// Anything else (missing, a host name, garbage).
    Other,
}

impl SourceKind {
    /// The name `trailhound.src.kind` holds.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Ipv4 => "ipv4",
            SourceKind::Ipv6 => "ipv6",
            SourceKind::AwsService => "aws-service",
            SourceKind::AwsInternal => "aws-internal",
            SourceKind::Other => "other",
        }
    }
}

/// A classified `sourceIPAddress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub kind: SourceKind,
    /// The address, when it is one (an IPv4-mapped IPv6 address is given as IPv4).
    pub ip: Option<IpAddr>,
}

impl Source {
    /// Classifies a `sourceIPAddress` value.
    pub fn classify(value: Option<&str>) -> Source {
        let Some(value) = value.map(str::trim) else {
            return Source {
                kind: SourceKind::Other,
                ip: None,
            };
        };
        if let Ok(ip) = value.parse::<IpAddr>() {
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                v4 => v4,
            };
            let kind = if ip.is_ipv4() {
                SourceKind::Ipv4
            } else {
                SourceKind::Ipv6
            };
            return Source { kind, ip: Some(ip) };
        }
        let kind = if value.eq_ignore_ascii_case("AWS Internal") {
            SourceKind::AwsInternal
        } else if is_service_name(value) {
            SourceKind::AwsService
        } else {
            SourceKind::Other
        };
        Source { kind, ip: None }
    }

    /// Whether the address is private, loopback, link-local, shared (CGNAT) or unspecified:
    /// not routable on the internet, so no GeoIP or AWS range can place it.
    pub fn private(&self) -> bool {
        self.ip.is_some_and(|ip| match ip {
            IpAddr::V4(v4) => private_v4(v4),
            IpAddr::V6(v6) => private_v6(v6),
        })
    }
}

/// `service.amazonaws.com` (or a regional form, `*.amazonaws.com.cn`), as CloudTrail writes
/// the service that made a call.
fn is_service_name(value: &str) -> bool {
    let host = value.as_bytes();
    let ends_with =
        |suffix: &[u8]| host.len() > suffix.len() && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    (ends_with(b".amazonaws.com") || ends_with(b".amazonaws.com.cn") || ends_with(b".amazon.com"))
        && host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        // 100.64.0.0/10, shared address space (carrier-grade NAT)
        || (a == 100 && (64..128).contains(&b))
}

fn private_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        // fc00::/7 unique local, fe80::/10 link-local
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// The fallback network of a public address when no GeoIP database names its AS: its /16
/// (IPv4) or /48 (IPv6), written as a prefix.
pub fn prefix_network(ip: IpAddr) -> String {
    // Written by hand: `format!` cost about a thousand instructions, for every record from a
    // public address.
    let mut out = String::with_capacity(24);
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            push_decimal(&mut out, a);
            out.push('.');
            push_decimal(&mut out, b);
            out.push_str(".0.0/16");
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            for segment in &segments[..3] {
                push_hex(&mut out, *segment);
                out.push(':');
            }
            out.push_str(":/48");
        }
    }
    out
}

/// `n` in decimal.
fn push_decimal(out: &mut String, n: u8) {
    if n >= 100 {
        out.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        out.push(char::from(b'0' + n / 10 % 10));
    }
    out.push(char::from(b'0' + n % 10));
}

/// `n` in lower-case hex without leading zeros (as `{:x}`).
fn push_hex(out: &mut String, n: u16) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12u16, 8, 4, 0] {
        let digit = usize::from((n >> shift) & 0xf);
        if digit != 0 || started || shift == 0 {
            started = true;
            out.push(char::from(DIGITS[digit]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_cloudtrail_writes() {
        let kind = |v: &str| Source::classify(Some(v)).kind;
        assert_eq!(kind("203.0.113.9"), SourceKind::Ipv4);
        assert_eq!(kind("2001:db8::1"), SourceKind::Ipv6);
        assert_eq!(kind("::ffff:203.0.113.9"), SourceKind::Ipv4);
        assert_eq!(kind("ec2.amazonaws.com"), SourceKind::AwsService);
        assert_eq!(kind("AWS Internal"), SourceKind::AwsInternal);
        assert_eq!(kind("evil.example.com"), SourceKind::Other);
        assert_eq!(kind("x\u{1b}[31m.amazonaws.com"), SourceKind::Other);
        assert_eq!(Source::classify(None).kind, SourceKind::Other);
    }

    #[test]
    fn private_addresses_are_told_apart() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.1.1",
            "fd00::1",
            "fe80::1",
            "::1",
        ] {
            assert!(Source::classify(Some(private)).private(), "{private}");
        }
        for public in ["203.0.113.9", "100.128.0.1", "8.8.8.8", "2001:db8::1"] {
            assert!(!Source::classify(Some(public)).private(), "{public}");
        }
    }

    #[test]
    fn prefix_networks_are_written_as_format_writes_them() {
        for a in 0..=255u8 {
            for b in [0u8, 1, 9, 10, 99, 100, 199, 200, 255] {
                let ip = IpAddr::from([a, b, 7, 7]);
                assert_eq!(prefix_network(ip), format!("{a}.{b}.0.0/16"));
            }
        }
        for s in [0u16, 1, 0xf, 0x10, 0xff, 0x100, 0xfff, 0x1000, 0xabcd, 0xffff, 0x0a0b] {
            let ip = IpAddr::from([s, s.rotate_left(4), s.rotate_right(8), 1, 2, 3, 4, 5]);
            let v = [s, s.rotate_left(4), s.rotate_right(8)];
            assert_eq!(prefix_network(ip), format!("{:x}:{:x}:{:x}::/48", v[0], v[1], v[2]));
        }
    }

    #[test]
    fn prefix_networks() {
        assert_eq!(prefix_network("203.0.113.9".parse().expect("ip")), "203.0.0.0/16");
        assert_eq!(
            prefix_network("2001:db8:1:2::1".parse().expect("ip")),
            "2001:db8:1::/48"
        );
    }
}
