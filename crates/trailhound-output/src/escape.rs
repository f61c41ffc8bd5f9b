//! Escaping untrusted values for each medium.

use std::borrow::Cow;

pub use trailhound_event::printable as terminal;

/// A CSV cell a spreadsheet will not evaluate: cells starting with `=`, `+`, `-`, `@`, tab or
/// carriage return get a leading apostrophe (OWASP's advice for CSV injection).
pub fn csv_cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("arn:aws:iam::1:user/x"), "arn:aws:iam::1:user/x");
    }
}
