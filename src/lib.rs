//! elastilite: a local Amazon ElastiCache. This crate is the binary's library:
//! settings, start-up, and the HTTP front door of the AWS query API.

mod admin;
mod http;
mod settings;

pub use settings::Settings;

use control_plane::ControlPlane;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// A built server: the API listener is bound and every node recorded in the
/// database is already serving again.
pub struct Application {
    listener: TcpListener,
    control_plane: ControlPlane,
    settings: Settings,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let config = settings.control_plane_config()?;
        settings.credential_map()?;
        let listener = TcpListener::bind(&settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let control_plane = ControlPlane::open(config).await?;
        Ok(Application {
            listener,
            control_plane,
            settings,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `shutdown` resolves, then stop every node.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let credentials = self.settings.credential_map()?;
        let app = http::router(http::AppState {
            control_plane: self.control_plane.clone(),
            default_region: self.settings.default_region.clone(),
            credentials: self
                .settings
                .require_signatures
                .then(|| std::sync::Arc::new(credentials)),
            configuration: std::sync::Arc::new(self.settings.configuration_json()),
        });
        tracing::info!(%addr, data_dir = %self.settings.data_dir().display(), "elastilite API listening");
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        self.control_plane.shutdown().await;
        tracing::info!("elastilite stopped");
        Ok(())
    }
}
