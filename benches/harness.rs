//! `cargo bench` entry point of the harness (the same as `troupe bench`).

use clap::Parser;
use troupe_bench::BenchArgs;

#[derive(Parser)]
#[command(name = "harness", about = "troupe's benchmark harness")]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    troupe_bench::child_main_if_requested();
    let cli = Cli::parse();
    if let Err(err) = troupe_bench::run(&cli.args) {
        eprintln!("error: {err}");
        std::process::exit(2);
    }
}
