use super::*;

/// A record of `user` calling `event` from `ip` at day `day` (of March 2026), hour `hour`.
fn event(user: &str, ip: &str, day: u32, hour: u32, extra: &str) -> String {
    format!(
        r#"{{"eventTime":"2026-03-{day:02}T{hour:02}:00:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","awsRegion":"eu-west-1","sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15 Python/3.11","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{user}","accessKeyId":"AKIA{user}"}}{extra}}}"#
    )
}

/// Derives what the context would (network = the address's /16, no GeoIP), then judges and
/// learns as a hunt does.
fn derive(text: &str, judge: Option<&Baselines>) -> Derived {
    let record = Record::parse(text).expect("record");
    let context = crate::Context::new(std::sync::Arc::new(crate::ranges::AwsRanges::empty()), None);
    let context = match judge {
        Some(b) => context.with_baselines(b.clone(), BaselineOptions::default()),
        None => context,
    };
    context.derive(&record, &mut crate::Cache::default())
}

fn learn(baselines: &mut Baselines, text: &str) {
    let record = Record::parse(text).expect("record");
    let derived = derive(text, None);
    baselines.learn(&record, &derived);
}

/// Ten days of alice from 198.51.100.x, every day.
fn trained() -> Baselines {
    let mut b = Baselines::new();
    for day in 1..=10 {
        learn(&mut b, &event("alice", "198.51.100.7", day, 9, ""));
    }
    b
}

#[test]
fn a_first_run_is_learning_and_judges_nothing() {
    let mut b = Baselines::new();
    learn(&mut b, &event("alice", "198.51.100.7", 1, 9, ""));
    learn(&mut b, &event("alice", "198.51.100.7", 3, 9, ""));
    let d = derive(&event("alice", "203.0.113.9", 4, 9, ""), Some(&b));
    assert_eq!(d.text(DerivedField::BaselineState), Some("learning"));
    assert_eq!(d.flag(DerivedField::BaselineNewNetwork), None);
}

#[test]
fn the_first_deviation_is_new_and_learned_behaviour_is_not() {
    let b = trained();
    let usual = derive(&event("alice", "198.51.100.200", 11, 9, ""), Some(&b));
    assert_eq!(usual.text(DerivedField::BaselineState), Some("trained"));
    assert_eq!(usual.flag(DerivedField::BaselinePrincipalSeen), Some(true));
    assert_eq!(usual.flag(DerivedField::BaselineNewNetwork), Some(false));
    assert_eq!(usual.flag(DerivedField::BaselineKeyNewNetwork), Some(false));
    assert_eq!(usual.flag(DerivedField::BaselineNewService), Some(false));
    assert_eq!(usual.number(DerivedField::BaselineKeyIdleDays), Some(1));
    assert_eq!(
        usual.text(DerivedField::BaselineNormal),
        None,
        "nothing unusual, nothing to say"
    );

    let new = derive(&event("alice", "203.0.113.9", 11, 9, ""), Some(&b));
    assert_eq!(new.flag(DerivedField::BaselineNewNetwork), Some(true));
    assert_eq!(new.flag(DerivedField::BaselineKeyNewNetwork), Some(true));
    let normal = new.text(DerivedField::BaselineNormal).expect("what was normal");
    assert!(
        normal.contains("first call from network 203.0.0.0/16; in the last 10 days: 198.51.0.0/16 only"),
        "{normal}"
    );

    // Once learned, the new network is normal.
    let mut b = b;
    learn(&mut b, &event("alice", "203.0.113.9", 11, 9, ""));
    let again = derive(&event("alice", "203.0.113.9", 12, 9, ""), Some(&b));
    assert_eq!(again.flag(DerivedField::BaselineNewNetwork), Some(false));

    // A principal never seen has no profile to deviate from.
    let stranger = derive(&event("mallory", "203.0.113.9", 11, 9, ""), Some(&b));
    assert_eq!(stranger.flag(DerivedField::BaselinePrincipalSeen), Some(false));
    assert_eq!(stranger.flag(DerivedField::BaselineNewNetwork), None);
}

#[test]
fn values_not_seen_in_the_lookback_are_new_again() {
    let mut b = trained();
    // Alice active again from day 40; her old network last seen on day 10 (lookback 30 days).
    learn(
        &mut b,
        &event("alice", "198.51.0.1", 10, 9, "")
            .replace("2026-03-10", "2026-04-09")
            .replace("198.51.0.1", "192.0.2.1"),
    );
    let text = event("alice", "198.51.100.7", 10, 9, "").replace("2026-03-10", "2026-04-24");
    let d = derive(&text, Some(&b));
    assert_eq!(d.flag(DerivedField::BaselineNewNetwork), Some(true));
    assert_eq!(d.number(DerivedField::BaselineKeyIdleDays), Some(15));
    // A principal idle for the whole lookback is back from dormancy, not deviating.
    let d = derive(&text, Some(&trained()));
    assert_eq!(d.flag(DerivedField::BaselineNewNetwork), None);
    assert_eq!(d.flag(DerivedField::BaselineKeyNewNetwork), None);
    assert_eq!(d.number(DerivedField::BaselineKeyIdleDays), Some(45));
}

#[test]
fn new_regions_services_and_dormant_roles() {
    let mut b = trained();
    let role = r#","requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/breakglass","roleSessionName":"x"}"#;
    let assume = |day: u32| {
        event("alice", "198.51.100.7", day, 10, role)
            .replace("ListBuckets", "AssumeRole")
            .replace("s3.amazonaws.com", "sts.amazonaws.com")
    };
    learn(&mut b, &assume(1));
    let d = derive(&assume(10).replace("2026-03-10", "2026-06-10"), Some(&b));
    assert_eq!(
        d.text(DerivedField::BaselineRole),
        Some("arn:aws:iam::111122223333:role/breakglass")
    );
    assert_eq!(d.number(DerivedField::BaselineRoleIdleDays), Some(101));
    let normal = d.text(DerivedField::BaselineNormal).expect("normal");
    assert!(
        normal.contains("role arn:aws:iam::111122223333:role/breakglass last used 101 days before (2026-03-01)"),
        "{normal}"
    );

    let other_region = event("alice", "198.51.100.7", 11, 9, "").replace("eu-west-1", "ap-south-1");
    let d = derive(&other_region, Some(&b));
    assert_eq!(d.flag(DerivedField::BaselineNewRegion), Some(true));
    assert_eq!(d.flag(DerivedField::BaselineNewService), Some(false));
}

#[test]
fn aws_own_calls_are_not_profiled() {
    let mut b = trained();
    let service = r#"{"eventTime":"2026-03-11T09:00:00Z","eventName":"Decrypt","eventSource":"kms.amazonaws.com","sourceIPAddress":"cloudtrail.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"}}"#;
    learn(&mut b, service);
    assert_eq!(b.sizes().0, 1, "only alice has a profile");
    let d = derive(service, Some(&b));
    assert_eq!(d.flag(DerivedField::BaselinePrincipalSeen), None);
}

#[test]
fn profiles_stay_bounded_with_many_principals_and_addresses() {
    let mut b = Baselines::new();
    let mut worker = Baselines::new();
    // One principal from many networks: at most MAX_VALUES kept, the latest ones.
    for n in 0..200u32 {
        let ip = format!("{}.{}.1.1", 11 + n / 200, n % 200);
        let text = event("busy", &ip, 1 + n / 24, n % 24, "");
        learn(&mut worker, &text);
    }
    // Many principals.
    for n in 0..(MAX_PROFILES as u32 + 500) {
        let text = event(&format!("u{n}"), "198.51.100.7", 10, 9, "");
        let record = Record::parse(&text).expect("record");
        let mut derived = Derived::default();
        derived.set(DerivedField::PrincipalId, format!("p{n}"));
        derived.set(DerivedField::SrcNetwork, "198.51.0.0/16");
        worker.learn(&record, &derived);
    }
    let dropped = b.merge(worker);
    let (principals, keys, _) = b.sizes();
    assert!(
        principals <= MAX_PROFILES && keys <= MAX_PROFILES,
        "{principals} {keys}"
    );
    assert!(dropped >= 500, "{dropped}");
    let busy = b.principals.get("arn:aws:iam::111122223333:user/busy");
    if let Some(busy) = busy {
        assert_eq!(busy.networks.len(), MAX_VALUES);
        assert!(
            busy.networks.contains_key("11.199.0.0/16"),
            "the latest network is kept"
        );
    }
    // Saved and loaded, they are the same.
    let saved = b.save();
    assert_eq!(Baselines::load(&saved).expect("load"), b);
    // About 180 bytes per profile of this shape: the store holds a few MB at the bound.
    assert!(saved.len() < 12 << 20, "{} bytes", saved.len());
    assert!(Baselines::load(b"{\"version\":99}").is_err());
    assert!(Baselines::load(b"not json").is_err());
}

#[test]
fn agent_families() {
    assert_eq!(agent_family("aws-cli/2.15 Python/3.11"), "aws-cli");
    assert_eq!(agent_family("[S3Console/0.4]"), "S3Console");
    assert_eq!(agent_family("Boto3/1.34 md/Botocore#1.34"), "Boto3");
    assert_eq!(agent_family(""), "");
}

#[test]
fn a_worker_stays_bounded_while_it_learns() {
    // One batch of more principals and keys than twice the bound, each seen once, later ones
    // later: the worker never holds more than twice the bound, and what it keeps are the most
    // recent.
    let mut worker = Baselines::new();
    let total = 2 * MAX_PROFILES as u32 + 7_000;
    let mut most = 0;
    for n in 0..total {
        let text = format!(
            r#"{{"eventTime":"2026-03-01T00:00:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u{n}","accessKeyId":"AKIA{n:016}"}}}}"#
        );
        let mut record = Record::parse(&text).expect("record");
        record.time += Duration::seconds(i64::from(n));
        let mut derived = Derived::default();
        derived.set(DerivedField::PrincipalId, format!("p{n}"));
        derived.set(DerivedField::SrcNetwork, "198.51.0.0/16");
        worker.learn(&record, &derived);
        let (principals, keys, _) = worker.sizes();
        most = most.max(principals.max(keys));
    }
    assert!(most <= 2 * MAX_PROFILES, "{most}");
    assert!(worker.principals.contains_key(&format!("p{}", total - 1)));
    assert!(!worker.principals.contains_key("p0"));
    // Merged, the worker's dropped profiles are counted with the merge's own.
    let mut all = Baselines::new();
    let dropped = all.merge(worker);
    assert_eq!(all.sizes().0, MAX_PROFILES);
    assert_eq!(dropped, 2 * (total as usize - MAX_PROFILES));
}
