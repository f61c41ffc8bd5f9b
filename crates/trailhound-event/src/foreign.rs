//! Records rebuilt from other schemas' documents: an ECS document (Elastic's AWS integration,
//! see `ecs`) or an OCSF event (Amazon Security Lake and other OCSF pipelines, see `ocsf`)
//! stands for one CloudTrail record whose fields it renamed. The helpers both use are here.

use serde_json::{Map, Value};

/// The CloudTrail record a foreign document stands for, as JSON text; `None` when `text` is no
/// CloudTrail event's ECS or OCSF document.
pub(crate) fn rebuild(text: &str) -> Option<String> {
    // Most foreign objects are neither: passed over without parsing them (both name the
    // service, `*.amazonaws.com`).
    memchr::memmem::find(text.as_bytes(), b"amazonaws.com")?;
    let doc: Value = serde_json::from_str(text).ok()?;
    crate::ecs::record(&doc).or_else(|| crate::ocsf::record(&doc))
}

/// Sets `key` to `value` when there is one (a field the document lacks, or holds as null, is
/// left out of the record).
pub(crate) fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        map.insert(key.to_string(), value);
    }
}

/// A field kept as JSON text, parsed when it is JSON (else kept as the text).
pub(crate) fn parsed(value: Value) -> Value {
    match value {
        Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        other => other,
    }
}

/// `true`/`false` as text to a boolean (CloudTrail writes `readOnly` as a boolean).
pub(crate) fn boolean(value: Value) -> Value {
    match value.as_str() {
        Some("true") => Value::Bool(true),
        Some("false") => Value::Bool(false),
        _ => value,
    }
}

/// The value at a dotted `path`, whether the document nests it, writes it dotted, or mixes
/// the two (`{"aws.cloudtrail": {"user_identity": {...}}}`).
pub(crate) fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    if let Some(found) = object.get(path) {
        return Some(found);
    }
    path.match_indices('.').find_map(|(at, _)| {
        let (head, rest) = (&path[..at], &path[at + 1..]);
        object.get(head).and_then(|inner| lookup(inner, rest))
    })
}

/// `mfaAuthenticated` as CloudTrail writes it: text (`"true"`), not a boolean.
pub(crate) fn bool_as_text(value: Value) -> Value {
    match value {
        Value::Bool(b) => Value::String(b.to_string()),
        other => other,
    }
}

/// Puts `userIdentity.sessionContext` into `identity` from its issuer and attributes, when
/// either has a member.
pub(crate) fn put_session_context(
    identity: &mut Map<String, Value>,
    issuer: Map<String, Value>,
    attributes: Map<String, Value>,
) {
    let mut context = Map::new();
    if !issuer.is_empty() {
        context.insert("sessionIssuer".into(), Value::Object(issuer));
    }
    if !attributes.is_empty() {
        context.insert("attributes".into(), Value::Object(attributes));
    }
    if !context.is_empty() {
        identity.insert("sessionContext".into(), Value::Object(context));
    }
}
