//! Developer commands, `cargo xtask <command>`:
//! - `dev [--once]`: the whole service on this machine (`make dev`);
//! - `export-bench [EVENTS] [ROUNDS]`: the export benchmark of BENCHMARKS.md (`make bench`;
//!   build with `--release`);
//! - `ingest-bench [SECONDS] [CONCURRENCY]`: the ingest load run and memory of BENCHMARKS.md §3
//!   (`make bench-ingest`).

mod archive_sink;
mod dev;
mod export_bench;
mod ingest_bench;
mod status_off;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((command, rest)) if command == "dev" => dev::run(rest),
        Some((command, rest)) if command == "export-bench" => export_bench::run(rest),
        Some((command, rest)) if command == "ingest-bench" => ingest_bench::run(rest),
        _ => Err(
            "usage: cargo xtask dev [--once] | cargo xtask export-bench [EVENTS] [ROUNDS] | cargo xtask ingest-bench [SECONDS] [CONCURRENCY]"
                .into(),
        ),
    }
}
