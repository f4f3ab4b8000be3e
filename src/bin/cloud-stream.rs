//! The `cloud-stream` command line.
//!
//! - `cloud-stream validate <application.yaml> [--profile P]...`: exit 0 when the configuration
//!   is valid, exit 2 with every problem listed otherwise.
//! - `cloud-stream plan <application.yaml> [--profile P]... [--format text|json|mermaid|dot]`:
//!   prints every binding's effective properties, delivery plan and provisioned resources,
//!   connecting to nothing; `mermaid` and `dot` draw the event flow instead (functions,
//!   destinations by binder, groups, DLQs).
//!
//! Exit codes: 0 success (and `--help`, `--version`); 2 the configuration is invalid, a
//! missing or unreadable file included; 64 (`EX_USAGE`) the command line is wrong (unknown
//! flag or subcommand, missing file argument), so scripts can tell a bad invocation from a
//! bad configuration.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use cloud_stream::config::{ConfigLoader, LoadedConfig};
use cloud_stream::plan::{build_plan, configured_bindings, Plan};

/// Validate and explain cloud-stream configuration.
#[derive(Debug, Parser)]
#[command(name = "cloud-stream", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check an application.yaml (with profiles and environment overrides); exit 2 on errors.
    Validate {
        /// The application.yaml.
        file: PathBuf,
        /// Active profile (repeatable).
        #[arg(long = "profile", short = 'p')]
        profiles: Vec<String>,
    },
    /// Print the effective bindings, delivery plan and resources, without connecting.
    Plan {
        /// The application.yaml.
        file: PathBuf,
        /// Active profile (repeatable).
        #[arg(long = "profile", short = 'p')]
        profiles: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
    /// The event flow as a Mermaid flowchart.
    Mermaid,
    /// The event flow as a Graphviz digraph.
    Dot,
}

/// Exit code for invalid configuration.
const INVALID: u8 = 2;
/// Exit code for a wrong command line (`EX_USAGE` of sysexits.h); clap's own is 2, the same
/// as an invalid configuration.
const USAGE: u8 = 64;

fn load(file: PathBuf, profiles: Vec<String>) -> Result<(LoadedConfig, Plan), Vec<String>> {
    let registry = cloud_stream::binder_registry();
    let loaded = ConfigLoader::new()
        .binders_of(&registry)
        .file(file)
        .profiles(profiles)
        .require_registered_binders(false)
        .load()
        .map_err(|e| e.issues.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let bindings = configured_bindings(&loaded.config);
    let plan = build_plan(&loaded.config, &registry, &bindings).map_err(|e| vec![e.to_string()])?;
    Ok((loaded, plan))
}

/// Writes to stdout; a closed pipe (`plan | head`) is not an error.
fn emit(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report_errors(errors: &[String]) -> ExitCode {
    eprintln!(
        "invalid configuration ({} problem{}):",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        eprintln!("  - {e}");
    }
    ExitCode::from(INVALID)
}

/// Prints clap's help, version or usage error; `--help` and `--version` succeed.
fn usage(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    // Nothing more can be said if stdout/stderr is gone.
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(USAGE),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    match cli.command {
        Command::Validate { file, profiles } => match load(file, profiles) {
            Ok((loaded, plan)) => {
                for w in &loaded.warnings {
                    eprintln!("warning: {w}");
                }
                emit(&format!(
                    "valid: {} binding(s), {} binder(s){}\n",
                    plan.bindings.len(),
                    plan.binders.len(),
                    if loaded.config.active_profiles.is_empty() {
                        String::new()
                    } else {
                        format!(", profiles {}", loaded.config.active_profiles.join(","))
                    }
                ))
            }
            Err(errors) => report_errors(&errors),
        },
        Command::Plan {
            file,
            profiles,
            format,
        } => match load(file, profiles) {
            Ok((loaded, plan)) => {
                for w in &loaded.warnings {
                    eprintln!("warning: {w}");
                }
                match format {
                    Format::Text => emit(&plan.to_string()),
                    Format::Mermaid => emit(&plan.mermaid()),
                    Format::Dot => emit(&plan.dot()),
                    Format::Json => match serde_json::to_string_pretty(&plan) {
                        Ok(s) => emit(&format!("{s}\n")),
                        Err(e) => {
                            eprintln!("cannot render the plan as JSON: {e}");
                            ExitCode::FAILURE
                        }
                    },
                }
            }
            Err(errors) => report_errors(&errors),
        },
    }
}
