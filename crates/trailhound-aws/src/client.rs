//! AWS client setup, built once for every command that talks to AWS (hunt's S3, LookupEvents and
//! Athena sources, inventory collection, the Lambda).
//!
//! Credentials come from the SDK's standard chain: environment, shared config and credentials
//! files with profiles, SSO, `credential_process` (aws-vault), container and instance roles.
//! `--role-arn` assumes an audit role on top of them. One HTTPS stack (hyper 1 + rustls with
//! ring) serves every client. This module never logs credentials.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls;

use crate::error::{AwsError, classify};

/// How to reach AWS: the shared `--profile`, `--region`, `--role-arn`, `--external-id` and
/// `--endpoint-url` options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub profile: Option<String>,
    pub region: Option<String>,
    /// An IAM role to assume (an audit role in another account).
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// Another endpoint for every service (an emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// Attempts per request, with the SDK's exponential backoff; 0 means the default (4).
    pub max_attempts: u32,
}

/// Configured access to AWS: make service clients from it.
#[derive(Debug, Clone)]
pub struct Aws {
    config: SdkConfig,
    settings: AwsSettings,
}

/// Who the credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account: String,
    pub arn: String,
}

impl Aws {
    /// Resolves region and credentials. Fails when no region can be found; credentials are only
    /// fetched on the first request (so their errors name that request).
    pub async fn connect(settings: &AwsSettings) -> Result<Aws, AwsError> {
        Aws::connect_with(settings, None).await
    }

    /// [`Aws::connect`] with fixed credentials instead of the chain: for emulators and tests,
    /// which must never reach the instance metadata service.
    pub async fn connect_static(settings: &AwsSettings, access_key: &str, secret: &str) -> Result<Aws, AwsError> {
        let credentials = aws_credential_types::Credentials::new(access_key, secret, None, None, "static");
        Aws::connect_with(settings, Some(SharedCredentialsProvider::new(credentials))).await
    }

    async fn connect_with(
        settings: &AwsSettings,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Aws, AwsError> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
            .build_https();
        let attempts = if settings.max_attempts == 0 {
            4
        } else {
            settings.max_attempts
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(300))
                    .build(),
            );
        if let Some(profile) = &settings.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(credentials) = credentials {
            loader = loader.credentials_provider(credentials);
        }
        let mut config = loader.load().await;
        if config.region().is_none() {
            return Err(AwsError::NoRegion);
        }
        if let Some(role) = &settings.role_arn {
            let mut builder = AssumeRoleProvider::builder(role).session_name("trailhound");
            if let Some(id) = &settings.external_id {
                builder = builder.external_id(id);
            }
            let provider = builder.configure(&config).build().await;
            config = config
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
        }
        Ok(Aws {
            config,
            settings: settings.clone(),
        })
    }

    /// The region commands use when none is named (from `--region`, the profile or the environment).
    pub fn region(&self) -> &str {
        self.config.region().map(Region::as_ref).unwrap_or("us-east-1")
    }

    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// An S3 client for `region` (the bucket's), path-style when an endpoint is set (emulators).
    pub fn s3(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::from(&self.config);
        if self.settings.endpoint_url.is_some() {
            builder = builder.force_path_style(true);
        }
        if let Some(region) = region {
            builder = builder.region(Region::new(region.to_string()));
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }

    /// A CloudTrail client for `region`; with `retries: false` the caller retries itself (the
    /// LookupEvents reader does, to keep its rate limit exact).
    pub fn cloudtrail(&self, region: &str, retries: bool) -> aws_sdk_cloudtrail::Client {
        let mut builder =
            aws_sdk_cloudtrail::config::Builder::from(&self.config).region(Region::new(region.to_string()));
        if !retries {
            builder = builder.retry_config(RetryConfig::disabled());
        }
        aws_sdk_cloudtrail::Client::from_conf(builder.build())
    }

    /// An Athena client in the configured region; with `retries: false` the caller retries
    /// itself (the Athena source does, to bound and count its backoff on throttling).
    pub fn athena(&self, retries: bool) -> aws_sdk_athena::Client {
        let mut builder = aws_sdk_athena::config::Builder::from(&self.config);
        if !retries {
            builder = builder.retry_config(RetryConfig::disabled());
        }
        aws_sdk_athena::Client::from_conf(builder.build())
    }

    pub fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let builder = aws_sdk_ec2::config::Builder::from(&self.config).region(Region::new(region.to_string()));
        aws_sdk_ec2::Client::from_conf(builder.build())
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }

    pub fn securityhub(&self) -> aws_sdk_securityhub::Client {
        aws_sdk_securityhub::Client::new(&self.config)
    }

    pub fn secrets_manager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }

    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.config)
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }

    /// STS GetCallerIdentity: the account and principal the credentials act as.
    pub async fn identity(&self) -> Result<Identity, AwsError> {
        let out = self
            .sts()
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify(&e, "sts", "sts:GetCallerIdentity", self.region()))?;
        Ok(Identity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }

    /// The regions enabled for the account (EC2 DescribeRegions), sorted.
    pub async fn enabled_regions(&self) -> Result<Vec<String>, AwsError> {
        let out = self
            .ec2(self.region())
            .describe_regions()
            .send()
            .await
            .map_err(|e| classify(&e, "ec2", "ec2:DescribeRegions", self.region()))?;
        let mut regions: Vec<String> = out
            .regions()
            .iter()
            .filter(|r| r.opt_in_status().is_none_or(|s| s != "not-opted-in"))
            .filter_map(|r| r.region_name().map(str::to_string))
            .collect();
        regions.sort();
        Ok(regions)
    }
}
