//! One CloudTrail record: typed core fields, plus the rest reachable by path.
//!
//! Only the core fields are deserialized up front (borrowed from the input where possible). A
//! field outside the core is found by walking the record's text along its path: no JSON tree is
//! built, so a record costs about its text, and nothing in one field can hide another.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use crate::derived::Derived;
use crate::path::{self, FieldPath, Value};
use crate::scanner::Cursor;
use crate::time::parse_event_time;

/// Why a record was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A syntax error at a byte offset of the text being scanned.
    #[error("invalid JSON: {message}")]
    Syntax { at: usize, message: &'static str },
    #[error("record is {0}, not an object")]
    NotAnObject(&'static str),
    #[error("not a CloudTrail record (it has no eventName, eventSource or eventTime)")]
    NotCloudTrail,
    #[error("record has no {0}")]
    Missing(&'static str),
    #[error("eventTime {0:?} is not a time")]
    BadTime(String),
    #[error("{field} is {found}, expected {expected}")]
    WrongType {
        field: &'static str,
        found: &'static str,
        expected: &'static str,
    },
}

/// Who made the call (`userIdentity`).
#[derive(Debug, Default)]
pub struct Identity<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub arn: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    pub access_key_id: Option<Cow<'a, str>>,
    pub user_name: Option<Cow<'a, str>>,
    pub principal_id: Option<Cow<'a, str>>,
    pub invoked_by: Option<Cow<'a, str>>,
    pub session_context: Option<SessionContext<'a>>,
}

#[derive(Debug, Default)]
pub struct SessionContext<'a> {
    pub session_issuer: Option<SessionIssuer<'a>>,
}

/// The role or user whose credentials a session came from.
#[derive(Debug, Default)]
pub struct SessionIssuer<'a> {
    pub kind: Option<Cow<'a, str>>,
    pub arn: Option<Cow<'a, str>>,
    pub user_name: Option<Cow<'a, str>>,
}

/// The core fields as read, before the required ones are checked.
#[derive(Default)]
struct Core<'a> {
    event_time: Option<Cow<'a, str>>,
    /// Logstash's and Elastic's `@timestamp`, the time when a pipeline moved `eventTime` there.
    timestamp: Option<Cow<'a, str>>,
    event_name: Option<Cow<'a, str>>,
    event_source: Option<Cow<'a, str>>,
    aws_region: Option<Cow<'a, str>>,
    source_ip_address: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    error_code: Option<Cow<'a, str>>,
    error_message: Option<Cow<'a, str>>,
    console_session: Option<Cow<'a, str>>,
    /// An optional extra field held something other than a string.
    odd_extras: bool,
    event_id: Option<Cow<'a, str>>,
    recipient_account_id: Option<Cow<'a, str>>,
    event_type: Option<Cow<'a, str>>,
    read_only: Option<bool>,
    user_identity: Option<Identity<'a>>,
    /// A `userIdentity.sessionContext` held a `webIdFederationData` other than `{}` (any of
    /// them, should a key repeat).
    web_identity_data: bool,
    /// The core fields met so far, a bit each ([`Core::met`]).
    met: u16,
    /// The first core field met twice.
    repeated: Option<&'static str>,
}

impl Core<'_> {
    /// Notes that the core field `key` (bit `bit`) is met, and whether it was met before: a
    /// record with a key twice is read with the last value, as JSON readers do, but CloudTrail
    /// never writes one twice, and readers that take the first would see another event.
    fn met(&mut self, bit: u16, key: &'static str) {
        if self.met & (1 << bit) != 0 && self.repeated.is_none() {
            self.repeated = Some(key);
        }
        self.met |= 1 << bit;
    }
}

/// Collects the core fields while the scanner walks a record object. A core field of the wrong
/// type is remembered (the first one is reported) and skipped, so the scanner can still check
/// and pass the rest of the record: in an envelope, the next record must be reachable.
#[derive(Default)]
pub(crate) struct CoreReader<'a> {
    core: Core<'a>,
    problem: Option<RecordError>,
    members: Members<'a>,
    /// A member that holds records instead of being part of one, and where its value starts
    /// (the first such member of the object, or the first strong one: see [`Self::holds_strongly`]).
    holder: Option<(Holder, usize)>,
    /// `holder` is a search export's copy of the record (Splunk's `_raw`, Elasticsearch's
    /// `_source`), which is opened even when the object has event fields of its own.
    strong: bool,
}

/// How an object that is not a record can hold records (see `document`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A delivery envelope's `Records`.
    Records,
    /// A list of wrapped events: a LookupEvents response's `Events`, CloudWatch Logs'
    /// `events` (FilterLogEvents, GetLogEvents) or `logEvents` (a subscription's message).
    List,
    /// An object that is, or holds, the record: an EventBridge event's `detail`, a
    /// LookupEvents result's `CloudTrailEvent` parsed to one, a Splunk export line's `result`,
    /// an Elasticsearch response's `hits` or hit's `_source`, an ECS document's `event`.
    Detail,
    /// The record as JSON text: a LookupEvents result's `CloudTrailEvent`, a CloudWatch Logs
    /// event's `message`, a Splunk result's `_raw`, an ECS document's `event.original`.
    Text,
}

/// The `eventType` of CloudTrail Insights events.
pub const INSIGHT_EVENT_TYPE: &str = "AwsCloudTrailInsight";

/// Most top-level members a record's index holds; a record with more is walked from its start.
const MAX_MEMBERS: usize = 28;

/// Where each top-level member of a record sits in its text, noted while the scanner reads the
/// record anyway: a lookup of `requestParameters.x` then walks that member's value only, not
/// every member before it (the identity, the times, the user agent...). Keys are borrowed from
/// the text; a record with an escaped key, or more than [`MAX_MEMBERS`] members, has no index
/// and is walked whole, as before.
#[derive(Clone, Copy)]
pub(crate) struct Members<'a> {
    items: [(&'a str, &'a str); MAX_MEMBERS],
    len: u8,
    complete: bool,
}

impl Default for Members<'_> {
    fn default() -> Self {
        Members {
            items: [("", ""); MAX_MEMBERS],
            len: 0,
            complete: true,
        }
    }
}

impl<'a> Members<'a> {
    /// Notes the member `key` whose value spans `start..end` of `text`.
    fn push(&mut self, text: &'a str, key: &str, start: usize, end: usize) {
        if !self.complete {
            return;
        }
        // The key is borrowed from `text` unless it had escapes: find it there by address.
        let offset = (key.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        let key = text
            .get(offset..offset.saturating_add(key.len()))
            .filter(|k| k.as_ptr() == key.as_ptr());
        match (key, text.get(start..end)) {
            (Some(key), Some(value)) if usize::from(self.len) < MAX_MEMBERS => {
                self.items[usize::from(self.len)] = (key, value);
                self.len += 1;
            }
            _ => self.complete = false,
        }
    }

    /// Every member as `(key, value text)`, in the record's order; `None` without an index.
    pub(crate) fn get(&self) -> Option<&[(&'a str, &'a str)]> {
        self.complete.then(|| &self.items[..usize::from(self.len)])
    }
}

impl<'a> CoreReader<'a> {
    /// Handles one top-level member of a record.
    pub fn member(&mut self, c: &mut Cursor<'a>, key: &str) -> Result<(), RecordError> {
        let start = c.at();
        self.read_member(c, key)?;
        self.members.push(c.text(), key, start, c.at());
        Ok(())
    }

    fn read_member(&mut self, c: &mut Cursor<'a>, key: &str) -> Result<(), RecordError> {
        let core = &mut self.core;
        let problem = &mut self.problem;
        match key {
            "eventTime" => {
                core.met(0, "eventTime");
                core.event_time = string_field(c, "eventTime", problem)?;
            }
            // Not CloudTrail's: a string is kept for a record without `eventTime`, anything
            // else is passed over.
            "@timestamp" => {
                core.timestamp = match c.peek() {
                    Some(b'"') => Some(c.string()?),
                    _ => c.skip().map(|()| None)?,
                }
            }
            "eventName" => {
                core.met(1, "eventName");
                core.event_name = string_field(c, "eventName", problem)?;
            }
            "eventSource" => {
                core.met(2, "eventSource");
                core.event_source = string_field(c, "eventSource", problem)?;
            }
            "awsRegion" => {
                core.met(3, "awsRegion");
                core.aws_region = string_field(c, "awsRegion", problem)?;
            }
            "sourceIPAddress" => {
                core.met(4, "sourceIPAddress");
                core.source_ip_address = string_field(c, "sourceIPAddress", problem)?;
            }
            "userAgent" => {
                core.met(5, "userAgent");
                core.user_agent = string_field(c, "userAgent", problem)?;
            }
            "errorCode" => {
                core.met(6, "errorCode");
                core.error_code = string_field(c, "errorCode", problem)?;
            }
            // Optional extras: read when they are strings (as CloudTrail writes them), otherwise
            // read from the text at lookup rather than rejecting the record.
            "errorMessage" => {
                core.met(7, "errorMessage");
                core.error_message = lenient_string(c, &mut core.odd_extras)?;
            }
            "sessionCredentialFromConsole" => core.console_session = lenient_string(c, &mut core.odd_extras)?,
            "eventID" => {
                core.met(8, "eventID");
                core.event_id = string_field(c, "eventID", problem)?;
            }
            "recipientAccountId" => {
                core.met(9, "recipientAccountId");
                core.recipient_account_id = string_field(c, "recipientAccountId", problem)?;
            }
            "eventType" => {
                core.met(10, "eventType");
                core.event_type = string_field(c, "eventType", problem)?;
            }
            "readOnly" => {
                core.met(11, "readOnly");
                core.read_only = bool_field(c, "readOnly", problem)?;
            }
            "userIdentity" => {
                core.met(12, "userIdentity");
                core.user_identity = read_identity(c, problem, &mut core.web_identity_data)?;
            }
            // Not a record's: a holder's (see `document`), told by where its value starts.
            "Records" => self.hold(c, Holder::Records, None)?,
            // Search exports: Splunk's REST results (`results`), Elasticsearch's `hits.hits`.
            "Events" | "events" | "logEvents" | "results" => self.hold(c, Holder::List, Some(b'['))?,
            "hits" if c.peek() == Some(b'[') => self.hold(c, Holder::List, None)?,
            // Splunk's export lines (`result`), Elasticsearch's response (`hits`), and ECS
            // documents (Elastic's `event` object, whose `original` is the record's text).
            "detail" | "result" | "hits" | "event" => self.hold(c, Holder::Detail, Some(b'{'))?,
            "message" | "original" => self.hold(c, Holder::Text, Some(b'"'))?,
            "_raw" => self.hold_strongly(c, Holder::Text, b'"')?,
            "_source" => self.hold_strongly(c, Holder::Detail, b'{')?,
            // Tools that save LookupEvents results with the record parsed leave it an object.
            "CloudTrailEvent" => match c.peek() {
                Some(b'{') => self.hold(c, Holder::Detail, None)?,
                _ => self.hold(c, Holder::Text, Some(b'"'))?,
            },
            _ => c.skip()?,
        }
        Ok(())
    }

    /// Notes a member that may hold records (when its value starts with `opening`, if given),
    /// and moves past it.
    fn hold(&mut self, c: &mut Cursor<'a>, holder: Holder, opening: Option<u8>) -> Result<(), RecordError> {
        if opening.is_none_or(|byte| c.peek() == Some(byte)) && self.holder.is_none() {
            self.holder = Some((holder, c.at()));
        }
        c.skip()
    }

    /// Notes a search export's copy of the record (when its value starts with `opening`),
    /// in place of any other holder, and moves past it.
    fn hold_strongly(&mut self, c: &mut Cursor<'a>, holder: Holder, opening: u8) -> Result<(), RecordError> {
        if c.peek() == Some(opening) && !self.strong {
            self.holder = Some((holder, c.at()));
            self.strong = true;
        }
        c.skip()
    }

    /// The object's first member that may hold records, and where its value starts.
    pub fn holder(&self) -> Option<(Holder, usize)> {
        self.holder
    }

    /// Whether the holder is a search export's copy of the record (Splunk's `_raw`,
    /// Elasticsearch's `_source`): the object around it is the export's, even with event
    /// fields (Splunk's extracted ones, flattened), and the copy is what is read.
    pub fn holds_strongly(&self) -> bool {
        self.strong
    }

    /// Whether any CloudTrail event field was seen (to tell records from other JSON objects).
    pub fn looks_like_an_event(&self) -> bool {
        self.core.event_name.is_some()
            || self.core.event_source.is_some()
            || self.core.event_time.is_some()
            || self.problem.is_some()
    }

    /// Whether the object read was a record for sure (its event name and its time or source):
    /// what a list is read on from after damage, never an object nested in a record.
    pub(crate) fn is_surely_a_record(&self) -> bool {
        self.core.event_name.is_some() && (self.core.event_time.is_some() || self.core.event_source.is_some())
    }

    /// The record, once its object has been read; `raw` is its text.
    pub fn finish(self, raw: &'a str) -> Result<Record<'a>, RecordError> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        let core = self.core;
        // A pipeline that moved `eventTime` to `@timestamp` (Logstash's CloudTrail codec,
        // Elastic) left the time there.
        let event_time = core
            .event_time
            .or(core.timestamp)
            .ok_or(RecordError::Missing("eventTime"))?;
        let time = parse_event_time(&event_time).ok_or_else(|| RecordError::BadTime(clip(&event_time)))?;
        // A CloudTrail Insights event is about many calls, not one: it has no eventName,
        // eventSource or userIdentity of its own (the calls' are in `insightDetails`). Read as
        // empty, so that no rule about the calls themselves matches it.
        let insight = core.event_type.as_deref() == Some(INSIGHT_EVENT_TYPE);
        let required = |value: Option<Cow<'a, str>>, field| match value {
            Some(value) => Ok(value),
            None if insight => Ok(Cow::Borrowed("")),
            None => Err(RecordError::Missing(field)),
        };
        let event_name = required(core.event_name, "eventName")?;
        let event_source = required(core.event_source, "eventSource")?;
        let identity = match core.user_identity {
            Some(identity) => identity,
            None if insight => Identity::default(),
            None => return Err(RecordError::Missing("userIdentity")),
        };
        Ok(Record {
            raw,
            time,
            event_time,
            event_name,
            event_source,
            identity,
            aws_region: core.aws_region,
            source_ip: core.source_ip_address,
            user_agent: core.user_agent,
            error_code: core.error_code,
            error_message: core.error_message,
            console_session: core.console_session,
            odd_extras: core.odd_extras,
            event_id: core.event_id,
            recipient_account_id: core.recipient_account_id,
            event_type: core.event_type,
            read_only: core.read_only,
            web_identity_data: core.web_identity_data,
            repeated: core.repeated,
            members: self.members,
            derived: OnceLock::new(),
        })
    }
}

/// Notes the first wrong-typed field, then skips its value.
fn wrong<T>(
    c: &mut Cursor<'_>,
    problem: &mut Option<RecordError>,
    field: &'static str,
    expected: &'static str,
) -> Result<Option<T>, RecordError> {
    let found = c.kind();
    problem.get_or_insert(RecordError::WrongType { field, found, expected });
    c.skip()?;
    Ok(None)
}

/// A string or null value.
fn string_field<'a>(
    c: &mut Cursor<'a>,
    field: &'static str,
    problem: &mut Option<RecordError>,
) -> Result<Option<Cow<'a, str>>, RecordError> {
    match c.peek() {
        Some(b'"') => c.string().map(Some),
        Some(b'n') => c.skip().map(|()| None),
        _ => wrong(c, problem, field, "a string"),
    }
}

/// A string value; any other kind is skipped and flagged, so lookups walk the text instead.
fn lenient_string<'a>(c: &mut Cursor<'a>, odd: &mut bool) -> Result<Option<Cow<'a, str>>, RecordError> {
    match c.peek() {
        Some(b'"') => c.string().map(Some),
        Some(b'n') => c.skip().map(|()| None),
        _ => {
            *odd = true;
            c.skip().map(|()| None)
        }
    }
}

/// A boolean (or the strings "true"/"false", as some old records have), or null.
fn bool_field(
    c: &mut Cursor<'_>,
    field: &'static str,
    problem: &mut Option<RecordError>,
) -> Result<Option<bool>, RecordError> {
    match c.peek() {
        Some(b't') => c.skip().map(|()| Some(true)),
        Some(b'f') => c.skip().map(|()| Some(false)),
        Some(b'"') => Ok(Some(c.string()?.eq_ignore_ascii_case("true"))),
        Some(b'n') => c.skip().map(|()| None),
        _ => wrong(c, problem, field, "a boolean"),
    }
}

/// Whether the value is an object to descend into; null and wrong types are consumed.
fn object_field(
    c: &mut Cursor<'_>,
    field: &'static str,
    problem: &mut Option<RecordError>,
) -> Result<bool, RecordError> {
    match c.peek() {
        Some(b'{') => Ok(true),
        Some(b'n') => c.skip().map(|()| false),
        _ => wrong::<()>(c, problem, field, "an object").map(|_| false),
    }
}

fn read_identity<'a>(
    c: &mut Cursor<'a>,
    problem: &mut Option<RecordError>,
    web_identity_data: &mut bool,
) -> Result<Option<Identity<'a>>, RecordError> {
    if !object_field(c, "userIdentity", problem)? {
        return Ok(None);
    }
    let mut identity = Identity::default();
    c.object(&mut |c, key| {
        match key {
            "type" => identity.kind = string_field(c, "userIdentity.type", problem)?,
            "arn" => identity.arn = string_field(c, "userIdentity.arn", problem)?,
            "accountId" => identity.account_id = string_field(c, "userIdentity.accountId", problem)?,
            "accessKeyId" => identity.access_key_id = string_field(c, "userIdentity.accessKeyId", problem)?,
            "userName" => identity.user_name = string_field(c, "userIdentity.userName", problem)?,
            "principalId" => identity.principal_id = string_field(c, "userIdentity.principalId", problem)?,
            "invokedBy" => identity.invoked_by = string_field(c, "userIdentity.invokedBy", problem)?,
            "sessionContext" => identity.session_context = read_session_context(c, problem, web_identity_data)?,
            _ => c.skip()?,
        }
        Ok(())
    })?;
    Ok(Some(identity))
}

fn read_session_context<'a>(
    c: &mut Cursor<'a>,
    problem: &mut Option<RecordError>,
    web_identity_data: &mut bool,
) -> Result<Option<SessionContext<'a>>, RecordError> {
    if !object_field(c, "userIdentity.sessionContext", problem)? {
        return Ok(None);
    }
    let mut context = SessionContext::default();
    c.object(&mut |c, key| {
        if key == "webIdFederationData" {
            // CloudTrail writes `{}` for most sessions: an empty object holds no path either.
            let start = c.at();
            c.skip()?;
            let value = c.text().get(start..c.at()).unwrap_or_default();
            *web_identity_data |= !value.bytes().filter(|b| !b.is_ascii_whitespace()).eq(*b"{}");
            return Ok(());
        }
        if key != "sessionIssuer" {
            return c.skip();
        }
        if object_field(c, "userIdentity.sessionContext.sessionIssuer", problem)? {
            let mut issuer = SessionIssuer::default();
            c.object(&mut |c, key| {
                match key {
                    "type" => issuer.kind = string_field(c, "userIdentity.sessionContext.sessionIssuer.type", problem)?,
                    "arn" => issuer.arn = string_field(c, "userIdentity.sessionContext.sessionIssuer.arn", problem)?,
                    "userName" => {
                        issuer.user_name =
                            string_field(c, "userIdentity.sessionContext.sessionIssuer.userName", problem)?
                    }
                    _ => c.skip()?,
                }
                Ok(())
            })?;
            context.session_issuer = Some(issuer);
        }
        Ok(())
    })?;
    Ok(Some(context))
}

/// A parsed record. Core fields are typed; everything else is reached with [`Record::visit`].
pub struct Record<'a> {
    raw: &'a str,
    pub time: DateTime<Utc>,
    pub event_time: Cow<'a, str>,
    pub event_name: Cow<'a, str>,
    pub event_source: Cow<'a, str>,
    pub aws_region: Option<Cow<'a, str>>,
    pub source_ip: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub error_code: Option<Cow<'a, str>>,
    pub error_message: Option<Cow<'a, str>>,
    /// `sessionCredentialFromConsole`: "true" for calls made from a console session.
    pub console_session: Option<Cow<'a, str>>,
    odd_extras: bool,
    pub event_id: Option<Cow<'a, str>>,
    pub recipient_account_id: Option<Cow<'a, str>>,
    pub event_type: Option<Cow<'a, str>>,
    pub read_only: Option<bool>,
    pub identity: Identity<'a>,
    web_identity_data: bool,
    repeated: Option<&'static str>,
    members: Members<'a>,
    /// The `trailhound.` fields, once a context has derived them.
    derived: OnceLock<Derived>,
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("event_time", &self.event_time)
            .field("event_name", &self.event_name)
            .field("event_source", &self.event_source)
            .finish_non_exhaustive()
    }
}

impl<'a> Record<'a> {
    /// The first core field (`eventName`, `eventTime`, `userIdentity`...) the record holds
    /// twice, if any. The record is read with the last value, as most JSON readers do; CloudTrail
    /// never writes a key twice, so a record that does was written or altered by someone else,
    /// and a reader taking the first value (some do) would see another event.
    pub fn repeated_key(&self) -> Option<&'static str> {
        self.repeated
    }

    /// Parses one record's JSON text (checking all of it) into a record.
    pub fn parse(text: &'a str) -> Result<Record<'a>, RecordError> {
        let mut cursor = Cursor::new(text);
        if cursor.peek() != Some(b'{') {
            return match cursor.peek() {
                Some(b) => Err(RecordError::NotAnObject(crate::scanner::kind(b))),
                None => Err(RecordError::Syntax {
                    at: 0,
                    message: "empty input",
                }),
            };
        }
        let start = cursor.at();
        let mut reader = CoreReader::default();
        cursor.object(&mut |c, key| reader.member(c, key))?;
        let raw = &text[start..cursor.at()];
        if !cursor.at_end() {
            return Err(cursor.error("trailing characters after the record"));
        }
        reader.finish(raw)
    }

    /// The record's JSON text as read (one valid JSON object).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Whether a `userIdentity.sessionContext` of the record has a `webIdFederationData` member
    /// other than `{}` (keys compared unescaped, every copy of a repeated key counted): without
    /// one, no path under it reaches anything, and looking one up can be skipped.
    pub fn has_web_identity_data(&self) -> bool {
        self.web_identity_data
    }

    /// Attaches the derived fields (`trailhound.` names) a context worked out for this record.
    /// Only the first call counts; returns whether it did.
    pub fn set_derived(&self, derived: Derived) -> bool {
        self.derived.set(derived).is_ok()
    }

    /// The derived fields, if a context attached them.
    pub fn derived(&self) -> Option<&Derived> {
        self.derived.get()
    }

    /// The account the event happened in: `recipientAccountId`, else the caller's account.
    /// Whether this is a CloudTrail Insights event (about many calls, not one).
    pub fn is_insight(&self) -> bool {
        self.event_type.as_deref() == Some(INSIGHT_EVENT_TYPE)
    }

    /// The API call a CloudTrail Insights event is about (`insightDetails.eventName` and
    /// `.eventSource`), for people to read: the record's own `eventName` and `eventSource` are
    /// empty. None for other records.
    pub fn insight_subject(&self) -> Option<(String, String)> {
        if !self.is_insight() {
            return None;
        }
        let text = |path: &str| {
            let mut found = None;
            self.visit(&FieldPath::new(path), &mut |value| {
                found = value.text().map(Cow::into_owned);
                found.is_some()
            });
            found.unwrap_or_default()
        };
        Some((text("insightDetails.eventName"), text("insightDetails.eventSource")))
    }

    pub fn account_id(&self) -> Option<&str> {
        self.recipient_account_id
            .as_deref()
            .or(self.identity.account_id.as_deref())
    }

    /// Calls `visit` with every value `path` reaches, stopping when it returns true; returns
    /// whether it did. A path that reaches nothing calls `visit` zero times. Values outside the
    /// core fields are read from the record's text for this call only.
    pub fn visit(&self, path: &FieldPath, visit: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
        if let (Some(field), Some(derived)) = (path.derived(), self.derived.get()) {
            // Derived fields come from the context, never from the record's own text.
            return derived.get(field).is_some_and(|value| visit(value.as_value()));
        }
        match path.core() {
            // A core field that is missing or null reaches nothing. Every matcher treats "nothing"
            // and "null" alike (null tests match both, exists and value tests match neither), so
            // there is no need to read the text to tell them apart.
            Some(CoreField::ErrorMessage | CoreField::ConsoleSession) if self.odd_extras => {
                path::walk(self.raw, path.segments(), visit)
            }
            Some(field) => self.core(field).is_some_and(&mut *visit),
            // With the member index, only the members the path's first key names are walked
            // (and only when the path's last key appears in them); without it, the whole text
            // is walked when the last key appears anywhere in it.
            None => match self.members.get() {
                Some(members) if !path.segments().is_empty() => path::walk_members(members, path, visit),
                _ if !path.may_occur_in(self.raw) => false,
                _ => path::walk(self.raw, path.segments(), visit),
            },
        }
    }

    fn core(&self, field: CoreField) -> Option<Value<'_>> {
        let issuer = || {
            self.identity
                .session_context
                .as_ref()
                .and_then(|c| c.session_issuer.as_ref())
        };
        match field {
            CoreField::EventTime => Some(Value::Str(&self.event_time)),
            CoreField::EventName => Some(Value::Str(&self.event_name)),
            CoreField::EventSource => Some(Value::Str(&self.event_source)),
            CoreField::AwsRegion => text(&self.aws_region),
            CoreField::SourceIp => text(&self.source_ip),
            CoreField::UserAgent => text(&self.user_agent),
            CoreField::ErrorCode => text(&self.error_code),
            CoreField::ErrorMessage => text(&self.error_message),
            CoreField::ConsoleSession => text(&self.console_session),
            CoreField::EventId => text(&self.event_id),
            CoreField::RecipientAccountId => text(&self.recipient_account_id),
            CoreField::EventType => text(&self.event_type),
            CoreField::ReadOnly => self.read_only.map(Value::Bool),
            CoreField::IdentityType => text(&self.identity.kind),
            CoreField::IdentityArn => text(&self.identity.arn),
            CoreField::IdentityAccountId => text(&self.identity.account_id),
            CoreField::IdentityAccessKeyId => text(&self.identity.access_key_id),
            CoreField::IdentityUserName => text(&self.identity.user_name),
            CoreField::IdentityPrincipalId => text(&self.identity.principal_id),
            CoreField::IdentityInvokedBy => text(&self.identity.invoked_by),
            CoreField::IssuerType => issuer().and_then(|i| text(&i.kind)),
            CoreField::IssuerArn => issuer().and_then(|i| text(&i.arn)),
            CoreField::IssuerUserName => issuer().and_then(|i| text(&i.user_name)),
        }
    }
}

fn text<'s>(value: &'s Option<Cow<'_, str>>) -> Option<Value<'s>> {
    value.as_deref().map(Value::Str)
}

/// The fields deserialized for every record. Paths naming these are answered without walking the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoreField {
    EventTime,
    EventName,
    EventSource,
    AwsRegion,
    SourceIp,
    UserAgent,
    ErrorCode,
    ErrorMessage,
    ConsoleSession,
    EventId,
    RecipientAccountId,
    EventType,
    ReadOnly,
    IdentityType,
    IdentityArn,
    IdentityAccountId,
    IdentityAccessKeyId,
    IdentityUserName,
    IdentityPrincipalId,
    IdentityInvokedBy,
    IssuerType,
    IssuerArn,
    IssuerUserName,
}

const CORE_PATHS: [(&str, CoreField); 23] = [
    ("eventTime", CoreField::EventTime),
    ("eventName", CoreField::EventName),
    ("eventSource", CoreField::EventSource),
    ("awsRegion", CoreField::AwsRegion),
    ("sourceIPAddress", CoreField::SourceIp),
    ("userAgent", CoreField::UserAgent),
    ("errorCode", CoreField::ErrorCode),
    ("errorMessage", CoreField::ErrorMessage),
    ("sessionCredentialFromConsole", CoreField::ConsoleSession),
    ("eventID", CoreField::EventId),
    ("recipientAccountId", CoreField::RecipientAccountId),
    ("eventType", CoreField::EventType),
    ("readOnly", CoreField::ReadOnly),
    ("userIdentity.type", CoreField::IdentityType),
    ("userIdentity.arn", CoreField::IdentityArn),
    ("userIdentity.accountId", CoreField::IdentityAccountId),
    ("userIdentity.accessKeyId", CoreField::IdentityAccessKeyId),
    ("userIdentity.userName", CoreField::IdentityUserName),
    ("userIdentity.principalId", CoreField::IdentityPrincipalId),
    ("userIdentity.invokedBy", CoreField::IdentityInvokedBy),
    ("userIdentity.sessionContext.sessionIssuer.type", CoreField::IssuerType),
    ("userIdentity.sessionContext.sessionIssuer.arn", CoreField::IssuerArn),
    (
        "userIdentity.sessionContext.sessionIssuer.userName",
        CoreField::IssuerUserName,
    ),
];

impl CoreField {
    pub(crate) fn from_path(path: &str) -> Option<CoreField> {
        CORE_PATHS.iter().find(|(p, _)| *p == path).map(|(_, f)| *f)
    }
}

/// Keeps error messages short when a hostile value is huge.
fn clip(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> String {
        text.to_string()
    }

    const GOOD: &str = r#"{"eventVersion":"1.08","eventTime":"2024-03-01T12:00:00Z","eventName":"CreateUser",
        "eventSource":"iam.amazonaws.com","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7",
        "userAgent":"aws-cli/2","readOnly":"false","recipientAccountId":"111122223333",
        "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/Admin/bob",
          "accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","userName":"Admin"}}},
        "requestParameters":{"userName":"eve\u0041"},"errorCode":null}"#;

    pub(super) fn all_values(record: &Record<'_>, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        record.visit(&FieldPath::new(path), &mut |v| {
            out.push(format!("{v:?}"));
            false
        });
        out
    }

    fn walked(raw: &str, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        path::walk(raw, FieldPath::new(path).segments(), &mut |v| {
            out.push(format!("{v:?}"));
            false
        });
        out
    }

    #[test]
    fn at_timestamp_stands_in_for_a_missing_event_time() {
        // Logstash's CloudTrail codec moves eventTime to @timestamp.
        let moved = GOOD.replace(
            r#""eventTime":"2024-03-01T12:00:00Z""#,
            r#""@timestamp":"2024-03-01T12:00:07.000Z""#,
        );
        let record = Record::parse(&moved).expect("a record");
        assert_eq!(record.time.to_rfc3339(), "2024-03-01T12:00:07+00:00");
        assert_eq!(all_values(&record, "eventTime"), [r#"Str("2024-03-01T12:00:07.000Z")"#]);
        // eventTime wins when both are there; @timestamp of another type is passed over.
        let both = GOOD.replace(r#""eventTime""#, r#""@timestamp":"2020-01-01T00:00:00Z","eventTime""#);
        assert_eq!(
            Record::parse(&both).expect("a record").time.to_rfc3339(),
            "2024-03-01T12:00:00+00:00"
        );
        let odd = moved.replace(r#""2024-03-01T12:00:07.000Z""#, "17");
        assert_eq!(
            Record::parse(&odd).expect_err("no time").to_string(),
            "record has no eventTime"
        );
    }

    #[test]
    fn insights_events_are_records_about_their_subject() {
        // AWS's example of an Insights event: no eventName, eventSource or userIdentity.
        let text = r#"{"eventVersion":"1.07","eventTime":"2019-11-14T00:51:00Z","awsRegion":"us-east-1","eventID":"e1",
            "eventType":"AwsCloudTrailInsight","recipientAccountId":"123456789012","sharedEventID":"s1",
            "insightDetails":{"state":"Start","eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceInformation",
            "insightType":"ApiCallRateInsight","insightContext":{"statistics":{"baseline":{"average":85.4},"insight":{"average":664}}}},
            "eventCategory":"Insight"}"#;
        let record = Record::parse(text).expect("an Insights event is a record");
        assert_eq!((&*record.event_name, &*record.event_source), ("", ""));
        assert!(record.identity.arn.is_none());
        assert_eq!(
            record.insight_subject(),
            Some(("UpdateInstanceInformation".to_string(), "ssm.amazonaws.com".to_string()))
        );
        assert_eq!(all_values(&record, "insightDetails.state"), [r#"Str("Start")"#]);
        // Other records still need their fields, and have no subject.
        let missing = text.replace("AwsCloudTrailInsight", "AwsApiCall");
        let err = Record::parse(&missing).expect_err("not an Insights event");
        assert_eq!(err.to_string(), "record has no eventName");
        assert_eq!(Record::parse(GOOD).expect("good").insight_subject(), None);
    }

    /// The scan notes a web identity member wherever a walk of its path could find something:
    /// the flag may only be false where the walk finds nothing.
    #[test]
    fn web_identity_data_is_noted_wherever_a_walk_finds_it() {
        let path = "userIdentity.sessionContext.webIdFederationData.federatedProvider";
        let identity = |body: &str| {
            format!(
                r#"{{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s",{body},"requestParameters":{{"webIdFederationData":{{"federatedProvider":"p"}}}}}}"#
            )
        };
        let federated = r#"{"federatedProvider":"accounts.google.com"}"#;
        for (body, noted) in [
            (
                format!(
                    r#""userIdentity":{{"type":"AssumedRole","sessionContext":{{"webIdFederationData":{federated}}}}}"#
                ),
                true,
            ),
            (
                r#""userIdentity":{"type":"AssumedRole","sessionContext":{"sessionIssuer":{}}}"#.to_string(),
                false,
            ),
            (r#""userIdentity":{"type":"AssumedRole"}"#.to_string(), false),
            // What CloudTrail writes for most sessions: empty, so nothing under it.
            (
                r#""userIdentity":{"type":"AssumedRole","sessionContext":{"webIdFederationData":{ }}}"#.to_string(),
                false,
            ),
            (
                r#""userIdentity":{"type":"AssumedRole","sessionContext":{"webIdFederationData":{"x":1}}}"#.to_string(),
                true,
            ),
            (
                r#""userIdentity":{"type":"AssumedRole","sessionContext":{"webIdFederationData":null}}"#.to_string(),
                true,
            ),
            // Spelled with an escape, the key is the same key.
            (
                format!(
                    r#""userIdentity":{{"type":"AssumedRole","sessionContext":{{"webIdFederation\u0044ata":{federated}}}}}"#
                ),
                true,
            ),
            // Repeated keys: every copy counts, as every copy is walked.
            (
                format!(
                    r#""userIdentity":{{"sessionContext":{{"webIdFederationData":{federated}}}}},"userIdentity":{{"type":"AssumedRole"}}"#
                ),
                true,
            ),
            (
                format!(
                    r#""userIdentity":{{"type":"AssumedRole","sessionContext":{{"webIdFederationData":{federated},"sessionContext":{{}}}}}}"#
                ),
                true,
            ),
            // Elsewhere in the record: not under the identity, not noted.
            (
                r#""userIdentity":{"type":"AssumedRole","webIdFederationData":{"federatedProvider":"x"}}"#.to_string(),
                false,
            ),
        ] {
            let text = identity(&body);
            let record = Record::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(record.has_web_identity_data(), noted, "{text}");
            // Sound: where nothing is noted, the walk finds nothing.
            assert!(noted || walked(&text, path).is_empty(), "{text}");
        }
    }

    #[test]
    fn member_index_finds_what_a_whole_walk_finds() {
        let texts = [
            GOOD.to_string(),
            // a repeated key: every member is walked
            r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{},
               "requestParameters":{"a":1},"requestParameters":{"a":[2,{"b":"x"}]},"tags":[{"k":"v"}]}"#
                .to_string(),
            // an escaped top-level key: no index, the record is walked whole
            r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{},
               "requestParameters":{"a":"esc"}}"#
                .to_string(),
            // more members than the index holds
            format!(
                r#"{{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{{}},{}}}"#,
                (0..40)
                    .map(|i| format!(r#""k{i}":{{"a":{i}}}"#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ];
        let paths = [
            "requestParameters",
            "requestParameters.a",
            "requestParameters.a.b",
            "requestParameters.a.1.b",
            "requestParameters.userName",
            "tags.k",
            "k39.a",
            "k3.a",
            "nothing.here",
        ];
        for text in &texts {
            let record = Record::parse(text).expect("valid");
            for path in paths {
                assert_eq!(
                    all_values(&record, path),
                    walked(record.raw(), path),
                    "{path} in {text}"
                );
            }
        }
        let record = Record::parse(&texts[1]).expect("valid");
        assert_eq!(all_values(&record, "requestParameters.a").len(), 3);
        let record = Record::parse(&texts[2]).expect("valid");
        assert_eq!(all_values(&record, "requestParameters.a"), ["Str(\"esc\")"]);
        let record = Record::parse(&texts[3]).expect("valid");
        assert_eq!(all_values(&record, "k39.a").len(), 1);
    }

    #[test]
    fn core_fields_are_typed() {
        let raw = raw(GOOD);
        let record = Record::parse(&raw).expect("valid");
        assert_eq!(record.event_name, "CreateUser");
        assert_eq!(record.read_only, Some(false));
        assert_eq!(record.identity.kind.as_deref(), Some("AssumedRole"));
        assert_eq!(record.account_id(), Some("111122223333"));
        let issuer = record
            .identity
            .session_context
            .as_ref()
            .and_then(|c| c.session_issuer.as_ref());
        assert_eq!(issuer.and_then(|i| i.user_name.as_deref()), Some("Admin"));
    }

    fn values(record: &Record<'_>, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        record.visit(&FieldPath::new(path), &mut |v| {
            out.push(format!("{v:?}"));
            false
        });
        out
    }

    #[test]
    fn lookups_through_core_and_text() {
        let raw = raw(GOOD);
        let record = Record::parse(&raw).expect("valid");
        assert_eq!(
            values(&record, "userIdentity.sessionContext.sessionIssuer.userName"),
            [r#"Str("Admin")"#]
        );
        assert_eq!(values(&record, "requestParameters.userName"), [r#"Str("eveA")"#]);
        assert!(
            values(&record, "errorCode").is_empty(),
            "a null core field reaches nothing, like a missing one"
        );
        assert_eq!(values(&record, "requestParameters.userName"), [r#"Str("eveA")"#]);
        assert!(values(&record, "errorMessage").is_empty(), "missing is nothing");
        assert!(values(&record, "userIdentity.userName").is_empty());
    }

    #[test]
    fn odd_extras_are_read_from_the_text() {
        let text = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{},"sessionCredentialFromConsole":true,"errorMessage":"denied"}"#;
        let record = Record::parse(text).expect("a boolean here is no reason to reject the record");
        assert_eq!(values(&record, "sessionCredentialFromConsole"), ["Bool(true)"]);
        assert_eq!(values(&record, "errorMessage"), [r#"Str("denied")"#]);
    }

    #[test]
    fn key_prefilter_is_sound() {
        let base = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"PutObject","eventSource":"s3.amazonaws.com","userIdentity":{},"#;
        let plain = raw(&format!(r#"{base}"requestParameters":{{"bucketName":"b"}}}}"#));
        let record = Record::parse(&plain).expect("valid");
        assert!(values(&record, "requestParameters.x-amz-acl").is_empty());
        assert_eq!(values(&record, "requestParameters.bucketName"), [r#"Str("b")"#]);
        // A key spelled with escapes is still found.
        let escaped = raw(&format!(
            r#"{base}"requestParameters":{{"\u0078-amz-acl":"public-read"}}}}"#
        ));
        let record = Record::parse(&escaped).expect("valid");
        assert_eq!(
            values(&record, "requestParameters.x-amz-acl"),
            [r#"Str("public-read")"#]
        );
    }

    /// Every value `path` reaches, as matchers see its text (`<null>` for null).
    fn texts(record: &Record<'_>, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        record.visit(&FieldPath::new(path), &mut |v| {
            out.push(v.text().map_or_else(|| "<null>".to_string(), |t| t.into_owned()));
            false
        });
        out
    }

    const INGRESS: &str = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"AuthorizeSecurityGroupIngress","eventSource":"ec2.amazonaws.com","userIdentity":{"type":"IAMUser"},"requestParameters":{"ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]}}"#;

    #[test]
    fn lone_surrogate_outside_core_fields_keeps_request_parameters() {
        let text =
            format!(r#"{INGRESS},"additionalEventData":{{"note":"a\ud800b","pair":"\ud83d\ude00","low":"\udc00"}}}}"#);
        let record = Record::parse(&text).expect("a lone surrogate is no reason to reject a record");
        assert_eq!(
            texts(&record, "requestParameters.ipPermissions.items.ipRanges.items.cidrIp"),
            ["0.0.0.0/0"]
        );
        assert_eq!(texts(&record, "additionalEventData.note"), ["a\u{fffd}b"]);
        assert_eq!(texts(&record, "additionalEventData.pair"), ["\u{1f600}"]);
        assert_eq!(texts(&record, "additionalEventData.low"), ["\u{fffd}"]);
    }

    #[test]
    fn out_of_range_number_outside_core_fields_keeps_request_parameters() {
        let text = format!(r#"{INGRESS},"responseElements":{{"huge":1e400,"tiny":-1E-400,"n":22}}}}"#);
        let record = Record::parse(&text).expect("valid JSON");
        assert_eq!(
            texts(&record, "requestParameters.ipPermissions.items.ipRanges.items.cidrIp"),
            ["0.0.0.0/0"]
        );
        assert_eq!(texts(&record, "responseElements.huge"), ["1e400"], "kept as written");
        let mut huge = None;
        record.visit(&FieldPath::new("responseElements.huge"), &mut |v| {
            huge = v.number();
            true
        });
        assert_eq!(huge, Some(f64::INFINITY), "compares as infinity");
        assert_eq!(texts(&record, "responseElements.n"), ["22"]);
    }

    #[test]
    fn lone_surrogate_in_core_field_or_key_is_replaced() {
        let text = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X\ud800","eventSource":"s","userIdentity":{"userName":"\udfff"},"\ud800":1}"#;
        let record = Record::parse(text).expect("a lone surrogate in a core field is replaced, not fatal");
        assert_eq!(record.event_name, "X\u{fffd}");
        assert_eq!(record.identity.user_name.as_deref(), Some("\u{fffd}"));
        assert_eq!(texts(&record, "\u{fffd}"), ["1"]);
    }

    #[test]
    fn object_values_are_matched_as_compact_json() {
        let text = format!(r#"{INGRESS},"requestParameters2":{{ "b" : [1, "x\"y\u0041\n"], "a":{{}} }}}}"#);
        let record = Record::parse(&text).expect("valid");
        assert_eq!(texts(&record, "requestParameters2"), [r#"{"b":[1,"x\"yA\n"],"a":{}}"#]);
        assert_eq!(texts(&record, "requestParameters2.a"), ["{}"]);
        assert_eq!(texts(&record, "requestParameters2.b"), ["1", "x\"yA\n"]);
    }

    #[test]
    fn duplicate_keys_are_all_seen() {
        let text = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{},"p":{"k":"first"},"p":{"k":"second"}}"#;
        let record = Record::parse(text).expect("valid");
        assert_eq!(texts(&record, "p.k"), ["first", "second"]);
    }

    #[test]
    fn a_core_field_written_twice_is_noted_and_the_last_value_read() {
        let text = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","userIdentity":{},"eventName":"DescribeTrails"}"#;
        let record = Record::parse(text).expect("valid");
        assert_eq!(record.event_name, "DescribeTrails");
        assert_eq!(record.repeated_key(), Some("eventName"));
        // The first repeated one is named; keys outside the core are not checked.
        let text = r#"{"userIdentity":{},"eventTime":"2024-03-01T12:00:00Z","userIdentity":{"type":"Root"},"eventName":"X","eventSource":"s","eventTime":"2024-03-01T12:00:00Z","p":1,"p":2}"#;
        assert_eq!(Record::parse(text).expect("valid").repeated_key(), Some("userIdentity"));
        let text = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{"arn":"a"},"p":1,"p":2,"@timestamp":"2024-03-01T12:00:00Z"}"#;
        assert_eq!(Record::parse(text).expect("valid").repeated_key(), None);
    }

    #[test]
    fn wrong_shapes_are_named() {
        let cases = [
            (
                r#"{"eventName":"X","eventSource":"s","userIdentity":{}}"#,
                "record has no eventTime",
            ),
            (
                r#"{"eventTime":"soon","eventName":"X","eventSource":"s","userIdentity":{}}"#,
                r#"eventTime "soon" is not a time"#,
            ),
            (
                r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":5,"eventSource":"s","userIdentity":{}}"#,
                "eventName is a number, expected a string",
            ),
            (
                r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s"}"#,
                "record has no userIdentity",
            ),
            (
                r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":"root"}"#,
                "userIdentity is a string, expected an object",
            ),
            (
                r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{"arn":["a"]}}"#,
                "userIdentity.arn is an array, expected a string",
            ),
        ];
        for (text, message) in cases {
            let raw = raw(text);
            let err = Record::parse(&raw).expect_err(text);
            assert_eq!(err.to_string(), message, "{text}");
        }
    }
}

/// `json` without whitespace between tokens, keys in their original order. The input must be
/// valid JSON (as a `RawValue` is); used to put a pretty-printed record on one JSONL line.
pub fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod compact_tests {
    use super::compact_json;

    #[test]
    fn strips_only_whitespace_between_tokens() {
        assert_eq!(
            compact_json("{\n  \"a b\": [1, 2],\n  \"c\": \"x \\\" y\\\\\"\n}"),
            r#"{"a b":[1,2],"c":"x \" y\\"}"#
        );
    }
}

#[cfg(test)]
mod derived_tests {
    use super::tests::all_values as values;
    use super::*;
    use crate::derived::DerivedField;

    #[test]
    fn derived_fields_come_from_the_context_once_attached_and_from_the_text_before() {
        let text = r#"{"eventTime":"2024-03-01T12:00:00Z","eventName":"X","eventSource":"s","userIdentity":{},
            "trailhound":{"src":{"asn":1,"country":"ZZ"}}}"#;
        let record = Record::parse(text).expect("valid");
        // No context: the record's own member answers (test events carry their derived fields).
        assert_eq!(values(&record, "trailhound.src.asn"), ["Number(Number(1))"]);
        let mut derived = Derived::default();
        derived.set(DerivedField::SrcAsn, 64500u64);
        assert!(record.set_derived(derived));
        assert!(!record.set_derived(Derived::default()), "only the first context counts");
        assert_eq!(values(&record, "trailhound.src.asn"), ["Number(Number(64500))"]);
        // A derived field the context left out is absent, whatever the text says.
        assert!(values(&record, "trailhound.src.country").is_empty());
    }
}
