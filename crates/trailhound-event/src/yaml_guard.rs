//! A guard for YAML text from untrusted files (rules, their tests, reasons).
//!
//! The YAML reader checks nesting depth only as it builds values, after its scanner has read
//! the whole document, and that scanner is quadratic in how deeply flow collections (`[`, `{`)
//! nest: 100,000 levels of `[` take minutes. So the depth of flow brackets is counted first, in
//! one linear pass. Quotes and comments are not told apart from the rest: a real file never
//! holds a hundred unclosed brackets in a string, and a false alarm names its line.

/// The 1-based line where `[` and `{` first nest deeper than `max` levels in `text`, if they do.
pub fn flow_nesting_beyond(text: &str, max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    for byte in text.bytes() {
        match byte {
            b'\n' => line += 1,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_found_on_its_line_in_linear_time() {
        let hostile = format!("title: x\na: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(flow_nesting_beyond(&hostile, 128), Some(2));
        let maps = format!("a:\n  b: {}\n", "{a: ".repeat(200));
        assert_eq!(flow_nesting_beyond(&maps, 128), Some(2));
    }

    #[test]
    fn ordinary_rules_pass() {
        let rule = "detection:\n  sel:\n    eventName: [CreateUser, DeleteUser]\n    requestParameters|contains: '[a-z]{3}'\n  condition: sel\n";
        assert_eq!(flow_nesting_beyond(rule, 128), None);
        // Closing brackets without opening ones never go below zero.
        assert_eq!(flow_nesting_beyond("a: ']]]]'\nb: [[x]]\n", 1), Some(2));
    }
}
