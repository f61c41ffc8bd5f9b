//! Dotted field paths and the values they reach.
//!
//! A path like `requestParameters.ipPermissions.items.ipRanges.items.cidrIp` walks objects by key;
//! where it meets an array it continues into every element, so a path matches if any element does.
//! A numeric segment also indexes an array (`items.0.cidrIp`). Paths naming a core field are
//! resolved once, when the path is built, so lookups of those never touch the full JSON tree.

use std::borrow::Cow;

use crate::record::CoreField;

/// A parsed field path. Build it once (at rule compile time) and look it up many times.
#[derive(Debug, Clone)]
pub struct FieldPath {
    text: Box<str>,
    segments: Box<[Box<str>]>,
    core: Option<CoreField>,
    /// `"lastKey"`: a record whose text lacks it cannot have the field (see `Record::visit`).
    key: Option<memchr::memmem::Finder<'static>>,
}

impl PartialEq for FieldPath {
    fn eq(&self, other: &FieldPath) -> bool {
        self.text == other.text
    }
}

impl Eq for FieldPath {}

impl FieldPath {
    /// Parses `a.b.c`. Empty segments are kept as written (they simply never match).
    pub fn new(text: &str) -> FieldPath {
        let segments: Box<[Box<str>]> = text.split('.').map(Box::from).collect();
        let key = segments
            .last()
            .filter(|last| !last.is_empty() && last.parse::<usize>().is_err() && !last.contains(['"', '\\']))
            .map(|last| memchr::memmem::Finder::new(format!("\"{last}\"").as_bytes()).into_owned());
        FieldPath {
            text: text.into(),
            core: CoreField::from_path(text),
            segments,
            key,
        }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn core(&self) -> Option<CoreField> {
        self.core
    }

    /// Whether looking this path up is cheap: a core field, read for every record anyway. Other
    /// paths make the record build its full JSON tree on first use.
    pub fn is_core(&self) -> bool {
        self.core.is_some()
    }

    pub(crate) fn segments(&self) -> &[Box<str>] {
        &self.segments
    }

    /// Whether `raw` (a record's JSON text) could hold this path: its last key must appear,
    /// quoted, unless the text uses `\u` escapes, which could spell the key differently.
    pub(crate) fn may_occur_in(&self, raw: &str) -> bool {
        match &self.key {
            Some(key) => key.find(raw.as_bytes()).is_some() || memchr::memmem::find(raw.as_bytes(), b"\\u").is_some(),
            None => true,
        }
    }
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// One value reached by a path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(&'a serde_json::Number),
    Str(&'a str),
    /// An object or array where the path ended; matched against its JSON text.
    Json(&'a serde_json::Value),
}

impl<'a> Value<'a> {
    /// The text string matchers compare against; `None` for null.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match *self {
            Value::Null => None,
            Value::Bool(true) => Some(Cow::Borrowed("true")),
            Value::Bool(false) => Some(Cow::Borrowed("false")),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Json(v) => Some(Cow::Owned(v.to_string())),
        }
    }

    /// The value as a number, for `gt`/`lt` comparisons; numeric strings count.
    pub fn number(&self) -> Option<f64> {
        match *self {
            Value::Number(n) => n.as_f64(),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn from_json(value: &'a serde_json::Value) -> Value<'a> {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(s) => Value::Str(s),
            other => Value::Json(other),
        }
    }
}

/// Calls `visit` with every value `segments` reaches in `root`, stopping early when it returns
/// true. Returns whether it did.
pub(crate) fn walk<'a>(
    root: &'a serde_json::Value,
    segments: &[Box<str>],
    visit: &mut dyn FnMut(Value<'a>) -> bool,
) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        return match root {
            serde_json::Value::Array(items) if !items.is_empty() => {
                items.iter().any(|item| visit(Value::from_json(item)))
            }
            other => visit(Value::from_json(other)),
        };
    };
    match root {
        serde_json::Value::Object(map) => map.get(first.as_ref()).is_some_and(|child| walk(child, rest, visit)),
        serde_json::Value::Array(items) => match first.parse::<usize>() {
            Ok(index) => items.get(index).is_some_and(|child| walk(child, rest, visit)),
            Err(_) => items.iter().any(|item| walk(item, segments, visit)),
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(json: &str, path: &str) -> Vec<String> {
        let root: serde_json::Value = serde_json::from_str(json).expect("test json");
        let mut out = Vec::new();
        walk(&root, FieldPath::new(path).segments(), &mut |v| {
            out.push(v.text().map(Cow::into_owned).unwrap_or_else(|| "<null>".into()));
            false
        });
        out
    }

    #[test]
    fn walks_through_arrays_to_any_element() {
        let json = r#"{"requestParameters":{"ipPermissions":{"items":[
            {"ipRanges":{"items":[{"cidrIp":"10.0.0.0/8"},{"cidrIp":"0.0.0.0/0"}]}},
            {"ipRanges":{"items":[{"cidrIp":"192.168.0.0/16"}]}}]}}}"#;
        assert_eq!(
            texts(json, "requestParameters.ipPermissions.items.ipRanges.items.cidrIp"),
            ["10.0.0.0/8", "0.0.0.0/0", "192.168.0.0/16"]
        );
        assert_eq!(
            texts(json, "requestParameters.ipPermissions.items.1.ipRanges.items.cidrIp"),
            ["192.168.0.0/16"]
        );
    }

    #[test]
    fn leaves_of_every_type() {
        let json = r#"{"a":{"n":22,"b":false,"z":null,"o":{"k":"v"},"l":["x","y"],"e":[]}}"#;
        assert_eq!(texts(json, "a.n"), ["22"]);
        assert_eq!(texts(json, "a.b"), ["false"]);
        assert_eq!(texts(json, "a.z"), ["<null>"]);
        assert_eq!(texts(json, "a.o"), [r#"{"k":"v"}"#]);
        assert_eq!(texts(json, "a.l"), ["x", "y"]);
        assert_eq!(texts(json, "a.e"), ["[]"], "an empty array is present, as its text");
        assert_eq!(texts(json, "a.missing"), [] as [&str; 0]);
        assert_eq!(texts(json, "a.n.deeper"), [] as [&str; 0]);
    }
}
