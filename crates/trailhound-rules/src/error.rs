//! Rule errors: every one names the file, the rule when known, and the line when it can be found.

use std::fmt;

/// A rule file or rule that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// Path of the rule file (or `builtin:PATH`).
    pub file: String,
    /// The rule's id or title, once known.
    pub rule: Option<String>,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(file: &str, message: impl Into<String>) -> RuleError {
        RuleError {
            file: file.to_string(),
            rule: None,
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, " (rule {rule})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RuleError {}

/// An error inside one rule before the file and line are attached; `hint` is a key or value to
/// look for in the file text to find the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompileError {
    pub message: String,
    pub hint: Option<String>,
}

impl CompileError {
    pub fn new(message: impl Into<String>) -> CompileError {
        CompileError {
            message: message.into(),
            hint: None,
        }
    }

    pub fn at(hint: &str, message: impl Into<String>) -> CompileError {
        CompileError {
            message: message.into(),
            hint: Some(hint.to_string()),
        }
    }
}

/// A parser's message without its own " at line L column C" suffix: callers report the line in
/// their own `file:line:` form.
pub(crate) fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}
