//! The `troupe` command line: one module per subcommand.

mod check;
mod env;
mod error;
mod host;
mod listen;
mod logging;
mod nodes;
mod progress;
mod remote;
mod run;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "troupe",
    version,
    about = "troupe: supervised actors, local and bridged",
    long_about = "troupe: supervised actors, local and bridged.\n\n\
                  Runs media pipelines declared in a TOML manifest, checks manifests, lists \
                  the built-in node types, manages the venv cache of Python extensions, and \
                  runs the benchmark harness."
)]
struct Cli {
    /// Say more: `-v` adds troupe's own events, `-vv` its debug events. Extensions' output
    /// (print, logging, tracebacks) is shown unless `--quiet`.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Say only errors (extensions' output included).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline of a manifest and print its summary.
    Run(run::RunArgs),
    /// Serve a pipeline to WebSocket clients: each connection streams audio in and gets
    /// the outputs back as they are produced.
    Listen(listen::ListenArgs),
    /// Serve a manifest's extensions to other hosts over Zenoh (`[hosts.NAME]` in their
    /// manifests), until Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
    /// Ask a serving host (a manifest's `[hosts.NAME]`) how its extensions are, or to stop
    /// or start one of them again.
    Host(host::HostArgs),
    /// Print what this machine gives extension sandboxes (Landlock, seccomp, bubblewrap,
    /// cgroups), and check a manifest (keys, node types and parameters, edges, cycles,
    /// extensions) without running anything.
    Check(check::CheckArgs),
    /// List the built-in node types and their parameters.
    Nodes(nodes::NodesArgs),
    /// Manage the venv cache of Python extensions.
    #[command(subcommand)]
    Env(env::EnvCommand),
    /// Run the benchmark harness: troupe (local, bridged, pipelines) beside the physical
    /// floors and its peers, in one run.
    Bench(troupe_bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Listen(args) => listen::listen(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Host(args) => host::host(&args),
        Command::Check(args) => check::check(&args),
        Command::Nodes(args) => nodes::nodes(&args),
        Command::Env(command) => env::env(&command),
        Command::Bench(args) => troupe_bench::run(&args)
            .map(drop)
            .map_err(error::CliError::Bench),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
