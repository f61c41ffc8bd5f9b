//! An archive of logs handed over (zip, tar, tar.gz) through the source crate's archive reader:
//! entries listed, named, held whole or streamed, each with a file's limits; broken archives
//! keep what came before. The same bytes are tried as each kind.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trailhound_fuzz::scan_as_archive;

fuzz_target!(|data: &[u8]| {
    scan_as_archive(data);
});
