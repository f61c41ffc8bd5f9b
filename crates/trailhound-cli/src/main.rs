//! The `trailhound` binary: parse arguments, resolve settings, run a command, exit with its code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use trailhound_cli::args::FindingFormat;
use trailhound_cli::args::{Cli, Command, HuntArgs};
use trailhound_cli::commands::events::EventsSettings;
use trailhound_cli::commands::findings::FindingsSettings;
use trailhound_cli::commands::rules::RulesSettings;
use trailhound_cli::commands::summary::SummarySettings;
use trailhound_cli::commands::timeline::TimelineSettings;
use trailhound_cli::commands::{self, Outcome};
use trailhound_cli::process::Process;
use trailhound_cli::settings::{HuntSettings, color_allowed};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    // One runtime and one AWS connection for the whole process, made when first needed.
    let process = Process::default();
    let outcome = match &cli.command {
        Command::Hunt(args) => {
            HuntSettings::resolve(args, cli.quiet, chrono::Utc::now()).and_then(|s| commands::hunt::run(&process, &s))
        }
        Command::Rules(trailhound_cli::args::RulesCommand::Sql(args)) => commands::sql::run(args),
        Command::Athena(command) => commands::athena::run(&process, command),
        Command::Context(command) => commands::context::run(command),
        Command::Rules(command) => RulesSettings::resolve(command).and_then(|s| commands::rules::run(&s)),
        Command::Findings(command) => {
            FindingsSettings::resolve(command, chrono::Utc::now()).and_then(|s| commands::findings::run(&s))
        }
        Command::Report(args) => {
            let mut args = HuntArgs::clone(args);
            args.format = Some(FindingFormat::Html);
            args.output.get_or_insert_with(|| "report.html".into());
            HuntSettings::resolve(&args, cli.quiet, chrono::Utc::now()).and_then(|s| commands::hunt::run(&process, &s))
        }
        Command::Events(args) => EventsSettings::resolve(args, cli.quiet, chrono::Utc::now())
            .and_then(|s| commands::events::run(&process, &s)),
        Command::Timeline(args) => TimelineSettings::resolve(args, cli.quiet, chrono::Utc::now())
            .and_then(|s| commands::timeline::run(&process, &s)),
        Command::Summary(args) => SummarySettings::resolve(args, cli.quiet, chrono::Utc::now())
            .and_then(|s| commands::summary::run(&process, &s)),
        Command::Inventory(command) => commands::inventory::run(&process, command, cli.quiet),
        Command::Verify(args) => commands::verify::run(&process, args),
    };
    match outcome {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Ok(Outcome::Error) => ExitCode::from(2),
        Err(err) => {
            tracing::error!("{}", trailhound_event::printable(&format!("{err:#}")));
            ExitCode::from(2)
        }
    }
}

/// Diagnostics go to stderr through tracing; warnings by default.
fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAILHOUND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && color_allowed())
        .without_time()
        .with_target(false)
        .init();
}
