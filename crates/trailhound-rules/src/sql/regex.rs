//! The engine's regexes, rewritten for SQL engines.
//!
//! A value test that the engine runs as a regex (wildcards, `contains`, `re`, values that are not
//! plain ASCII) is parsed with the same parser and flags the engine uses, and its syntax tree is
//! printed back in the small subset of regex syntax that RE2 (DuckDB), Java and Joni (Trino,
//! Athena) read alike: literals, explicit character classes, groups without capture, counted
//! repetition, alternation, and the text anchors `\A` and `\z`. Case-insensitivity is already
//! resolved by the parser into classes (`k` becomes `[Kk\u{212A}]`), so the SQL engines never apply
//! case folding of their own, and `.` becomes the explicit class it stands for. What has no
//! portable form (word boundaries, line anchors, byte classes, counts above RE2's 1000) is
//! refused with the reason.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// The most a counted repetition may say: RE2 refuses larger counts.
const MAX_COUNT: u32 = 1000;

/// Rewrites `pattern` (Rust regex syntax, as the engine compiled it) as a portable regex.
pub(crate) fn portable(pattern: &str) -> Result<String, String> {
    let hir = regex_syntax::Parser::new()
        .parse(pattern)
        .map_err(|err| format!("the regex {pattern:?} does not parse: {err}"))?;
    let mut out = String::new();
    print(&hir, &mut out)?;
    Ok(out)
}

fn print(hir: &Hir, out: &mut String) -> Result<(), String> {
    match hir.kind() {
        HirKind::Empty => out.push_str("(?:)"),
        HirKind::Literal(literal) => {
            let text = std::str::from_utf8(&literal.0).map_err(|_| "a regex literal that is not UTF-8".to_string())?;
            for c in text.chars() {
                push_char(c, out);
            }
        }
        HirKind::Class(Class::Unicode(class)) => {
            let ranges = class.ranges();
            if ranges.is_empty() {
                // Matches nothing.
                out.push_str("[^\\x00-\u{10FFFF}]");
                return Ok(());
            }
            out.push('[');
            for range in ranges {
                push_char(range.start(), out);
                if range.end() != range.start() {
                    out.push('-');
                    push_char(range.end(), out);
                }
            }
            out.push(']');
        }
        HirKind::Class(Class::Bytes(_)) => {
            return Err("a regex that matches raw bytes ((?-u)) has no SQL form".to_string());
        }
        HirKind::Look(look) => match look {
            Look::Start => out.push_str("\\A"),
            Look::End => out.push_str("\\z"),
            Look::StartLF | Look::EndLF | Look::StartCRLF | Look::EndCRLF => {
                return Err("multi-line anchors ((?m) ^ and $) mean different things to SQL engines".to_string());
            }
            _ => {
                return Err("word boundaries (\\b, \\B, \\<, \\>) mean different things to SQL engines".to_string());
            }
        },
        HirKind::Repetition(repetition) => {
            if repetition.min > MAX_COUNT || repetition.max.is_some_and(|max| max > MAX_COUNT) {
                return Err(format!(
                    "a regex repetition over {MAX_COUNT} times is refused by DuckDB's regex engine"
                ));
            }
            // A group around anything but one character or class, so the count applies to all of it.
            let atom = matches!(repetition.sub.kind(), HirKind::Class(_))
                || matches!(repetition.sub.kind(), HirKind::Literal(l) if std::str::from_utf8(&l.0).is_ok_and(|t| t.chars().count() == 1));
            if atom {
                print(&repetition.sub, out)?;
            } else {
                out.push_str("(?:");
                print(&repetition.sub, out)?;
                out.push(')');
            }
            match (repetition.min, repetition.max) {
                (0, None) => out.push('*'),
                (1, None) => out.push('+'),
                (0, Some(1)) => out.push('?'),
                (min, None) => out.push_str(&format!("{{{min},}}")),
                (min, Some(max)) if min == max => out.push_str(&format!("{{{min}}}")),
                (min, Some(max)) => out.push_str(&format!("{{{min},{max}}}")),
            }
        }
        HirKind::Capture(capture) => {
            out.push_str("(?:");
            print(&capture.sub, out)?;
            out.push(')');
        }
        HirKind::Concat(items) => {
            for item in items {
                print(item, out)?;
            }
        }
        HirKind::Alternation(items) => {
            out.push_str("(?:");
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push('|');
                }
                print(item, out)?;
            }
            out.push(')');
        }
    }
    Ok(())
}

/// One character, literal in any of the engines: letters and digits as they are, other ASCII
/// printable characters escaped with a backslash (literal everywhere, `&` and `-` in classes
/// included), ASCII controls and space as `\xHH`, everything else as the character itself.
fn push_char(c: char, out: &mut String) {
    if c.is_ascii_alphanumeric() || (!c.is_ascii() && !c.is_control()) {
        out.push(c);
    } else if c.is_ascii_graphic() {
        out.push('\\');
        out.push(c);
    } else if c.is_ascii() {
        out.push_str(&format!("\\x{:02X}", u32::from(c)));
    } else {
        // Non-ASCII control characters (C1): written as the character, which every engine
        // reads literally.
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_folding_becomes_classes() {
        assert_eq!(portable("(?i)ab").expect("ok"), "[Aa][Bb]");
        assert_eq!(portable("(?i)k").expect("ok"), "[Kk\u{212A}]");
        assert_eq!(portable("(?i)s").expect("ok"), "[Ss\u{17F}]");
        assert_eq!(portable("a.c").expect("ok"), "a[\\x00-\\x09\\x0B-\u{10FFFF}]c");
    }

    #[test]
    fn anchors_and_repetition() {
        assert_eq!(portable("^a$").expect("ok"), "\\Aa\\z");
        assert_eq!(portable("(ab)+c{2,3}").expect("ok"), "(?:(?:ab))+c{2,3}");
        assert_eq!(portable("a|b\\.").expect("ok"), "(?:a|b\\.)");
        assert!(portable("\\bword").is_err());
        assert!(portable("(?m)^x").is_err());
        assert!(portable("a{2000}").is_err());
        assert!(portable("(?-u:\\xFF)").is_err());
    }
}
