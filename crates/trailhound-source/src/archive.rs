//! Archives of CloudTrail files, as logs are handed over: zip, tar, and tar compressed with gzip
//! (`.tar.gz`, `.tgz`). Each entry an event file would be (by its name, as in a folder) is read
//! as a file of its own, named `ARCHIVE!/ENTRY`; digests and other services' logs are skipped
//! and entries whose delivery time is outside the window are not scanned, as in a folder.
//!
//! Nothing is written to disk: an entry's path is only a name, whatever it holds (`..`, an
//! absolute path). An entry is held whole up to the size a file is, and streamed past it, so
//! the archive's size does not matter, nor a bomb inside it: each entry has the limits a file
//! has. Entries are read in the archive's order on one thread (an archive is one stream); a
//! streamed entry spreads its scanning over the other cores. Archives inside archives are not
//! opened.

use std::io::Read;
use std::path::Path;

use crate::decode::Turn;
use crate::discover::{file_time, is_digest_path, is_event_file_name, is_other_service_path};
use crate::scan::{Buffers, ProblemKind, STREAM_INFLATED_BYTES, ScanOptions, Sink, Worker, scan_bytes};
use crate::stream::Helpers;

/// The kinds of archive read, told by the file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Zip,
    Tar,
    TarGz,
}

/// The archive kind a file name says, if any.
pub(crate) fn kind(name: &str) -> Option<Kind> {
    let name = name.to_ascii_lowercase();
    if name.ends_with(".zip") {
        Some(Kind::Zip)
    } else if name.ends_with(".tar") {
        Some(Kind::Tar)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some(Kind::TarGz)
    } else {
        None
    }
}

/// What walking an archive meets, in the archive's order.
pub(crate) enum Met<'r> {
    /// A regular file: its path (only a name, whatever it holds), its size as the archive's
    /// header gives it (not trusted), and its bytes (before any gzip of its own).
    File {
        path: &'r str,
        size: u64,
        reader: &'r mut dyn Read,
    },
    /// A zip entry that cannot be read (a compression not supported, a bad header); the others
    /// are walked.
    Unreadable { index: usize, message: String },
}

/// Why an archive's walk stopped early.
pub(crate) struct Broken {
    pub message: String,
    /// An entry was reached first: the file is an archive, broken later.
    pub opened: bool,
}

/// Walks the entries of the archive `file`, one stream, handing each to `visit`.
pub(crate) fn walk_entries(file: std::fs::File, kind: Kind, visit: &mut dyn FnMut(Met<'_>)) -> Result<(), Broken> {
    let mut opened = false;
    let outcome = match kind {
        Kind::Zip => zip_entries(file, &mut opened, visit),
        Kind::Tar => tar_entries(std::io::BufReader::new(file), &mut opened, visit),
        Kind::TarGz => tar_entries(
            flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)),
            &mut opened,
            visit,
        ),
    };
    outcome.map_err(|message| Broken { message, opened })
}

fn tar_entries(reader: impl Read, opened: &mut bool, visit: &mut dyn FnMut(Met<'_>)) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|err| format!("not a tar archive: {err}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|err| match *opened {
            true => err.to_string(),
            false => format!("not a tar archive: {err}"),
        })?;
        *opened = true;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let size = entry.header().size().unwrap_or(u64::MAX);
        visit(Met::File {
            path: &path,
            size,
            reader: &mut entry,
        });
    }
    Ok(())
}

fn zip_entries(file: std::fs::File, opened: &mut bool, visit: &mut dyn FnMut(Met<'_>)) -> Result<(), String> {
    let mut archive =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|err| format!("not a zip archive: {err}"))?;
    *opened = true;
    for index in 0..archive.len() {
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(err) => {
                visit(Met::Unreadable {
                    index,
                    message: err.to_string(),
                });
                continue;
            }
        };
        if !entry.is_file() {
            continue;
        }
        let path = match entry.name() {
            Ok(name) => name.into_owned(),
            Err(_) => String::from_utf8_lossy(entry.name_raw()).into_owned(),
        };
        let size = entry.size();
        visit(Met::File {
            path: &path,
            size,
            reader: &mut entry,
        });
    }
    Ok(())
}

/// Reads every event file in the archive at `path` (called `name`) into the worker's sink.
pub(crate) fn scan_archive<'s, S: Sink>(
    worker: &mut Worker<'s, S>,
    name: &str,
    path: &Path,
    kind: Kind,
    options: &ScanOptions,
    helpers: Option<&Helpers<'_, 's, S>>,
) {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) => return worker.failed(name.to_string(), ProblemKind::Unreadable, format!("cannot read: {err}")),
    };
    let mut entries = Entries {
        worker,
        archive: name,
        options,
        helpers,
    };
    let outcome = walk_entries(file, kind, &mut |met| match met {
        Met::File { path, size, reader } => entries.entry(path, size, reader),
        Met::Unreadable { index, message } => entries.worker.failed(
            format!("{}!/#{index}", entries.archive),
            ProblemKind::Unreadable,
            format!("cannot read the entry: {message}"),
        ),
    });
    if let Err(Broken { message, opened }) = outcome {
        let worker = entries.worker;
        if opened {
            // What came before the break was read.
            worker.stats.files_damaged += 1;
            worker.report(crate::scan::Problem {
                file: name.to_string(),
                record: None,
                line: None,
                kind: ProblemKind::Damaged,
                message: format!("archive broken: {message}; the entries before it were read"),
            });
        } else {
            worker.failed(name.to_string(), ProblemKind::Unreadable, message);
        }
    }
}

struct Entries<'w, 'a, 'h, 's, S> {
    worker: &'w mut Worker<'s, S>,
    archive: &'a str,
    options: &'a ScanOptions,
    helpers: Option<&'a Helpers<'h, 's, S>>,
}

impl<'s, S: Sink> Entries<'_, '_, '_, 's, S> {
    /// One entry of `size` bytes as the archive gives it (before any gzip of its own).
    fn entry(&mut self, path: &str, size: u64, mut reader: impl Read) {
        let base = path.rsplit('/').next().unwrap_or(path);
        // Archives inside archives are not opened.
        if !is_event_file_name(base) || kind(base).is_some() {
            return;
        }
        let name = format!("{}!/{path}", self.archive);
        let stats = &mut self.worker.stats;
        stats.files_found += 1;
        let entry_path = Path::new(path);
        if is_digest_path(entry_path) {
            stats.digests_skipped += 1;
            return;
        }
        if is_other_service_path(entry_path) {
            stats.other_logs_skipped += 1;
            return;
        }
        if !file_time(entry_path).may_overlap(&self.options.window, self.options.delivery_lag) {
            stats.files_pruned += 1;
            return;
        }
        let whole = self.options.read_whole_bytes().min(STREAM_INFLATED_BYTES);
        if size > whole {
            crate::stream::scan_reader(self.worker, &name, reader, self.options, self.helpers, false);
            return;
        }
        let mut buffers = Buffers::lend();
        let mut turn = Turn::default();
        buffers.file.clear();
        // The header's size is not trusted: at most one byte past what is held whole is read,
        // and an entry that turns out larger is streamed, those bytes first.
        let read = (&mut reader)
            .take(whole.saturating_add(1))
            .read_to_end(&mut buffers.file);
        // Why the entry stopped early, when it did (what came before is read all the same).
        let broken = match read {
            Ok(got) if got as u64 > whole => {
                let held = std::io::Cursor::new(std::mem::take(&mut buffers.file));
                let (worker, options, helpers) = (&mut *self.worker, self.options, self.helpers);
                crate::stream::scan_reader(worker, &name, held.chain(reader), options, helpers, false);
                buffers.give_back();
                return;
            }
            Ok(_) => None,
            Err(err) if buffers.file.is_empty() => {
                let message = format!("cannot read the entry: {err}");
                self.worker.failed(name, ProblemKind::Unreadable, message);
                buffers.give_back();
                return;
            }
            Err(err) => Some(format!(
                "entry broken after {} bytes: {err}; what came before was read",
                buffers.file.len()
            )),
        };
        let damaged = self.worker.stats.files_damaged;
        let Buffers { file, inflated } = &mut buffers;
        scan_bytes(
            self.worker,
            &name,
            file,
            inflated,
            self.options,
            &mut turn,
            self.helpers,
        );
        if let Some(message) = broken {
            // The entry counts once as read in part, whether or not what came before ends
            // inside a record.
            if self.worker.stats.files_damaged == damaged {
                self.worker.stats.files_damaged += 1;
            }
            self.worker.report(crate::scan::Problem {
                file: name,
                record: None,
                line: None,
                kind: ProblemKind::Damaged,
                message,
            });
        }
        drop(turn);
        buffers.give_back();
    }
}
