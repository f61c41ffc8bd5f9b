//! What a `trailhound` process holds for its whole life: at most one tokio runtime and one AWS
//! connection, made the first time a command needs them (a hunt of local files makes neither).
//! Commands borrow them; the engine never makes its own.

use anyhow::Result;

use crate::settings::AwsOptions;

/// The process's runtime and AWS connection, made on first use.
#[derive(Default)]
pub struct Process {
    #[cfg(feature = "aws")]
    runtime: std::sync::OnceLock<tokio::runtime::Runtime>,
    #[cfg(feature = "aws")]
    aws: std::sync::OnceLock<trailhound_aws::Aws>,
}

/// The remote side as the engine takes it, borrowed from the process.
pub use trailhound_source::Remote;

#[cfg(feature = "aws")]
impl Process {
    /// The runtime every async part of the process runs on.
    pub fn runtime(&self) -> Result<&tokio::runtime::Runtime> {
        if let Some(runtime) = self.runtime.get() {
            return Ok(runtime);
        }
        // One worker: AWS calls wait on the network, and an S3 hunt's CPU belongs to the scan
        // (rayon's threads). A second worker also cost a second malloc arena: peak RSS of the
        // bench's hunt of s3:// (large corpus) went from 67 to 62-63 MB, at the same speed.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("starting the AWS client runtime: {e}"))?;
        Ok(self.runtime.get_or_init(|| runtime))
    }

    /// The AWS connection of `options` (the first command's: a process runs one command).
    pub fn aws(&self, options: &AwsOptions) -> Result<&trailhound_aws::Aws> {
        if let Some(aws) = self.aws.get() {
            return Ok(aws);
        }
        let aws = self
            .runtime()?
            .block_on(trailhound_aws::Aws::connect(&options.settings()))?;
        Ok(self.aws.get_or_init(|| aws))
    }

    /// The remote side of a read of `inputs`: connected only when one of them is remote.
    pub fn remote(&self, inputs: &[trailhound_source::Input], options: &AwsOptions) -> Result<Option<Remote<'_>>> {
        if !inputs.iter().any(|i| i.is_remote()) {
            return Ok(None);
        }
        let aws = self.aws(options)?;
        Ok(Some(Remote {
            runtime: self.runtime()?.handle(),
            aws,
        }))
    }
}

#[cfg(not(feature = "aws"))]
impl Process {
    /// Without the `aws` feature nothing remote can be read: the engine names the source.
    pub fn remote(&self, _: &[trailhound_source::Input], _: &AwsOptions) -> Result<Option<Remote<'_>>> {
        Ok(None)
    }
}

#[cfg(feature = "aws")]
impl AwsOptions {
    /// The options as the client setup takes them.
    pub fn settings(&self) -> trailhound_aws::AwsSettings {
        trailhound_aws::AwsSettings {
            profile: self.profile.clone(),
            region: self.region.clone(),
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
            endpoint_url: self.endpoint_url.clone(),
            max_attempts: 0,
        }
    }
}

impl Process {
    /// Reads every source of `scan` into one sink per worker (no correlation batches), with a
    /// progress bar when `scan` asks for one. An Athena source returns the rows `filter` may
    /// match (see [`crate::pushdown`]), or every row of the window without one; the sinks
    /// filter the records themselves all the same.
    pub fn read_all<S: trailhound_source::Sink>(
        &self,
        scan: &crate::settings::ScanSettings,
        filter: Option<&trailhound_rules::RuleSet>,
        make: &(dyn Fn() -> S + Sync),
    ) -> Result<(Vec<S>, trailhound_source::ReadReport)> {
        let remote = self.remote(&scan.read.inputs, &scan.aws)?;
        let bar = crate::progress::Bar::new(scan.progress);
        let mut read = scan.read.clone();
        trailhound_hunt::plan_athena(&mut read, filter, chrono::Utc::now())?;
        Ok(trailhound_source::read_all(&read, remote.as_ref(), &bar, make)?)
    }
}
