//! A fast reader of the core fields of one record.
//!
//! Every record reaches this reader as a `RawValue`, so serde_json has already checked it is valid
//! JSON. That lets this reader be a plain structural scanner: it walks the top-level keys, reads
//! the string values of the core fields (borrowed unless they hold escapes), descends into
//! `userIdentity`, and jumps over everything else with `memchr`. It is about twice as fast as
//! deserializing a struct with serde, which matters because it runs on every record. It never
//! panics: anything unexpected is an error, not an index out of bounds.

use std::borrow::Cow;

use crate::record::RecordError;

pub(crate) struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

/// What a JSON value is, for error messages.
fn kind(byte: u8) -> &'static str {
    match byte {
        b'"' => "a string",
        b'{' => "an object",
        b'[' => "an array",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    }
}

fn broken() -> RecordError {
    RecordError::Json("unexpected structure".into())
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor {
            text,
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.at) {
            if !b.is_ascii_whitespace() {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn expect(&mut self, byte: u8) -> Result<(), RecordError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(broken())
        }
    }

    /// Walks the members of the object at the cursor, calling `member` with each key; `member`
    /// must consume the value.
    pub fn object(
        &mut self,
        member: &mut dyn FnMut(&mut Cursor<'a>, &str) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        self.expect(b'{')?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(self, &key)?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(broken()),
            }
        }
    }

    /// The kind of the value at the cursor.
    pub fn kind(&mut self) -> &'static str {
        self.peek().map_or("nothing", kind)
    }

    pub fn is_object(&mut self) -> bool {
        self.peek() == Some(b'{')
    }

    /// A string or null value for the core field `field`.
    pub fn string_field(&mut self, field: &'static str) -> Result<Option<Cow<'a, str>>, RecordError> {
        match self.peek() {
            Some(b'"') => self.string().map(Some),
            Some(b'n') => {
                self.skip()?;
                Ok(None)
            }
            Some(other) => Err(RecordError::WrongType {
                field,
                found: kind(other),
                expected: "a string",
            }),
            None => Err(broken()),
        }
    }

    /// A boolean (or the strings "true"/"false", as some old records have), or null.
    pub fn bool_field(&mut self, field: &'static str) -> Result<Option<bool>, RecordError> {
        match self.peek() {
            Some(b't') | Some(b'f') => {
                let value = self.bytes[self.at] == b't';
                self.skip()?;
                Ok(Some(value))
            }
            Some(b'"') => Ok(Some(self.string()?.eq_ignore_ascii_case("true"))),
            Some(b'n') => {
                self.skip()?;
                Ok(None)
            }
            Some(other) => Err(RecordError::WrongType {
                field,
                found: kind(other),
                expected: "a boolean",
            }),
            None => Err(broken()),
        }
    }

    /// The string at the cursor, unescaped (borrowed when it has no escapes).
    fn string(&mut self) -> Result<Cow<'a, str>, RecordError> {
        if self.peek() != Some(b'"') {
            return Err(broken());
        }
        let start = self.at;
        let (end, escaped) = string_end(self.bytes, start + 1).ok_or_else(broken)?;
        self.at = end + 1;
        let quoted = self.text.get(start..self.at).ok_or_else(broken)?;
        if escaped {
            serde_json::from_str::<String>(quoted)
                .map(Cow::Owned)
                .map_err(|e| RecordError::Json(e.to_string()))
        } else {
            Ok(Cow::Borrowed(&quoted[1..quoted.len() - 1]))
        }
    }

    /// Jumps over the value at the cursor.
    pub fn skip(&mut self) -> Result<(), RecordError> {
        let bytes = self.bytes;
        match self.peek() {
            Some(b'"') => {
                let (end, _) = string_end(bytes, self.at + 1).ok_or_else(broken)?;
                self.at = end + 1;
                Ok(())
            }
            Some(b'{' | b'[') => {
                // Nested values are most of a record's bytes: one tight loop over them.
                let mut depth = 0usize;
                let mut at = self.at;
                while let Some(&b) = bytes.get(at) {
                    match b {
                        b'"' => at = string_end(bytes, at + 1).ok_or_else(broken)?.0,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at = at + 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    at += 1;
                }
                Err(broken())
            }
            Some(_) => {
                while let Some(&b) = bytes.get(self.at) {
                    if matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace() {
                        return Ok(());
                    }
                    self.at += 1;
                }
                Ok(())
            }
            None => Err(broken()),
        }
    }
}

/// Index of the closing quote of the string whose content starts at `from`, and whether the
/// string holds escapes. Eight bytes at a time: most of a record's bytes are inside strings.
fn string_end(bytes: &[u8], from: usize) -> Option<(usize, bool)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // High bit set in each byte of `word` equal to `byte` (exact for the lowest such byte).
    let equal = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut at = from;
    let mut escaped = false;
    loop {
        if let Some(chunk) = bytes.get(at..at + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
            let word = u64::from_le_bytes(chunk);
            let hits = equal(word, b'"') | equal(word, b'\\');
            if hits == 0 {
                at += 8;
                continue;
            }
            at += (hits.trailing_zeros() / 8) as usize;
        }
        match *bytes.get(at)? {
            b'"' => return Some((at, escaped)),
            b'\\' => {
                escaped = true;
                at += 2;
            }
            _ => at += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(text: &str) -> Result<Vec<(String, String)>, RecordError> {
        let mut out = Vec::new();
        Cursor::new(text).object(&mut |cursor, key| {
            let value = match cursor.kind() {
                "a string" | "null" => cursor
                    .string_field("x")?
                    .map(Cow::into_owned)
                    .unwrap_or_else(|| "<null>".into()),
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
            ("f", "<null>"),
            ("g", "a number"),
            ("h", "an array"),
            ("i", "tab\tq\""),
        ];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn string_ends_at_every_offset() {
        for prefix in 0..20 {
            for body in ["", "x", "abc\\\"def", "\\\\", "12345678\\n", "ünïcödé text"] {
                let text = format!("{}\"{body}\" tail", " ".repeat(prefix));
                let (end, escaped) = string_end(text.as_bytes(), prefix + 1).expect("closed");
                assert_eq!(&text[prefix + 1..end], body);
                assert_eq!(escaped, body.contains('\\'));
            }
            assert_eq!(string_end(format!("{}\"open\\\"", " ".repeat(prefix)).as_bytes(), prefix + 1), None);
        }
    }

    #[test]
    fn empty_and_broken_objects_do_not_panic() {
        assert_eq!(members("{}").expect("empty"), []);
        for bad in [
            "",
            "{",
            "{\"a\"",
            "{\"a\":",
            "{\"a\":\"x",
            "{\"a\":[1,2",
            "[]",
            "{\"a\":1 \"b\":2}",
            "{\"a\\",
        ] {
            assert!(members(bad).is_err(), "{bad:?}");
        }
    }
}
