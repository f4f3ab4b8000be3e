//! The `cloud-stream` command line.
//!
//! - `cloud-stream validate <application.yaml> [--profile P]...`: exit 0 when the configuration
//!   is valid, exit 2 with every problem listed otherwise.
//! - `cloud-stream plan <application.yaml> [--profile P]... [--format text|json|mermaid|dot]`:
//!   prints every binding's effective properties, delivery plan and provisioned resources,
//!   connecting to nothing; `mermaid` and `dot` draw the event flow instead (functions,
//!   destinations by binder, groups, DLQs).
//! - `cloud-stream asyncapi <application.yaml> [--profile P]... [--format yaml|json]`: an
//!   AsyncAPI 3.0 document of the same bindings: a server per binder (no credentials), a channel
//!   per destination and DLQ, an operation per binding.
//! - `cloud-stream dlq list <application.yaml> [--profile P]... [--binding B] [--format
//!   text|json]`: every input binding's dead-letter queue and how many messages it holds (and
//!   how many wait for the binding itself), asked of the brokers with the application's own
//!   binder configuration; `dlq peek ... [--count N]` shows up to N dead letters per binding
//!   (headers and payload) and leaves them in place; `dlq replay ... [--count N] [--to D]`
//!   republishes them (dead-letter headers removed) to the binding's destination or `D`,
//!   removing each from the DLQ only once the broker confirmed it; `dlq purge ... --yes
//!   [--count N]` deletes them.
//!
//! Exit codes: 0 success (and `--help`, `--version`); 1 a broker could not be asked (`dlq`);
//! 2 the configuration is invalid, a missing or unreadable file included; 64 (`EX_USAGE`) the
//! command line is wrong (unknown flag or subcommand, missing file argument, a `--binding`
//! the configuration does not have), so scripts can tell a bad invocation from a bad
//! configuration.
#![forbid(unsafe_code)]

mod dlq;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use cloud_stream::config::{ConfigLoader, LoadedConfig};
use cloud_stream::plan::{build_plan, configured_bindings, AsyncApiInfo, Plan};

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
    /// Write an AsyncAPI 3.0 document of the bindings (servers, channels, operations).
    Asyncapi {
        /// The application.yaml.
        file: PathBuf,
        /// Active profile (repeatable).
        #[arg(long = "profile", short = 'p')]
        profiles: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = DocFormat::Yaml)]
        format: DocFormat,
    },
    /// Dead-letter queues of the input bindings, on the brokers the configuration names.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

/// What every `dlq` command works on.
#[derive(Debug, clap::Args)]
struct DlqTarget {
    /// The application.yaml.
    file: PathBuf,
    /// Active profile (repeatable).
    #[arg(long = "profile", short = 'p')]
    profiles: Vec<String>,
    /// Only this input binding.
    #[arg(long)]
    binding: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Text)]
    format: TableFormat,
}

/// What `dlq` does.
#[derive(Debug, Subcommand)]
enum DlqAction {
    /// Each input binding's dead-letter queue and its depth, from the brokers.
    List {
        #[command(flatten)]
        target: DlqTarget,
    },
    /// Up to --count dead letters of each input binding, with their error headers, left in
    /// place.
    Peek {
        #[command(flatten)]
        target: DlqTarget,
        /// How many messages per binding.
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
    /// Republishes dead letters (error headers removed) to the binding's destination (or
    /// --to); each leaves the DLQ only once the broker confirmed its republish.
    Replay {
        #[command(flatten)]
        target: DlqTarget,
        /// At most this many per binding (default: all).
        #[arg(long)]
        count: Option<u64>,
        /// Republish to this destination instead of the binding's.
        #[arg(long)]
        to: Option<String>,
    },
    /// Deletes dead letters (asks for --yes).
    Purge {
        #[command(flatten)]
        target: DlqTarget,
        /// At most this many per binding (default: all).
        #[arg(long)]
        count: Option<u64>,
        /// Yes, delete them.
        #[arg(long)]
        yes: bool,
    },
}

/// Output format of `dlq list`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum TableFormat {
    Text,
    Json,
}

/// Output format of `asyncapi`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DocFormat {
    Yaml,
    Json,
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

/// The AsyncAPI document of `plan`: titled `spring.application.name` (else the file's
/// stem), versioned `info.app.version` (else `0.0.0`); no payload schemas (the handlers' types
/// are not in the file).
fn asyncapi(file: &Path, loaded: &LoadedConfig, plan: &Plan) -> serde_json::Value {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned());
    let info =
        AsyncApiInfo::from_properties(&loaded.root, stem.as_deref().unwrap_or("application"));
    let registry = cloud_stream::binder_registry();
    let servers = plan.servers(&loaded.config, &loaded.root, &registry);
    plan.asyncapi(&info, &servers, &Default::default())
}

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

/// What `dlq` is asked, once the configuration is loaded.
enum DlqWork {
    List,
    Peek(usize),
    /// Replay (`to`: elsewhere) or purge, at most `count` per binding.
    Drain {
        count: Option<u64>,
        to: Option<String>,
        purge: bool,
    },
}

/// `dlq list|peek|replay|purge`: loads the configuration, checks `--binding`, connects the configured
/// binders and prints what they report.
fn dlq(target: DlqTarget, work: DlqWork) -> ExitCode {
    let DlqTarget {
        file,
        profiles,
        binding,
        format,
    } = target;
    let (loaded, plan) = match load(file, profiles) {
        Ok(lp) => lp,
        Err(errors) => return report_errors(&errors),
    };
    let inputs: Vec<&str> = plan
        .bindings
        .iter()
        .filter(|p| p.direction == "input")
        .map(|p| p.name.as_str())
        .collect();
    if let Some(b) = binding.as_deref().filter(|b| !inputs.contains(b)) {
        eprintln!(
            "no input binding named `{b}` (input bindings: {})",
            inputs.join(", ")
        );
        return ExitCode::from(USAGE);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let only = binding.as_deref();
    let rendered = runtime.block_on(async {
        match work {
            DlqWork::List => dlq::list(&loaded, &plan, only)
                .await
                .and_then(|rows| render(format, &rows, || dlq::table(&rows))),
            DlqWork::Peek(count) => dlq::peek(&loaded, &plan, only, count)
                .await
                .and_then(|all| render(format, &all, || dlq::peeked_text(&all))),
            DlqWork::Drain { count, to, purge } => {
                dlq::drain(&loaded, &plan, only, count, to.as_deref(), purge)
                    .await
                    .and_then(|all| render(format, &all, || dlq::drained_text(&all)))
            }
        }
    });
    match rendered {
        Ok(text) => emit(&text),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// `value` as pretty JSON, or `text()`.
fn render<T: serde::Serialize>(
    format: TableFormat,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<String, String> {
    match format {
        TableFormat::Text => Ok(text()),
        TableFormat::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| format!("cannot render as JSON: {e}")),
    }
}

/// Loads `file` with `profiles`, prints its warnings and runs `then` on it; a configuration
/// that does not load is reported instead.
fn with_config(
    file: PathBuf,
    profiles: Vec<String>,
    then: impl FnOnce(&LoadedConfig, &Plan) -> ExitCode,
) -> ExitCode {
    match load(file, profiles) {
        Ok((loaded, plan)) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            then(&loaded, &plan)
        }
        Err(errors) => report_errors(&errors),
    }
}

/// Emits `text`, or says that `what` could not be rendered.
fn rendered<E: std::fmt::Display>(text: Result<String, E>, what: &str) -> ExitCode {
    match text {
        Ok(t) => emit(&t),
        Err(e) => {
            eprintln!("cannot render {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    match cli.command {
        Command::Validate { file, profiles } => with_config(file, profiles, |loaded, plan| {
            let profiles = &loaded.config.active_profiles;
            emit(&format!(
                "valid: {} binding(s), {} binder(s){}\n",
                plan.bindings.len(),
                plan.binders.len(),
                match profiles.is_empty() {
                    true => String::new(),
                    false => format!(", profiles {}", profiles.join(",")),
                }
            ))
        }),
        Command::Plan {
            file,
            profiles,
            format,
        } => with_config(file, profiles, |_, plan| match format {
            Format::Text => emit(&plan.to_string()),
            Format::Mermaid => emit(&plan.mermaid()),
            Format::Dot => emit(&plan.dot()),
            Format::Json => rendered(
                serde_json::to_string_pretty(plan).map(|s| s + "\n"),
                "the plan as JSON",
            ),
        }),
        Command::Asyncapi {
            file,
            profiles,
            format,
        } => with_config(file.clone(), profiles, |loaded, plan| {
            let doc = asyncapi(&file, loaded, plan);
            let text = match format {
                DocFormat::Yaml => serde_saphyr::to_string(&doc).map_err(|e| e.to_string()),
                DocFormat::Json => serde_json::to_string_pretty(&doc)
                    .map(|s| s + "\n")
                    .map_err(|e| e.to_string()),
            };
            rendered(text, "the AsyncAPI document")
        }),
        Command::Dlq { action } => match action {
            DlqAction::List { target } => dlq(target, DlqWork::List),
            DlqAction::Peek { target, count } => dlq(target, DlqWork::Peek(count)),
            DlqAction::Replay { target, count, to } => {
                let purge = false;
                dlq(target, DlqWork::Drain { count, to, purge })
            }
            DlqAction::Purge { yes: false, .. } => {
                eprintln!("dlq purge deletes dead letters for good: run it again with --yes (`dlq peek` shows them first)");
                ExitCode::from(USAGE)
            }
            DlqAction::Purge { target, count, .. } => {
                let (to, purge) = (None, true);
                dlq(target, DlqWork::Drain { count, to, purge })
            }
        },
    }
}
