//! The `trailhound` command line: raw arguments (clap types stop in `args`), the resolved
//! settings each command runs with, and the commands, which call the engine
//! (trailhound-hunt) and write through trailhound-output. The Lambda does not use this crate:
//! it calls the engine itself.

pub mod args;
pub mod commands;
pub mod process;
pub mod progress;
pub mod pushdown;
pub mod settings;
pub mod write;
