//! The TLS front: accepts on a node's public endpoint, terminates TLS, and forwards the decrypted
//! stream to the engine listening on a private address.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::copy_bidirectional_with_sizes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

/// How long a client has to complete the TLS handshake (and the backend to accept).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Buffer size of each direction of the copy loop.
pub const COPY_BUFFER: usize = 64 * 1024;
/// First byte of a TLS record carrying a handshake message (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// ElastiCache `TransitEncryptionMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only TLS connections; a plaintext client fails the handshake and is closed.
    Required,
    /// TLS and plaintext connections are both served (told apart by their first byte).
    Preferred,
}

impl Mode {
    /// The AWS API value: `required` or `preferred`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Required => "required",
            Mode::Preferred => "preferred",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    /// Parses the AWS API value (`required` / `preferred`, any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("required") {
            Ok(Mode::Required)
        } else if s.eq_ignore_ascii_case("preferred") {
            Ok(Mode::Preferred)
        } else {
            Err(format!("invalid TransitEncryptionMode {s:?}"))
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Control {
    mode: Mode,
    stopped: bool,
}

struct Shared {
    control: watch::Sender<Control>,
    backend: Mutex<SocketAddr>,
    config: RwLock<Arc<ServerConfig>>,
    /// Open client connections.
    connections: AtomicUsize,
    /// Running tasks (accept loop and connections); `closed` waits for zero.
    tasks: AtomicUsize,
    tasks_done: Notify,
    /// Which client addresses may connect (security groups); None admits all.
    filter: RwLock<Option<SourceCheck>>,
}

/// Decides whether a client address may connect.
pub type SourceCheck = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

impl Shared {
    fn admits(&self, peer: SocketAddr) -> bool {
        match self.filter.read() {
            Ok(f) => f.as_ref().is_none_or(|f| f(peer)),
            Err(_) => false,
        }
    }

    fn backend(&self) -> SocketAddr {
        *self.backend.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.config
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    fn mode(&self) -> Mode {
        self.control.borrow().mode
    }

    fn task(self: &Arc<Self>) -> TaskGuard {
        self.tasks.fetch_add(1, Ordering::SeqCst);
        TaskGuard(self.clone())
    }
}

struct TaskGuard(Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.tasks_done.notify_waiters();
        }
    }
}

struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running TLS front. Dropping it stops it (as [`TlsFront::stop`]).
pub struct TlsFront {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for TlsFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFront")
            .field("local_addr", &self.local_addr)
            .field("backend", &self.shared.backend())
            .field("mode", &self.shared.mode())
            .finish_non_exhaustive()
    }
}

impl TlsFront {
    /// Accepts on `listener` (already bound; must be called inside a tokio runtime). For each
    /// connection: in [`Mode::Required`] a TLS handshake (a plaintext client fails it and is
    /// closed, as on AWS); in [`Mode::Preferred`] the first byte decides: 0x16 (a TLS
    /// ClientHello) means TLS, anything else is forwarded as plaintext. Then it connects to
    /// `backend` and copies both ways until the connection ends.
    ///
    /// A failed or slow handshake (10 s), garbage or a backend that cannot be reached closes that
    /// connection alone; the front keeps accepting.
    pub fn spawn(
        listener: std::net::TcpListener,
        backend: SocketAddr,
        config: Arc<ServerConfig>,
        mode: Mode,
    ) -> io::Result<TlsFront> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("TlsFront::spawn needs a tokio runtime: {e}")))?;
        let local_addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _enter = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (control, _) = watch::channel(Control {
            mode,
            stopped: false,
        });
        let shared = Arc::new(Shared {
            control,
            backend: Mutex::new(backend),
            config: RwLock::new(config),
            connections: AtomicUsize::new(0),
            tasks: AtomicUsize::new(0),
            tasks_done: Notify::new(),
            filter: RwLock::new(None),
        });
        let guard = shared.task();
        runtime.spawn(accept_loop(listener, shared.clone(), guard));
        tracing::debug!(%local_addr, %backend, %mode, "TLS front started");
        Ok(TlsFront { shared, local_addr })
    }

    /// The address the front accepts on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Security groups: connections `check` refuses are closed at once (None admits all).
    pub fn set_filter(&self, check: Option<SourceCheck>) {
        if let Ok(mut f) = self.shared.filter.write() {
            *f = check;
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.shared.mode()
    }

    /// Changes the mode live (ModifyReplicationGroup). New connections follow the new mode at
    /// once; switching to [`Mode::Required`] also closes the open plaintext connections, so no
    /// plaintext client stays in that the configuration now keeps out. Open TLS connections stay.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.control.send_if_modified(|c| {
            let changed = c.mode != mode;
            c.mode = mode;
            changed
        });
    }

    /// Changes the engine address new connections are forwarded to; open ones keep theirs.
    pub fn set_backend(&self, backend: SocketAddr) {
        *self
            .shared
            .backend
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = backend;
    }

    /// Replaces the server configuration (certificate) for new connections.
    pub fn set_config(&self, config: Arc<ServerConfig>) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Number of client connections open through the front.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes every forwarded connection. Returns at once; the listening
    /// socket and the connections are closed by their tasks right after (await
    /// [`TlsFront::closed`] to wait for that, e.g. before binding the same address again).
    pub fn stop(&self) {
        self.shared.control.send_if_modified(|c| {
            let changed = !c.stopped;
            c.stopped = true;
            changed
        });
    }

    /// Waits until the front has stopped: listener closed and every connection closed.
    pub async fn closed(&self) {
        loop {
            let notified = self.shared.tasks_done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.tasks.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, _task: TaskGuard) {
    let mut control = shared.control.subscribe();
    loop {
        tokio::select! {
            biased;
            _ = until(&mut control, |c| c.stopped) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) if !shared.admits(peer) => {
                    tracing::info!(%peer, "connection refused: no security group rule admits it");
                    drop(stream);
                }
                Ok((stream, peer)) => {
                    let task = shared.task();
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let conn = ConnectionGuard(shared.clone());
                    tokio::spawn(connection(stream, peer, shared.clone(), task, conn));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off a little, keep accepting.
                    tracing::warn!(error = %e, "TLS front: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    tracing::debug!(local_addr = ?listener.local_addr().ok(), "TLS front stopped");
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    _task: TaskGuard,
    _conn: ConnectionGuard,
) {
    let mut control = shared.control.subscribe();
    let result = tokio::select! {
        _ = until(&mut control, |c| c.stopped) => Ok(()),
        r = serve(stream, peer, &shared) => r,
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "TLS front: connection closed");
    }
}

/// Resolves once `f` holds for the control state (or the front is gone).
async fn until(control: &mut watch::Receiver<Control>, f: impl FnMut(&Control) -> bool) {
    let _ = control.wait_for(f).await.map(|_| ());
}

async fn connect_backend(shared: &Shared) -> io::Result<TcpStream> {
    let backend = shared.backend();
    let stream = timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(backend))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "backend connect timed out"))?
        .map_err(|e| io::Error::new(e.kind(), format!("backend {backend}: {e}")))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn serve(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let tls = match shared.mode() {
        Mode::Required => true,
        Mode::Preferred => {
            // No timeout here: a plaintext client may open a connection and send its first
            // command much later (connection pools do), as it could against the engine itself.
            let mut first = [0u8; 1];
            if stream.peek(&mut first).await? == 0 {
                return Ok(());
            }
            if first[0] == TLS_HANDSHAKE_RECORD {
                true
            } else if shared.mode() == Mode::Required {
                // Switched to required while this client was idle.
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "plaintext client, transit encryption is required",
                ));
            } else {
                false
            }
        }
    };
    if tls {
        let mut tls_stream = timeout(HANDSHAKE_TIMEOUT, shared.acceptor().accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake failed: {e}")))?;
        let mut backend = connect_backend(shared).await?;
        copy_bidirectional_with_sizes(&mut tls_stream, &mut backend, COPY_BUFFER, COPY_BUFFER)
            .await?;
    } else {
        let mut backend = connect_backend(shared).await?;
        let mut control = shared.control.subscribe();
        tokio::select! {
            r = copy_bidirectional_with_sizes(&mut stream, &mut backend, COPY_BUFFER, COPY_BUFFER) => { r?; }
            _ = until(&mut control, |c| c.mode == Mode::Required) => {
                tracing::debug!(%peer, "TLS front: closing plaintext connection, transit encryption is now required");
            }
        }
    }
    Ok(())
}
