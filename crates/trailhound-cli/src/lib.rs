//! The command layer of `trailhound`: raw arguments (clap types stop in `args`), the resolved
//! settings commands run with, and the commands themselves. The `trailhound` binary parses
//! arguments into it; the Lambda builds settings directly and calls the same commands, so a
//! hunt in Lambda is the hunt of the CLI.

pub mod args;
pub mod commands;
pub mod settings;
