//! A validating, single-pass JSON scanner tuned for CloudTrail.
//!
//! Reading records is the hot path of every hunt, and general JSON libraries do two things we do
//! not need: they build values we throw away, or they validate in one pass and make us read the
//! record again for its fields. This scanner does both jobs in one walk: it checks the full JSON
//! grammar (strings, escapes, numbers, literals, nesting up to [`MAX_DEPTH`]) while the caller picks
//! out the few fields it wants, and it jumps through strings sixteen bytes at a time (SIMD through
//! the `wide` crate). Anything it rejects is reported with a byte offset; it never panics and
//! never indexes out of bounds.
//! Strings are unescaped here too, leniently: a lone surrogate escape (`\ud800`), which JSON's
//! grammar allows but no Unicode string can hold, becomes U+FFFD rather than failing the record.

use std::borrow::Cow;

use wide::u8x16;

use crate::record::RecordError;

/// Deeper nesting than this is rejected rather than risking the stack.
pub const MAX_DEPTH: usize = 128;

pub(crate) struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

/// What a JSON value is, for error messages.
pub(crate) fn kind(byte: u8) -> &'static str {
    match byte {
        b'"' => "a string",
        b'{' => "an object",
        b'[' => "an array",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bit `i` set when byte `i` of `chunk` ends a plain run of string text: a quote, a backslash or
/// a control character. One SIMD compare of each kind on 16 bytes.
#[inline]
fn special(chunk: [u8; 16]) -> u32 {
    let v = u8x16::new(chunk);
    let quote = v.simd_eq(u8x16::splat(b'"'));
    let backslash = v.simd_eq(u8x16::splat(b'\\'));
    // Below 0x20: the lesser of the byte and 0x1f is the byte itself.
    let control = v.min(u8x16::splat(0x1f)).simd_eq(v);
    (quote | backslash | control).to_bitmask()
}

/// High bit set in each byte of `word` equal to `byte` (exact for the lowest such byte).
fn equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// High bit set in each byte of `word` below 0x20 (exact for the lowest such byte).
fn control(word: u64) -> u64 {
    word.wrapping_sub(ONES * 0x20) & !word & HIGHS
}

/// A stack of bits, 64 to a word: what brackets are open where nesting has no limit.
#[derive(Default)]
struct BitStack {
    words: Vec<u64>,
    len: usize,
}

impl BitStack {
    fn push(&mut self, bit: bool) {
        let (word, shift) = (self.len / 64, self.len % 64);
        if word == self.words.len() {
            self.words.push(0);
        }
        if let Some(w) = self.words.get_mut(word) {
            *w = (*w & !(1 << shift)) | (u64::from(bit) << shift);
        }
        self.len += 1;
    }

    fn pop(&mut self) -> Option<bool> {
        self.len = self.len.checked_sub(1)?;
        let (word, shift) = (self.len / 64, self.len % 64);
        self.words.get(word).map(|w| (w >> shift) & 1 == 1)
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text,
            bytes: text.as_bytes(),
            at: 0,
            depth: 0,
        }
    }

    /// Byte offset of the cursor in the text.
    pub fn at(&self) -> usize {
        self.at
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn error(&self, message: &'static str) -> RecordError {
        RecordError::Syntax { at: self.at, message }
    }

    /// The next byte after whitespace, without consuming it.
    pub fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Moves to `offset`, which must come from [`Cursor::at`] on the same text.
    pub fn seek(&mut self, offset: usize) {
        self.at = offset.min(self.bytes.len());
        self.depth = 0;
    }

    /// The nesting depth at the cursor.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Sets the nesting depth: a record counts its nesting from itself, whatever holds it.
    pub fn set_depth(&mut self, depth: usize) {
        self.depth = depth;
    }

    /// Consumes `byte` if it is next (after whitespace).
    pub fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        if next {
            self.at += 1;
        }
        next
    }

    /// Moves past the object or array at `start`, whatever its grammar, by counting brackets
    /// outside strings: how a scan passes over a record it cannot read (too deep, a bad escape)
    /// to reach the next one. Returns false, leaving the cursor alone, when the brackets never
    /// balance. No recursion, so no depth limit.
    pub fn pass_over(&mut self, start: usize) -> bool {
        let bytes = self.bytes;
        // Only a value that opens a bracket can be passed over by its brackets: from anything
        // else the count would run into the next record and swallow it.
        if !matches!(bytes.get(start), Some(b'{' | b'[')) {
            return false;
        }
        let mut at = start;
        // The open brackets, one bit each (set: `{`): a `]` that closes a `{` is damage, not
        // the end of the value (else a record cut short would be passed over with the rest of
        // its list, up to the list's own `]`).
        let mut open = BitStack::default();
        while let Some(&b) = bytes.get(at) {
            at += 1;
            match b {
                b'{' | b'[' => open.push(b == b'{'),
                b'}' | b']' => {
                    if open.pop() != Some(b == b'}') {
                        return false;
                    }
                    if open.is_empty() {
                        self.at = at;
                        return true;
                    }
                }
                b'"' => {
                    while let Some(&b) = bytes.get(at) {
                        at += if b == b'\\' { 2 } else { 1 };
                        if b == b'"' {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// Moves one byte on, only over an ASCII byte (punctuation, digits, letters of literals);
    /// returns whether it moved.
    pub fn advance_ascii(&mut self) -> bool {
        let ascii = self.bytes.get(self.at).is_some_and(u8::is_ascii);
        if ascii {
            self.at += 1;
        }
        ascii
    }

    /// The kind of the value at the cursor.
    pub fn kind(&mut self) -> &'static str {
        self.peek().map_or("nothing", kind)
    }

    fn enter(&mut self) -> Result<(), RecordError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        Ok(())
    }

    /// Walks the members of the object at the cursor, calling `member` with each key; `member`
    /// must consume the value (or return an error).
    pub fn object(
        &mut self,
        member: &mut dyn FnMut(&mut Cursor<'a>, &str) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        if self.peek() != Some(b'{') {
            return Err(self.error("expected an object"));
        }
        self.at += 1;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            let key = self.string()?;
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.at += 1;
            if self.peek().is_none() {
                return Err(self.error("unexpected end of input"));
            }
            member(self, &key)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                Some(_) => return Err(self.error("expected ',' or '}'")),
                None => return Err(self.error("unexpected end of input")),
            }
        }
    }

    /// Walks the elements of the array at the cursor; `element` must consume each.
    pub fn array(
        &mut self,
        element: &mut dyn FnMut(&mut Cursor<'a>) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        if self.peek() != Some(b'[') {
            return Err(self.error("expected an array"));
        }
        self.at += 1;
        self.enter()?;
        if self.peek() == Some(b']') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        self.array_rest(element)
    }

    /// The rest of an array whose `[` was read (the depth entered): elements from the cursor
    /// to the closing `]`. How a list is read on from a record found after damage.
    pub fn array_rest(
        &mut self,
        element: &mut dyn FnMut(&mut Cursor<'a>) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        loop {
            if self.peek().is_none() {
                return Err(self.error("unexpected end of input"));
            }
            element(self)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                Some(_) => return Err(self.error("expected ',' or ']'")),
                None => return Err(self.error("unexpected end of input")),
            }
        }
    }

    /// The string at the cursor, unescaped (borrowed when it has no escapes).
    pub fn string(&mut self) -> Result<Cow<'a, str>, RecordError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        let start = self.at;
        let escaped = self.string_end()?;
        // Between the quotes, sliced once: each slice of a str checks both its ends.
        let inner = self
            .text
            .get(start + 1..self.at - 1)
            .ok_or_else(|| self.error("invalid string"))?;
        if escaped {
            Ok(Cow::Owned(unescape(inner)))
        } else {
            Ok(Cow::Borrowed(inner))
        }
    }

    /// Moves past the string starting at the cursor (on its opening quote), checking it; returns
    /// whether it holds escapes. Sixteen bytes at a time (eight near the end of the text): most
    /// of a record's bytes are in strings.
    #[inline(always)]
    fn string_end(&mut self) -> Result<bool, RecordError> {
        let bytes = self.bytes;
        let mut at = self.at + 1;
        let mut escaped = false;
        loop {
            if let Some(chunk) = bytes.get(at..at + 16).and_then(|c| <[u8; 16]>::try_from(c).ok()) {
                let hits = special(chunk);
                if hits == 0 {
                    at += 16;
                    continue;
                }
                at += hits.trailing_zeros() as usize;
            } else if let Some(chunk) = bytes.get(at..at + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
                let word = u64::from_le_bytes(chunk);
                let hits = equal(word, b'"') | equal(word, b'\\') | control(word);
                if hits == 0 {
                    at += 8;
                    continue;
                }
                at += (hits.trailing_zeros() / 8) as usize;
            }
            match bytes.get(at) {
                Some(b'"') => {
                    self.at = at + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match bytes.get(at + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => at += 2,
                        Some(b'u')
                            if bytes
                                .get(at + 2..at + 6)
                                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            at += 6
                        }
                        _ => {
                            self.at = at;
                            return Err(self.error("invalid escape in string"));
                        }
                    }
                }
                Some(&b) if b < 0x20 => {
                    self.at = at;
                    return Err(self.error("control character in string"));
                }
                Some(_) => at += 1,
                None => {
                    self.at = at;
                    return Err(self.error("unterminated string"));
                }
            }
        }
    }

    /// Moves past the value at the cursor, checking it.
    pub fn skip(&mut self) -> Result<(), RecordError> {
        match self.peek() {
            Some(b'"') => self.string_end().map(drop),
            Some(b'{') => self.skip_object(),
            Some(b'[') => self.array(&mut |c| c.skip()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    /// [`Cursor::object`] for values nobody reads: keys are checked but not materialised, and
    /// there is no callback per member. Nested objects are most of a record.
    fn skip_object(&mut self) -> Result<(), RecordError> {
        self.at += 1;
        self.enter()?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key"));
            }
            self.string_end()?;
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':'"));
            }
            self.at += 1;
            self.skip()?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                Some(_) => return Err(self.error("expected ',' or '}'")),
                None => return Err(self.error("unexpected end of input")),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), RecordError> {
        if self.bytes.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), RecordError> {
        let bytes = self.bytes;
        let mut at = self.at;
        let digits = |at: &mut usize| {
            let start = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > start
        };
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                digits(&mut at);
            }
            _ => return Err(self.error("invalid number")),
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            if !digits(&mut at) {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            if !digits(&mut at) {
                return Err(self.error("invalid number"));
            }
        }
        self.at = at;
        Ok(())
    }
}

/// The value of a JSON string's body whose escapes [`Cursor::string_end`] has checked. A
/// surrogate escape that is not half of a pair becomes U+FFFD.
fn unescape(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let (c, used) = escape(rest);
        out.push(c);
        rest = rest.get(used..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// The character of the escape starting `text` (at its backslash) and the bytes it spans.
fn escape(text: &str) -> (char, usize) {
    let simple = match text.as_bytes().get(1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => return unicode_escape(text),
        _ => return (char::REPLACEMENT_CHARACTER, 2.min(text.len())),
    };
    (simple, 2)
}

/// `\uXXXX`, or a surrogate pair `\uD8XX\uDCXX`; a lone surrogate is U+FFFD.
fn unicode_escape(text: &str) -> (char, usize) {
    let hex = |at: usize| text.get(at..at + 4).and_then(|h| u32::from_str_radix(h, 16).ok());
    let Some(first) = hex(2) else {
        return (char::REPLACEMENT_CHARACTER, text.len().min(6));
    };
    if (0xD800..0xDC00).contains(&first)
        && text.get(6..8) == Some("\\u")
        && let Some(second) = hex(8)
        && (0xDC00..0xE000).contains(&second)
    {
        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
        return (char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER), 12);
    }
    (char::from_u32(first).unwrap_or(char::REPLACEMENT_CHARACTER), 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_bytes_are_found_in_every_lane() {
        for byte in 0..=255u8 {
            for lane in 0..16 {
                let mut chunk = [b'a'; 16];
                chunk[lane] = byte;
                let wanted = matches!(byte, b'"' | b'\\' | 0..=0x1f);
                assert_eq!(
                    special(chunk),
                    u32::from(wanted) << lane,
                    "byte {byte:#x} in lane {lane}"
                );
            }
        }
    }

    /// Whether the scanner accepts `text` as exactly one JSON value.
    fn valid(text: &str) -> bool {
        let mut cursor = Cursor::new(text);
        cursor.skip().is_ok() && cursor.at_end()
    }

    fn members(text: &str) -> Result<Vec<(String, String)>, RecordError> {
        let mut out = Vec::new();
        Cursor::new(text).object(&mut |cursor, key| {
            let value = match cursor.kind() {
                "a string" => cursor.string()?.into_owned(),
                other => {
                    cursor.skip()?;
                    other.to_string()
                }
            };
            out.push((key.to_string(), value));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn walks_members_and_skips_nested_values() {
        let got = members(
            r#" { "a" : "x" , "b":{"c":[1,{"d":"}]"}],"e":"\"{"},"f":null,"g":-1.5e3,"h":[],"i":"tab\tq\"" } "#,
        )
        .expect("ok");
        let want = [
            ("a", "x"),
            ("b", "an object"),
            ("f", "null"),
            ("g", "a number"),
            ("h", "an array"),
            ("i", "tab\tq\""),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn grammar() {
        for good in [
            "0",
            "-0",
            "1.5",
            "-12e+3",
            "1E5",
            "true",
            "false",
            "null",
            "\"\"",
            "\"\\u00e9\\n\"",
            "[]",
            "{}",
            "[1,[2,{\"a\":[]}]]",
            " { \"a\" : [ ] } ",
        ] {
            assert!(valid(good), "{good}");
        }
        for bad in [
            "",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "\"a",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\u{1}b\"",
            "[1,]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":1,}",
            "{a:1}",
            "{\"a\":1",
            "[",
            "]",
            "NaN",
            "\"a\" \"b\"",
        ] {
            assert!(!valid(bad), "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(!valid(&deep), "too deep");
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(valid(&ok));
    }

    #[test]
    fn strings_at_every_alignment() {
        for prefix in 0..20 {
            for body in [
                "",
                "x",
                "abc\\\"def",
                "\\\\",
                "12345678\\n",
                "ünïcödé text",
                "0123456789abcdef0123",
            ] {
                let text = format!("{}\"{body}\" ", " ".repeat(prefix));
                let mut cursor = Cursor::new(&text);
                let value = cursor.string().expect("valid");
                let expected: String = serde_json::from_str(&format!("\"{body}\"")).expect("serde");
                assert_eq!(value, expected);
                assert!(cursor.at_end());
            }
            let open = format!("{}\"open\\\"", " ".repeat(prefix));
            assert!(Cursor::new(&open).string().is_err());
        }
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        for (body, want) in [
            ("\\ud800", "\u{fffd}"),
            ("a\\udc00b", "a\u{fffd}b"),
            ("\\ud800\\ud800\\udc00", "\u{fffd}\u{10000}"),
            ("\\ud83d\\ude00", "\u{1f600}"),
            ("\\ud800\\n", "\u{fffd}\n"),
            ("\\u00e9\\/\\b", "\u{e9}/\u{8}"),
        ] {
            let text = format!("\"{body}\"");
            assert_eq!(Cursor::new(&text).string().expect("valid"), want, "{body}");
        }
    }

    proptest::proptest! {
        /// Unescaping agrees with serde_json wherever serde_json accepts the string.
        #[test]
        fn unescapes_like_serde_json(body in "([a-z\"]|\\\\[nrt/\"]|\\\\u[0-9a-fA-F]{4}|\\\\u[dD][89abAB][0-9a-f]{2}\\\\u[dD][c-fC-F][0-9a-f]{2}){0,8}") {
            let text = format!("\"{body}\"");
            if let Ok(theirs) = serde_json::from_str::<String>(&text) {
                let ours = Cursor::new(&text).string().map(Cow::into_owned);
                proptest::prop_assert_eq!(ours, Ok(theirs), "{:?}", text);
            }
        }

        /// The scanner accepts exactly what serde_json accepts.
        #[test]
        fn agrees_with_serde_json(text in "[\\[\\]{}\":,0-9a-z.eE+\\- \\\\\\n]{0,40}") {
            let ours = valid(&text);
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
            proptest::prop_assert_eq!(ours, theirs, "{:?}", text);
        }

        #[test]
        fn agrees_on_json_shaped_text(parts in proptest::collection::vec(proptest::sample::select(vec!["{", "}", "[", "]", "\"k\"", ":", ",", "1", "-2.5", "true", "null", "\"a\\\\nb\"", " "]), 0..16)) {
            let text: String = parts.concat();
            let ours = valid(&text);
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
            proptest::prop_assert_eq!(ours, theirs, "{:?}", text);
        }
    }
}
