//! What the user named as a source on the command line.

use std::path::PathBuf;

/// A source of CloudTrail events. Closed set; remote sources arrive with their own issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file or a folder (searched recursively).
    Path(PathBuf),
    /// `-`: standard input.
    Stdin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(
        "{0}: reading trail buckets directly is not supported yet; download the logs (aws s3 sync) and give the folder"
    )]
    S3(String),
    #[error("{0}: LookupEvents is not supported yet; export the events to a file and give the file")]
    Lookup(String),
}

impl Input {
    pub fn parse(text: &str) -> Result<Input, InputError> {
        if text == "-" {
            Ok(Input::Stdin)
        } else if text.starts_with("s3://") {
            Err(InputError::S3(text.to_string()))
        } else if text.starts_with("lookup:") {
            Err(InputError::Lookup(text.to_string()))
        } else {
            Ok(Input::Path(PathBuf::from(text)))
        }
    }
}
