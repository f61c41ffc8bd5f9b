//! Making untrusted text safe to print on a terminal.
//!
//! Log values, file names and error messages quoting them can carry ANSI escape sequences or other
//! control characters. Before any of them reach a terminal, control characters are replaced by
//! visible escapes (`\x1b`, `\n`), so a log line can neither recolour nor rewrite the screen.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1) and bidi override shown as an escape.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_only() {
        assert_eq!(printable("plain ünïcode"), "plain ünïcode");
        assert_eq!(printable("\u{1b}[31mred\u{7}"), "\\u{1b}[31mred\\u{7}");
        assert_eq!(printable("a\nb\tc\u{9b}d\u{202e}"), "a\\nb\\tc\\u{9b}d\\u{202e}");
    }
}
