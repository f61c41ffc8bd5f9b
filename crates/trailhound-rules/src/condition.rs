//! Sigma condition expressions.
//!
//! `selection and not 1 of filter_*`, parentheses, `all of them`... are parsed once into a
//! [`Cond`] tree over selection indices. Precedence, highest first: `not`, `and`, `or`.

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
                        "aggregation expression in condition {text:?} is not supported here; write it as a Sigma correlation rule"
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
                    format!("unexpected {word:?} in condition {text:?}"),
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
    selections: &'a [String],
    text: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> CompileError {
        let near = match self.tokens.get(self.at) {
            Some(token) => format!(" near {token:?}"),
            None => " at the end".to_string(),
        };
        CompileError::at("condition", format!("{what}{near} in condition {:?}", self.text))
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
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Cond, CompileError> {
        let Some(token) = self.tokens.get(self.at).cloned() else {
            return Err(self.error("expected a selection"));
        };
        self.at += 1;
        match token {
            Token::Open => {
                let inner = self.or()?;
                if !self.eat(&Token::Close) {
                    return Err(self.error("expected ')'"));
                }
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
                                format!("no selection matches {pattern:?} in condition {:?}", self.text),
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

/// Sigma's `1 of selection_*`: `*` matches any run of characters, `?` one.
fn glob_name(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
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
}
