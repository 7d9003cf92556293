use clap::Parser;

/// mimalloc returns freed memory to the system promptly; with glibc's malloc, large per-photo
/// buffers freed on the blocking threads stayed in per-thread arenas (peak RSS after 20 photo
/// jobs: 443 MB with glibc, see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = foodcheck::cli::Cli::parse();
    match foodcheck::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
