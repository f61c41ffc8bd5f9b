//! Evaluating records against a rule set: the one object a hunt drives.
//!
//! An [`Evaluator`] owns what evaluation needs beyond the compiled rules: the findings of
//! detection rules, the base-rule matches correlations count, and the scratch buffers of the
//! hot loop. Callers observe records, advance the watermark when every earlier event has been
//! read, and finish; they never see correlation internals. Workers each run their own
//! evaluator and [`Evaluator::merge`] them. The correlation state can be saved and restored,
//! so a later run continues the windows an earlier one left open.

use chrono::{DateTime, Utc};
use trailhound_event::Record;
use trailhound_finding::Finding;

use crate::correlation::CorrelationState;
use crate::ruleset::{Hit, RuleSet};

/// Evaluates records against `set`, collecting findings and correlation matches.
#[derive(Debug)]
pub struct Evaluator<'s> {
    set: &'s RuleSet,
    state: CorrelationState,
    findings: Vec<Finding>,
    /// Correlation matches not kept because the state was full.
    dropped: u64,
    scratch: String,
    with_event: bool,
}

/// What an evaluation ended with.
#[derive(Debug, Default)]
pub struct Evaluated {
    /// Detection and correlation findings, in the order they were found.
    pub findings: Vec<Finding>,
    /// Correlation matches forgotten to stay within the memory bound (see
    /// [`RuleSet::set_correlation_memory`]): the oldest groups go first. Callers must report it.
    pub dropped: u64,
    /// The groups those matches were in.
    pub evicted_groups: u64,
    /// Correlation matches that arrived after the watermark had passed their time (files
    /// delivered later than the delivery lag allows for): counted, but late.
    pub late: u64,
}

impl<'s> Evaluator<'s> {
    /// An evaluator with no state. `with_event` puts the whole record into each finding.
    pub fn new(set: &'s RuleSet, with_event: bool) -> Evaluator<'s> {
        Evaluator {
            set,
            state: CorrelationState::new(set.budget()),
            findings: Vec::new(),
            dropped: 0,
            scratch: String::new(),
            with_event,
        }
    }

    /// The rule set it evaluates.
    pub fn rules(&self) -> &'s RuleSet {
        self.set
    }

    /// Evaluates one record read from `source` (a path, an s3:// URI, `lookup:REGION`).
    pub fn observe(&mut self, record: &Record<'_>, source: &str) {
        let Evaluator {
            set,
            state,
            findings,
            dropped,
            scratch,
            with_event,
        } = self;
        state.next_record();
        set.matches(record, scratch, &mut |hit| match hit {
            Hit::Rule(rule) => findings.push(Finding::new(rule.info(), record, source, *with_event)),
            Hit::Correlation { index, part } => {
                if !set.collect(state, index, part, record, source) {
                    *dropped += 1;
                }
            }
        });
    }

    /// Folds another worker's evaluator (over the same rule set) into this one.
    pub fn merge(&mut self, other: Evaluator<'s>) {
        self.findings.extend(other.findings);
        self.state.merge(other.state);
        self.dropped += other.dropped;
    }

    /// Every event before `watermark` has been observed: correlation windows that closed
    /// before it report, and memory held for older matches is released.
    pub fn advance(&mut self, watermark: DateTime<Utc>) {
        let found = self.set.advance(&mut self.state, watermark);
        self.findings.extend(found);
    }

    /// Correlation matches held (waiting for the watermark, or in an open window).
    pub fn held(&self) -> usize {
        self.state.held()
    }

    /// Estimated bytes of correlation state held (this evaluator only; the bound is shared
    /// with every evaluator over the same rule set, see [`RuleSet::correlation_budget`]).
    pub fn held_bytes(&self) -> usize {
        self.state.bytes()
    }

    /// All records are observed: every correlation reports what its windows hold.
    pub fn finish(self) -> Evaluated {
        let late = self.state.late();
        let (evicted, evicted_groups) = self.state.evicted();
        let mut findings = self.findings;
        findings.extend(self.set.evaluate(self.state));
        Evaluated {
            findings,
            dropped: self.dropped + evicted,
            evicted_groups,
            late,
        }
    }

    /// The correlation state as bytes, for [`Evaluator::restore`] in a later run. Findings
    /// already made are not part of it.
    pub fn save(&self) -> Vec<u8> {
        self.state.save(&self.set.correlation_ids())
    }

    /// Continues from a state [`Evaluator::save`] wrote, replacing this evaluator's state.
    /// Returns how many saved groups belonged to correlations this rule set no longer has
    /// (they are dropped). A damaged or foreign state is an error and changes nothing.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<usize, String> {
        let (state, dropped) = CorrelationState::restore(bytes, &self.set.correlation_ids(), self.set.budget())?;
        self.state = state;
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{RuleFile, parse_rules};

    /// A detection of failed console logins and a correlation of three from one address in
    /// ten minutes.
    fn set() -> RuleSet {
        let text = "title: failed login\nname: failed-login\nlogsource: {product: aws}\ndetection:\n  sel:\n    eventName: ConsoleLogin\n    errorMessage: Failed authentication\n  condition: sel\n---\ntitle: burst\nname: burst\ncorrelation:\n  type: event_count\n  rules: [failed-login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n  condition: {gte: 3}\n";
        let (rules, errors) = parse_rules(&RuleFile {
            path: "r.yml".into(),
            text: text.into(),
            tests: None,
        });
        assert!(errors.is_empty(), "{errors:?}");
        let (set, errors) = RuleSet::new(rules);
        assert!(errors.is_empty(), "{errors:?}");
        set
    }

    fn observe(evaluator: &mut Evaluator<'_>, minute: u32) {
        let json = format!(
            r#"{{"eventTime":"2024-03-01T12:{minute:02}:00Z","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","eventID":"e{minute}","sourceIPAddress":"203.0.113.9","errorMessage":"Failed authentication","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/u"}}}}"#
        );
        let record = trailhound_event::Record::parse(&json).expect("record");
        evaluator.observe(&record, "test");
    }

    fn correlations(evaluated: &Evaluated) -> usize {
        evaluated.findings.iter().filter(|f| f.correlation.is_some()).count()
    }

    #[test]
    fn a_saved_state_continues_in_a_later_run() {
        let set = set();
        // The first run sees two failures; the window is still open when it ends.
        let mut first = Evaluator::new(&set, false);
        observe(&mut first, 0);
        observe(&mut first, 2);
        first.advance("2024-03-01T12:03:00Z".parse().expect("time"));
        let saved = first.save();
        assert_eq!(correlations(&first.finish()), 0, "two are not a burst");
        // Without the saved state, the third failure alone is no burst either.
        let mut fresh = Evaluator::new(&set, false);
        observe(&mut fresh, 5);
        assert_eq!(correlations(&fresh.finish()), 0);
        // With it, the third completes the window the first run opened.
        let mut second = Evaluator::new(&set, false);
        assert_eq!(second.restore(&saved), Ok(0));
        assert_eq!(second.held(), 2);
        observe(&mut second, 5);
        let evaluated = second.finish();
        assert_eq!(correlations(&evaluated), 1);
        let finding = evaluated
            .findings
            .iter()
            .find(|f| f.correlation.is_some())
            .expect("burst");
        assert_eq!(finding.correlation.as_ref().map(|c| c.count), Some(3));
        assert_eq!(finding.event_id.as_deref(), Some("e5"));
    }

    /// The same event delivered twice (an organization trail and an account trail, or a file
    /// read again) counts once towards a burst, in one run and across a restored state.
    #[test]
    fn an_event_delivered_twice_counts_once() {
        let set = set();
        let mut evaluator = Evaluator::new(&set, false);
        for minute in [0, 2] {
            observe(&mut evaluator, minute);
            observe(&mut evaluator, minute);
        }
        evaluator.advance("2024-03-01T12:03:00Z".parse().expect("time"));
        // The same two again, after they were swept into the window.
        observe(&mut evaluator, 2);
        let saved = evaluator.save();
        assert_eq!(
            correlations(&evaluator.finish()),
            0,
            "two failures, however often delivered"
        );
        // A state continued twice (two invocations merged) still holds two failures.
        let mut first = Evaluator::new(&set, false);
        first.restore(&saved).expect("restore");
        let mut second = Evaluator::new(&set, false);
        second.restore(&saved).expect("restore");
        first.merge(second);
        assert_eq!(correlations(&first.finish()), 0);
        let mut third = Evaluator::new(&set, false);
        third.restore(&saved).expect("restore");
        observe(&mut third, 5);
        let evaluated = third.finish();
        let counts: Vec<u64> = evaluated
            .findings
            .iter()
            .filter_map(|f| f.correlation.as_ref().map(|c| c.count))
            .collect();
        assert_eq!(counts, vec![3], "the third distinct failure makes the burst");
    }

    #[test]
    fn a_damaged_or_foreign_state_is_refused_and_changes_nothing() {
        let set = set();
        let mut evaluator = Evaluator::new(&set, false);
        observe(&mut evaluator, 0);
        assert!(evaluator.restore(b"{not json").is_err());
        assert!(
            evaluator
                .restore(br#"{"version":99,"strings":[],"swept_to":null,"late":0,"groups":[]}"#)
                .is_err()
        );
        // A group whose entries name strings the state does not hold.
        let bad = r#"{"version":1,"strings":[],"swept_to":null,"late":0,"groups":[{"correlation":"burst","key":"k","pending":[{"time":"2024-03-01T12:00:00Z","aux":0,"event_id":"None","event":[9,0,0,0,0,0,0,0,0,0,0]}],"window":[]}]}"#;
        assert!(evaluator.restore(bad.as_bytes()).is_err());
        assert_eq!(evaluator.held(), 1, "the state before the failed restores is kept");
        // A state of a correlation this set no longer has is dropped, and counted.
        let gone = r#"{"version":1,"strings":[],"swept_to":null,"late":0,"groups":[{"correlation":"retired","key":"k","pending":[],"window":[]}]}"#;
        assert_eq!(evaluator.restore(gone.as_bytes()), Ok(1));
    }

    /// A failed login from `ip` at `second` seconds past noon.
    fn observe_from(evaluator: &mut Evaluator<'_>, ip: &str, second: u32) {
        let time = chrono::DateTime::<Utc>::from_timestamp(1_709_294_400 + i64::from(second), 0)
            .expect("time")
            .to_rfc3339();
        let json = format!(
            r#"{{"eventTime":"{time}","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","eventID":"{ip}-{second}","sourceIPAddress":"{ip}","errorMessage":"Failed authentication","userAgent":"agent {ip}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/u"}}}}"#
        );
        let record = trailhound_event::Record::parse(&json).expect("record");
        evaluator.observe(&record, "test");
    }

    #[test]
    fn correlation_memory_is_bounded_and_the_oldest_groups_are_forgotten_and_counted() {
        let set = set();
        set.set_correlation_memory(crate::MIN_CORRELATION_MEMORY);
        let limit = set.correlation_budget().limit();
        let mut evaluator = Evaluator::new(&set, false);
        // Every failure from its own address: a group per match, none ever a burst.
        for i in 0..20_000u32 {
            observe_from(
                &mut evaluator,
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                i,
            );
            assert!(set.correlation_budget().used() <= limit, "over the bound after {i}");
        }
        assert!(evaluator.held_bytes() <= limit);
        assert!(evaluator.held() > 100, "the bound still holds many groups");
        // A burst at the end is still counted: the oldest groups went, not the newest matches.
        for second in [30_000, 30_001, 30_002] {
            observe_from(&mut evaluator, "203.0.113.9", second);
        }
        let evaluated = evaluator.finish();
        assert_eq!(correlations(&evaluated), 1);
        assert!(evaluated.dropped > 0 && evaluated.evicted_groups > 0, "{evaluated:?}");
        assert_eq!(evaluated.dropped, evaluated.evicted_groups, "one match per group");
        assert_eq!(set.correlation_budget().used(), 0, "a finished evaluator holds nothing");
    }

    #[test]
    fn evaluators_over_one_rule_set_share_the_memory_bound() {
        let set = set();
        set.set_correlation_memory(crate::MIN_CORRELATION_MEMORY);
        let limit = set.correlation_budget().limit();
        let mut workers = [Evaluator::new(&set, false), Evaluator::new(&set, false)];
        for i in 0..10_000u32 {
            for (w, worker) in workers.iter_mut().enumerate() {
                observe_from(worker, &format!("10.{w}.{}.{}", i >> 8, i & 255), i);
            }
            assert!(set.correlation_budget().used() <= limit, "over the bound after {i}");
        }
        let [first, second] = workers;
        let held = first.held_bytes() + second.held_bytes();
        assert_eq!(set.correlation_budget().used(), held);
        let mut merged = Evaluator::new(&set, false);
        merged.merge(first);
        merged.merge(second);
        assert!(set.correlation_budget().used() <= limit);
        drop(merged);
        assert_eq!(set.correlation_budget().used(), 0);
    }

    #[test]
    fn a_restored_state_over_the_bound_is_brought_within_it_and_the_loss_counted() {
        let set = set();
        let mut first = Evaluator::new(&set, false);
        for i in 0..20_000u32 {
            observe_from(&mut first, &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255), i);
        }
        let saved = first.save();
        let small = self::set();
        small.set_correlation_memory(crate::MIN_CORRELATION_MEMORY);
        let mut second = Evaluator::new(&small, false);
        assert_eq!(second.restore(&saved), Ok(0));
        assert!(second.held_bytes() <= crate::MIN_CORRELATION_MEMORY);
        let kept = second.held();
        assert!(kept > 0 && kept < 20_000, "{kept}");
        assert_eq!(second.finish().dropped, 20_000 - kept as u64);
    }

    #[test]
    fn interned_strings_of_forgotten_matches_are_released() {
        let set = set();
        let mut evaluator = Evaluator::new(&set, false);
        for i in 0..5_000u32 {
            observe_from(&mut evaluator, &format!("10.0.{}.{}", i >> 8, i & 255), i);
        }
        let full = evaluator.held_bytes();
        // Everything is past its window: the matches go, and so do the strings only they used.
        evaluator.advance("2024-03-02T00:00:00Z".parse().expect("time"));
        assert_eq!(evaluator.held(), 0);
        assert!(
            evaluator.held_bytes() < full / 100,
            "{} of {full} bytes still held",
            evaluator.held_bytes()
        );
    }
}
