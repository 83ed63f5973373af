use clap::Parser;
use elastilite::{Application, Settings};
use tracing_subscriber::EnvFilter;

// Counts bytes per thread, and every Redis node owns one thread: this is how a
// node knows its `used_memory` for INFO, maxmemory and eviction without walking
// its keyspace.
#[global_allocator]
static ALLOC: redis_engine::CountingAlloc = redis_engine::CountingAlloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ELASTILITE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let settings = Settings::parse();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::exit(1);
        }
    };
    if let Err(e) = app.run_until(shutdown_signal()).await {
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
