//! Sigma condition expressions.
//!
//! `selection and not 1 of filter_*`, parentheses, `all of them`... are parsed once into a
//! [`Cond`] tree over selection indices. Precedence, highest first: `not`, `and`, `or`.
//!
//! Conditions come from rule files users download, so parsing is bounded: parentheses and `not`
//! nest at most [`MAX_DEPTH`] deep (deeper is an error, not a stack overflow), and `1 of x*`
//! patterns are matched in time proportional to pattern length times name length.

use crate::error::CompileError;

/// A compiled condition over the rule's selections (by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond {
    Selection(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

impl Cond {
    /// Evaluates the tree; `selection(i)` says whether selection `i` matched.
    pub fn eval(&self, selection: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Cond::Selection(index) => selection(*index),
            Cond::Not(inner) => !inner.eval(selection),
            Cond::And(items) => items.iter().all(|c| c.eval(selection)),
            Cond::Or(items) => items.iter().any(|c| c.eval(selection)),
        }
    }
}

/// How deep parentheses and `not` may nest in a condition. Real rules use a handful of levels.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    /// `1 of` / `any of` (`true`) or `all of` (`false`).
    Of(bool),
    Them,
    Name(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, CompileError> {
    let mut tokens = Vec::new();
    let mut words = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        match ch {
            '(' | ')' => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                words.push(ch.to_string());
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    let mut iter = words.into_iter().peekable();
    while let Some(word) = iter.next() {
        let lower = word.to_ascii_lowercase();
        let token = match lower.as_str() {
            "(" => Token::Open,
            ")" => Token::Close,
            "and" => Token::And,
            "or" => Token::Or,
            "not" => Token::Not,
            "them" => Token::Them,
            "1" | "any" | "all" if iter.peek().is_some_and(|w| w.eq_ignore_ascii_case("of")) => {
                iter.next();
                Token::Of(lower != "all")
            }
            _ if word.starts_with('|') || word.contains('|') => {
                return Err(CompileError::at(
                    "condition",
                    format!(
                        "aggregation expression in condition {:?} is not supported here; write it as a Sigma correlation rule",
                        abbreviate(text)
                    ),
                ));
            }
            _ if word
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '*' | '?' | '.')) =>
            {
                Token::Name(word)
            }
            _ => {
                return Err(CompileError::at(
                    "condition",
                    format!("unexpected {:?} in condition {:?}", abbreviate(&word), abbreviate(text)),
                ));
            }
        };
        tokens.push(token);
    }
    Ok(tokens)
}

/// Parses `text` and resolves names against `selections` (the detection's keys, in order).
pub(crate) fn parse(text: &str, selections: &[String]) -> Result<Cond, CompileError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
        selections,
        text,
    };
    let cond = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err(parser.error("unexpected trailing input"));
    }
    Ok(cond)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    /// Parentheses and `not` currently open.
    depth: usize,
    selections: &'a [String],
    text: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> CompileError {
        let near = match self.tokens.get(self.at) {
            Some(token) => format!(" near {}", abbreviate(&format!("{token:?}"))),
            None => " at the end".to_string(),
        };
        CompileError::at(
            "condition",
            format!("{what}{near} in condition {:?}", abbreviate(self.text)),
        )
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.tokens.get(self.at) == Some(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Cond, CompileError> {
        let mut items = vec![self.and()?];
        while self.eat(&Token::Or) {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, CompileError> {
        let mut items = vec![self.not()?];
        while self.eat(&Token::And) {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self) -> Result<Cond, CompileError> {
        if self.eat(&Token::Not) {
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.primary()
    }

    /// One more level of nesting, refused beyond [`MAX_DEPTH`].
    fn enter(&mut self) -> Result<(), CompileError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CompileError::at(
                "condition",
                format!(
                    "condition nests parentheses and 'not' deeper than {MAX_DEPTH} levels in condition {:?}",
                    abbreviate(self.text)
                ),
            ));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Cond, CompileError> {
        let Some(token) = self.tokens.get(self.at).cloned() else {
            return Err(self.error("expected a selection"));
        };
        self.at += 1;
        match token {
            Token::Open => {
                self.enter()?;
                let inner = self.or()?;
                if !self.eat(&Token::Close) {
                    return Err(self.error("expected ')'"));
                }
                self.depth -= 1;
                Ok(inner)
            }
            Token::Of(any) => {
                let indices = match self.tokens.get(self.at).cloned() {
                    Some(Token::Them) => {
                        self.at += 1;
                        (0..self.selections.len())
                            .filter(|&i| !self.selections[i].starts_with('_'))
                            .collect::<Vec<_>>()
                    }
                    Some(Token::Name(pattern)) => {
                        self.at += 1;
                        let found: Vec<usize> = (0..self.selections.len())
                            .filter(|&i| glob_name(&pattern, &self.selections[i]))
                            .collect();
                        if found.is_empty() {
                            return Err(CompileError::at(
                                &pattern,
                                format!(
                                    "no selection matches {:?} in condition {:?}",
                                    abbreviate(&pattern),
                                    abbreviate(self.text)
                                ),
                            ));
                        }
                        found
                    }
                    _ => {
                        return Err(self.error("expected a selection pattern or 'them' after 'of'"));
                    }
                };
                let items: Vec<Cond> = indices.into_iter().map(Cond::Selection).collect();
                Ok(match (items.len(), any) {
                    (1, _) => items.into_iter().next().unwrap_or(Cond::Or(Vec::new())),
                    (_, true) => Cond::Or(items),
                    (_, false) => Cond::And(items),
                })
            }
            Token::Name(name) => match self.selections.iter().position(|s| *s == name) {
                Some(index) => Ok(Cond::Selection(index)),
                None => Err(CompileError::at(
                    &name,
                    format!("condition refers to {name:?}, which is not a selection in this rule"),
                )),
            },
            other => {
                self.at -= 1;
                Err(self.error(&format!("unexpected {other:?}")))
            }
        }
    }
}

/// Sigma's `1 of selection_*`: `*` matches any run of characters, `?` one. Greedy with
/// backtracking to the last `*` only, so the time is at most pattern length times name length
/// (never exponential), and nothing recurses.
pub(crate) fn glob_name(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // The last `*` seen, and where in the name it was tried up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some('?') => {
                pi += 1;
                ni += 1;
            }
            Some(c) if *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and retry what follows it.
                Some((star_pi, star_ni)) => {
                    star = Some((star_pi, star_ni + 1));
                    pi = star_pi + 1;
                    ni = star_ni + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The start of a long text, for messages.
fn abbreviate(text: &str) -> String {
    const SHOWN: usize = 80;
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["selection", "filter_a", "filter_b", "_hidden", "sel2"]
            .map(String::from)
            .to_vec()
    }

    fn eval(text: &str, truth: [bool; 5]) -> bool {
        let cond = parse(text, &names()).expect(text);
        cond.eval(&mut |i| truth[i])
    }

    #[test]
    fn precedence_and_parentheses() {
        // not > and > or
        assert!(eval(
            "selection or filter_a and filter_b",
            [true, false, false, false, false]
        ));
        assert!(!eval(
            "(selection or filter_a) and filter_b",
            [true, false, false, false, false]
        ));
        assert!(eval("not selection and filter_a", [false, true, false, false, false]));
        assert!(!eval("not (selection or filter_a)", [false, true, false, false, false]));
        assert!(eval("selection AND NOT filter_a", [true, false, false, false, false]));
    }

    #[test]
    fn quantifiers() {
        assert!(eval(
            "selection and not 1 of filter_*",
            [true, false, false, false, false]
        ));
        assert!(!eval(
            "selection and not 1 of filter_*",
            [true, false, true, false, false]
        ));
        assert!(eval("all of filter_*", [false, true, true, false, false]));
        assert!(!eval("all of filter_*", [false, true, false, false, false]));
        assert!(eval("1 of them", [false, false, false, false, true]));
        // `them` leaves out names starting with an underscore
        assert!(eval("all of them", [true, true, true, false, true]));
        assert!(eval("any of sel*", [false, false, false, false, true]));
        assert!(eval("1 of sel?", [false, false, false, false, true]));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "selection and",
            "(selection",
            "selection)",
            "unknown",
            "1 of nothing_*",
            "selection | count() > 5",
            "selection or or filter_a",
            "sel$",
        ] {
            assert!(parse(bad, &names()).is_err(), "{bad}");
        }
        let err = parse("selection and missing", &names()).expect_err("unknown name");
        assert!(err.message.contains("\"missing\""), "{}", err.message);
    }

    #[test]
    fn deeply_nested_parentheses_are_refused_without_overflowing_the_stack() {
        let text = format!("{}selection{}", "(".repeat(10_000), ")".repeat(10_000));
        let err = parse(&text, &names()).expect_err("too deep");
        assert!(err.message.contains("deeper than 64"), "{}", err.message);
        assert!(err.message.len() < 400, "the message abbreviates the condition");
        let ok = format!("{}selection{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok, &names()).is_ok());
    }

    #[test]
    fn a_long_chain_of_not_is_refused_without_overflowing_the_stack() {
        let text = format!("{}selection", "not ".repeat(20_000));
        let err = parse(&text, &names()).expect_err("too deep");
        assert!(err.message.contains("deeper than 64"), "{}", err.message);
        assert!(eval(
            &format!("{}selection", "not ".repeat(MAX_DEPTH)),
            [true, false, false, false, false]
        ));
    }

    #[test]
    fn a_huge_of_pattern_does_not_overflow_the_stack() {
        let pattern = format!("{}*", "x".repeat(1_000_000));
        assert!(parse(&format!("1 of {pattern}"), &names()).is_err());
        let names = vec![format!("{}y", "x".repeat(1_000_000))];
        assert!(parse(&format!("1 of {pattern}"), &names).is_ok());
    }

    #[test]
    fn selection_name_globs_are_not_exponential() {
        // `a*a*a*...b` against a long run of `a`: exponential for a backtracking matcher (30
        // stars hung); a generous timeout only detects such a hang.
        let pattern = format!("{}b", "a*".repeat(30));
        let name = "a".repeat(200);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send((glob_name(&pattern, &name), glob_name(&pattern, &format!("{name}b"))));
        });
        let found = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the glob hung");
        assert_eq!(found, (false, true));
    }

    #[test]
    fn globs_match_like_sigma() {
        for (pattern, name, expected) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "abc", true),
            ("a*c", "abcd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*b*", "abc", true),
            ("**", "x", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("sel", "sel2", false),
            ("", "", true),
            ("?", "", false),
            ("filter_*", "filter_a", true),
        ] {
            assert_eq!(glob_name(pattern, name), expected, "{pattern} ~ {name}");
        }
    }
}
