//! Running a scan for a command: check the sources, size the thread pool, show progress.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trailhound_source::{Input, Plan, ScanReport, Sink, scan};

use crate::settings::ScanSettings;

/// Scans `settings`' sources, one sink per worker.
pub fn run<S: Sink>(settings: &ScanSettings, make: &(dyn Fn() -> S + Sync)) -> Result<ScanReport<S>> {
    let plan = plan(settings)?;
    let bar = progress_bar(settings.progress, plan.len() as u64);
    let report = scan(plan, &settings.options, make, &|_| bar.inc(1));
    bar.finish_and_clear();
    Ok(report)
}

/// The files a scan of `settings` will read, after checking the sources exist.
pub fn plan(settings: &ScanSettings) -> Result<Plan> {
    for input in &settings.inputs {
        if let Input::Path(path) = input
            && !path.exists()
        {
            bail!("{}: no such file or folder", path.display());
        }
    }
    if let Some(threads) = settings.threads {
        // A second command in the same process (tests) finds the pool already built: fine.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads).build_global();
    }
    Ok(Plan::new(&settings.inputs, &settings.options))
}

pub fn progress_bar(enabled: bool, files: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(files), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} files ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Where a command writes its results: `-o FILE` or stdout.
pub fn output(path: Option<&std::path::Path>) -> Result<Box<dyn std::io::Write>> {
    Ok(match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            fs_err::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// Finishes writing; a closed pipe (`| head`) is not an error.
pub fn finish(result: std::io::Result<()>, out: &mut dyn std::io::Write) -> Result<()> {
    match result.and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing results"),
    }
}
