//! Where a command writes its results: `-o FILE` or stdout, and how a write ends.

use std::io::Write;

use anyhow::{Context, Result};

/// `-o FILE`, or stdout.
pub fn output(path: Option<&std::path::Path>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            fs_err::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// Finishes writing; a closed pipe (`| head`) is not an error.
pub fn finish(result: std::io::Result<()>, out: &mut dyn Write) -> Result<()> {
    match result.and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing results"),
    }
}
