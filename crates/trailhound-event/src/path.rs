//! Dotted field paths and the values they reach.
//!
//! A path like `requestParameters.ipPermissions.items.ipRanges.items.cidrIp` walks objects by key;
//! where it meets an array it continues into every element, so a path matches if any element does.
//! A numeric segment also indexes an array (`items.0.cidrIp`). Paths naming a core field are
//! resolved once, when the path is built, so lookups of those never walk the record's text.

use std::borrow::Cow;
use std::fmt::Write;

use crate::derived::DerivedField;
use crate::record::CoreField;
use crate::scanner::Cursor;

/// A parsed field path. Build it once (at rule compile time) and look it up many times.
#[derive(Debug, Clone)]
pub struct FieldPath {
    text: Box<str>,
    segments: Box<[Box<str>]>,
    core: Option<CoreField>,
    /// A `trailhound.` field a context derives (see [`crate::derived`]).
    derived: Option<DerivedField>,
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
            derived: DerivedField::from_path(text),
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

    /// The derived field this path names, if any.
    pub fn derived(&self) -> Option<DerivedField> {
        self.derived
    }

    /// Whether looking this path up is cheap: a core field, read for every record anyway. Other
    /// paths walk the record's text.
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
            Some(key) => key.find(raw.as_bytes()).is_some() || escape_u().find(raw.as_bytes()).is_some(),
            None => true,
        }
    }
}

/// A finder of `\u`, built once (building one is a measurable part of a lookup).
fn escape_u() -> &'static memchr::memmem::Finder<'static> {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> = std::sync::OnceLock::new();
    FINDER.get_or_init(|| memchr::memmem::Finder::new(b"\\u"))
}

impl std::fmt::Display for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// One value reached by a path. It lives as long as the call that hands it out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(&'a serde_json::Number),
    /// A string; also a number too large for a float (`1e400`), kept as written.
    Str(&'a str),
    /// An object or array where the path ended, as compact JSON: no whitespace between tokens,
    /// keys in the record's order, strings escaped as serde_json writes them.
    Json(&'a str),
}

impl<'a> Value<'a> {
    /// The text string matchers compare against; `None` for null.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match *self {
            Value::Null => None,
            Value::Bool(true) => Some(Cow::Borrowed("true")),
            Value::Bool(false) => Some(Cow::Borrowed("false")),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Str(s) | Value::Json(s) => Some(Cow::Borrowed(s)),
        }
    }

    /// The value as a number, for `gt`/`lt` comparisons; numeric strings count (`1e400` is
    /// infinity).
    pub fn number(&self) -> Option<f64> {
        match *self {
            Value::Number(n) => n.as_f64(),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Calls `visit` with every value `segments` reaches in `raw` (one valid JSON value, as the
/// scanner checked it), stopping early when it returns true. Returns whether it did.
///
/// The walk reads the text itself rather than a tree built from it: a record costs no more
/// than its text, whatever its shape, and no value elsewhere in it (a lone surrogate, a number
/// out of range) can stop a lookup. Every member of a repeated key is walked.
pub(crate) fn walk(raw: &str, segments: &[Box<str>], visit: &mut dyn FnMut(Value<'_>) -> bool) -> bool {
    walk_value(&mut Cursor::new(raw), segments, visit).unwrap_or(false)
}

/// [`walk`] over a record's top-level members, as [`crate::record::Members`] noted them: only
/// the values under the path's first key are read.
pub(crate) fn walk_members(
    members: &[(&str, &str)],
    path: &FieldPath,
    visit: &mut dyn FnMut(Value<'_>) -> bool,
) -> bool {
    let Some((first, rest)) = path.segments.split_first() else {
        return false;
    };
    members
        .iter()
        .filter(|(key, value)| *key == &**first && (rest.is_empty() || path.may_occur_in(value)))
        .any(|(_, value)| walk_value(&mut Cursor::new(value), rest, visit).unwrap_or(false))
}

/// Walks the value at the cursor. `Ok(false)`: the value was consumed and nothing stopped the
/// walk; `Ok(true)`: `visit` stopped it, and the cursor is left where it was.
fn walk_value(c: &mut Cursor<'_>, segments: &[Box<str>], visit: &mut dyn FnMut(Value<'_>) -> bool) -> Found {
    let Some((first, rest)) = segments.split_first() else {
        if c.peek() != Some(b'[') {
            return leaf(c, visit);
        }
        // A list where the path ends: each element is a value (an empty list is itself one).
        let start = c.at();
        c.eat(b'[');
        if c.eat(b']') {
            return Ok(visit(Value::Json(c.text().get(start..c.at()).unwrap_or("[]"))));
        }
        return elements(c, &mut |c, _| leaf(c, visit));
    };
    match c.peek() {
        Some(b'{') => {
            c.eat(b'{');
            if c.eat(b'}') {
                return Ok(false);
            }
            loop {
                let key = c.string()?;
                c.eat(b':');
                if *key == **first {
                    if walk_value(c, rest, visit)? {
                        return Ok(true);
                    }
                } else {
                    c.skip()?;
                }
                if !c.eat(b',') {
                    c.eat(b'}');
                    return Ok(false);
                }
            }
        }
        Some(b'[') => {
            c.eat(b'[');
            if c.eat(b']') {
                return Ok(false);
            }
            match first.parse::<usize>() {
                Ok(index) => elements(c, &mut |c, at| match at == index {
                    true => walk_value(c, rest, visit),
                    false => c.skip().map(|()| false),
                }),
                Err(_) => elements(c, &mut |c, _| walk_value(c, segments, visit)),
            }
        }
        _ => c.skip().map(|()| false),
    }
}

type Found = Result<bool, crate::record::RecordError>;

/// The elements of an array whose `[` is consumed and which is not empty.
fn elements<'a>(c: &mut Cursor<'a>, element: &mut dyn FnMut(&mut Cursor<'a>, usize) -> Found) -> Found {
    let mut index = 0;
    loop {
        if element(c, index)? {
            return Ok(true);
        }
        index += 1;
        if !c.eat(b',') {
            c.eat(b']');
            return Ok(false);
        }
    }
}

/// Hands the value at the cursor to `visit`.
fn leaf<'a>(c: &mut Cursor<'a>, visit: &mut dyn FnMut(Value<'_>) -> bool) -> Found {
    let start = c.at();
    let value = |c: &Cursor<'a>| c.text().get(start..c.at()).unwrap_or_default();
    match c.peek() {
        Some(b'"') => {
            let text = c.string()?;
            Ok(visit(Value::Str(&text)))
        }
        Some(b'{' | b'[') => {
            c.skip()?;
            Ok(visit(Value::Json(&compact(value(c))?)))
        }
        Some(b'n') => c.skip().map(|()| visit(Value::Null)),
        Some(b't') => c.skip().map(|()| visit(Value::Bool(true))),
        Some(b'f') => c.skip().map(|()| visit(Value::Bool(false))),
        _ => {
            c.skip()?;
            let text = value(c);
            Ok(match text.parse::<serde_json::Number>() {
                Ok(number) => visit(Value::Number(&number)),
                Err(_) => visit(Value::Str(text)),
            })
        }
    }
}

/// `json` (valid) as compact JSON, its strings escaped as serde_json writes them. One pass,
/// no tree and no recursion.
fn compact(json: &str) -> Result<String, crate::record::RecordError> {
    let mut out = String::with_capacity(json.len());
    let mut c = Cursor::new(json);
    while let Some(byte) = c.peek() {
        if byte == b'"' {
            escape_into(&mut out, &c.string()?);
        } else {
            out.push(char::from(byte));
            if !c.advance_ascii() {
                break;
            }
        }
    }
    Ok(out)
}

/// Writes `text` as a JSON string the way serde_json does.
fn escape_into(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(json: &str, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        walk(json, FieldPath::new(path).segments(), &mut |v| {
            out.push(v.text().map(Cow::into_owned).unwrap_or_else(|| "<null>".into()));
            false
        });
        out
    }

    #[test]
    fn compact_json_is_what_serde_json_writes() {
        let json =
            "{ \"a\" : [ 1 , -2.5e3 , true , null , \"x\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\\\/\\u00e9\\u007f\" ] }";
        let theirs = serde_json::from_str::<serde_json::Value>(json)
            .expect("valid")
            .to_string();
        assert_eq!(compact(json).expect("valid"), theirs.replace("-2500.0", "-2.5e3"));
    }

    #[test]
    fn stops_at_the_first_hit() {
        let mut seen = 0;
        let hit = walk(r#"{"a":[1,2,3]}"#, FieldPath::new("a").segments(), &mut |_| {
            seen += 1;
            seen == 2
        });
        assert!(hit);
        assert_eq!(seen, 2);
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
