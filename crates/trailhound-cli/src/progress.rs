//! The progress bar on stderr (a terminal only): files planned and read.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The engine's [`trailhound_source::Progress`] drawn with indicatif.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar when `enabled` (stderr is a terminal and not `-q`), else nothing drawn.
    pub fn new(enabled: bool) -> Bar {
        if !enabled {
            return Bar(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} files ({per_sec}, eta {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar(bar)
    }
}

impl trailhound_source::Progress for Bar {
    fn planned(&self, files: u64) {
        self.0.inc_length(files);
    }

    fn read(&self) {
        self.0.inc(1);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
