//! What the user named as a source on the command line.
//!
//! Remote sources (trail buckets, LookupEvents) are parsed whatever the build; reading them
//! needs the `aws` feature (see `crate::aws`).

use std::path::PathBuf;

/// A source of CloudTrail events. Closed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file or a folder (searched recursively).
    Path(PathBuf),
    /// `-`: standard input.
    Stdin,
    /// `s3://bucket[/prefix]`: a trail bucket, read by its `AWSLogs/...` layout.
    S3 { bucket: String, prefix: String },
    /// `lookup:` with regions: the CloudTrail LookupEvents API.
    Lookup(LookupRegions),
}

/// The regions `lookup:` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupRegions {
    /// `lookup:` alone: the configured region (`--region`, profile, environment).
    Default,
    /// `lookup:all`: every region enabled for the account.
    All,
    /// `lookup:us-east-1,eu-west-1`.
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{0}: an S3 source is s3://BUCKET or s3://BUCKET/PREFIX")]
    S3(String),
    #[error("{0}: a LookupEvents source is lookup:, lookup:all or lookup:REGION[,REGION...]")]
    Lookup(String),
}

impl Input {
    pub fn parse(text: &str) -> Result<Input, InputError> {
        if text == "-" {
            Ok(Input::Stdin)
        } else if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid = (3..=63).contains(&bucket.len())
                && bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
            if !valid {
                return Err(InputError::S3(text.to_string()));
            }
            Ok(Input::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_start_matches('/').to_string(),
            })
        } else if let Some(rest) = text.strip_prefix("lookup:") {
            let regions = match rest {
                "" => LookupRegions::Default,
                "all" => LookupRegions::All,
                list => {
                    let regions: Vec<String> = list.split(',').map(|r| r.trim().to_string()).collect();
                    let region_like = |r: &String| {
                        !r.is_empty()
                            && r.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    };
                    if !regions.iter().all(region_like) {
                        return Err(InputError::Lookup(text.to_string()));
                    }
                    LookupRegions::List(regions)
                }
            };
            Ok(Input::Lookup(regions))
        } else {
            Ok(Input::Path(PathBuf::from(text)))
        }
    }

    /// The source as the user would write it (`s3://bucket/prefix`, `lookup:us-east-1`).
    pub fn describe(&self) -> String {
        match self {
            Input::Path(path) => path.display().to_string(),
            Input::Stdin => "-".to_string(),
            Input::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            Input::Lookup(LookupRegions::Default) => "lookup:".to_string(),
            Input::Lookup(LookupRegions::All) => "lookup:all".to_string(),
            Input::Lookup(LookupRegions::List(regions)) => format!("lookup:{}", regions.join(",")),
        }
    }

    /// Whether reading this source needs AWS access.
    pub fn is_remote(&self) -> bool {
        matches!(self, Input::S3 { .. } | Input::Lookup(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_remote_sources() {
        assert_eq!(
            Input::parse("s3://trail-bucket/org/AWSLogs/"),
            Ok(Input::S3 {
                bucket: "trail-bucket".into(),
                prefix: "org/AWSLogs/".into()
            })
        );
        assert_eq!(
            Input::parse("s3://trail-bucket"),
            Ok(Input::S3 {
                bucket: "trail-bucket".into(),
                prefix: String::new()
            })
        );
        assert!(Input::parse("s3://Bad_Bucket/x").is_err());
        assert!(Input::parse("s3://").is_err());
        assert_eq!(Input::parse("lookup:"), Ok(Input::Lookup(LookupRegions::Default)));
        assert_eq!(Input::parse("lookup:all"), Ok(Input::Lookup(LookupRegions::All)));
        assert_eq!(
            Input::parse("lookup:us-east-1,eu-west-1"),
            Ok(Input::Lookup(LookupRegions::List(vec![
                "us-east-1".into(),
                "eu-west-1".into()
            ])))
        );
        assert!(Input::parse("lookup:us-east-1,,x").is_err());
        assert!(Input::parse("lookup:US_EAST").is_err());
        assert_eq!(Input::parse("-"), Ok(Input::Stdin));
        assert_eq!(Input::parse("logs/"), Ok(Input::Path("logs/".into())));
    }
}
