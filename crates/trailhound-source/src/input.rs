//! What the user named as a source on the command line.
//!
//! Remote sources (trail buckets, LookupEvents, Athena tables) are parsed whatever the build;
//! reading them needs the `aws` feature (see `crate::aws`).

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
    /// `athena://[WORKGROUP/]DATABASE.TABLE`: the CloudTrail table in Amazon Athena.
    Athena(AthenaTable),
}

/// The Athena table an `athena://` source queries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AthenaTable {
    /// The workgroup queries run in; none: the caller's default (`primary`).
    pub workgroup: Option<String>,
    pub database: String,
    pub table: String,
}

impl AthenaTable {
    /// `DATABASE.TABLE`, as the queries name it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
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
    #[error(
        "{0}: an Athena source is athena://[WORKGROUP/]DATABASE.TABLE (letters, digits and _; a workgroup also - and .)"
    )]
    Athena(String),
}

/// A database or table name Athena accepts unquoted (and nothing that could change a query).
fn athena_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn athena_workgroup(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
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
        } else if let Some(rest) = text.strip_prefix("athena://") {
            let (workgroup, name) = match rest.split_once('/') {
                Some((workgroup, name)) => (Some(workgroup), name),
                None => (None, rest),
            };
            let Some((database, table)) = name.split_once('.') else {
                return Err(InputError::Athena(text.to_string()));
            };
            if !athena_name(database) || !athena_name(table) || !workgroup.is_none_or(athena_workgroup) {
                return Err(InputError::Athena(text.to_string()));
            }
            Ok(Input::Athena(AthenaTable {
                workgroup: workgroup.map(str::to_string),
                database: database.to_string(),
                table: table.to_string(),
            }))
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
            Input::Athena(table) => match &table.workgroup {
                Some(workgroup) => format!("athena://{workgroup}/{}", table.qualified()),
                None => format!("athena://{}", table.qualified()),
            },
        }
    }

    /// Whether reading this source needs AWS access.
    pub fn is_remote(&self) -> bool {
        matches!(self, Input::S3 { .. } | Input::Lookup(_) | Input::Athena(_))
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
        let athena = Input::parse("athena://primary/trails.cloudtrail").expect("athena");
        assert_eq!(
            athena,
            Input::Athena(AthenaTable {
                workgroup: Some("primary".into()),
                database: "trails".into(),
                table: "cloudtrail".into()
            })
        );
        assert_eq!(athena.describe(), "athena://primary/trails.cloudtrail");
        assert!(athena.is_remote());
        assert_eq!(
            Input::parse("athena://trails.cloudtrail").map(|i| i.describe()),
            Ok("athena://trails.cloudtrail".to_string())
        );
        for bad in [
            "athena://",
            "athena://cloudtrail",
            "athena://a.b.c",
            "athena://db.t; DROP TABLE x",
            "athena://db.`t`",
            "athena://w g/db.t",
            "athena://a/b/db.t",
        ] {
            assert!(Input::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Input::parse("-"), Ok(Input::Stdin));
        assert_eq!(Input::parse("logs/"), Ok(Input::Path("logs/".into())));
    }
}
