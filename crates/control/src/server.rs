//! Starting the control plane: the store, the REST API and the push server, in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::push::PushServer;
use crate::rest::{RestState, router};
use crate::store::{Store, StoreError};

/// How the control plane is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneOptions {
    /// Where resources are persisted.
    pub state_dir: PathBuf,
    /// REST API address (the CLI's `--server`).
    pub rest_addr: SocketAddr,
    /// gRPC push address (the proxies' `--control-plane`).
    pub grpc_addr: SocketAddr,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        ControlPlaneOptions {
            state_dir: PathBuf::from(".strait/state"),
            rest_addr: SocketAddr::from(([127, 0, 0, 1], strait_mesh::ports::CONTROL_REST)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], strait_mesh::ports::CONTROL_GRPC)),
        }
    }
}

/// Why the control plane could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The state directory cannot be used.
    #[error("cannot open the state directory: {0}")]
    Store(#[from] StoreError),
    /// A listen address cannot be bound.
    #[error(
        "cannot listen on {addr} for the {what}: {source}; is another control plane running? \
         pick another address with {flag}"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `REST API` or `gRPC push server`.
        what: &'static str,
        /// The CLI flag that changes it.
        flag: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A server task failed.
    #[error("the {what} failed: {message}")]
    Serve {
        /// Which server.
        what: &'static str,
        /// Why.
        message: String,
    },
}

/// A running control plane. Dropping it stops the servers (abruptly); prefer
/// [`ControlPlane::shutdown`].
#[derive(Debug)]
pub struct ControlPlane {
    /// The bound REST address (useful with port 0).
    pub rest_addr: SocketAddr,
    /// The bound gRPC address.
    pub grpc_addr: SocketAddr,
    /// The store, for in-process callers and tests.
    pub store: Arc<Store>,
    /// The push server, for in-process callers and tests.
    pub push: Arc<PushServer>,
    stop: watch::Sender<bool>,
    rest: Option<JoinHandle<Result<(), ServerError>>>,
    grpc: Option<JoinHandle<Result<(), ServerError>>>,
    watcher: Option<JoinHandle<()>>,
}

/// Opens the store, binds both ports and serves in background tasks. Bind port 0 to get free
/// ports (see [`ControlPlane::rest_addr`]).
pub async fn start(opts: &ControlPlaneOptions) -> Result<ControlPlane, ServerError> {
    let dir = opts.state_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&dir))
        .await
        .map_err(|e| ServerError::Serve {
            what: "store loader",
            message: e.to_string(),
        })??;
    start_with_store(Arc::new(store), opts.rest_addr, opts.grpc_addr).await
}

/// Like [`start`] with a store the caller built (e.g. [`Store::in_memory`]).
pub async fn start_with_store(
    store: Arc<Store>,
    rest_addr: SocketAddr,
    grpc_addr: SocketAddr,
) -> Result<ControlPlane, ServerError> {
    let rest_listener = TcpListener::bind(rest_addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: rest_addr,
            what: "REST API",
            flag: "--rest",
            source,
        })?;
    let grpc_listener = TcpListener::bind(grpc_addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: grpc_addr,
            what: "gRPC push server",
            flag: "--grpc",
            source,
        })?;
    let bound = |l: &TcpListener, addr, what, flag| {
        l.local_addr().map_err(|source| ServerError::Bind {
            addr,
            what,
            flag,
            source,
        })
    };
    let rest_addr = bound(&rest_listener, rest_addr, "REST API", "--rest")?;
    let grpc_addr = bound(&grpc_listener, grpc_addr, "gRPC push server", "--grpc")?;

    let push = PushServer::new(store.clone());
    let watcher = push.spawn_watcher();
    let (stop, _) = watch::channel(false);

    let app = router(RestState {
        store: store.clone(),
        push: push.clone(),
    });
    let mut rest_stop = stop.subscribe();
    let rest = tokio::spawn(async move {
        axum::serve(rest_listener, app)
            .with_graceful_shutdown(async move {
                let _ = rest_stop.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| ServerError::Serve {
                what: "REST API",
                message: e.to_string(),
            })
    });

    let service = push.service();
    let mut grpc_stop = stop.subscribe();
    let grpc = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc_listener), async move {
                let _ = grpc_stop.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| ServerError::Serve {
                what: "gRPC push server",
                message: e.to_string(),
            })
    });
    tracing::info!(%rest_addr, %grpc_addr, "control plane listening");
    Ok(ControlPlane {
        rest_addr,
        grpc_addr,
        store,
        push,
        stop,
        rest: Some(rest),
        grpc: Some(grpc),
        watcher: Some(watcher),
    })
}

impl ControlPlane {
    /// Ends the proxies' streams, stops accepting, and waits (a few seconds at most) for the
    /// servers to finish.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        self.push.shutdown();
        self.stop.send_replace(true);
        let mut result = Ok(());
        for task in [self.rest.take(), self.grpc.take()].into_iter().flatten() {
            let abort = task.abort_handle();
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Err(e))) => result = Err(e),
                Ok(_) => {}
                Err(_) => abort.abort(),
            }
        }
        if let Some(w) = self.watcher.take() {
            let _ = w.await;
        }
        result
    }

    /// Serves until one of the servers stops (which only happens on an error or a shutdown).
    pub async fn wait(&mut self) -> Result<(), ServerError> {
        let (Some(rest), Some(grpc)) = (self.rest.as_mut(), self.grpc.as_mut()) else {
            return Ok(());
        };
        let (what, result) = tokio::select! {
            r = rest => ("REST API", r),
            r = grpc => ("gRPC push server", r),
        };
        // A finished JoinHandle must not be polled again by `shutdown`.
        if what == "REST API" {
            self.rest = None;
        } else {
            self.grpc = None;
        }
        match result {
            Ok(r) => r,
            Err(e) => Err(ServerError::Serve {
                what,
                message: e.to_string(),
            }),
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.push.shutdown();
        self.stop.send_replace(true);
        for task in [self.rest.take(), self.grpc.take()].into_iter().flatten() {
            task.abort();
        }
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

/// Runs the control plane until Ctrl-C (or SIGTERM), then shuts down gracefully.
pub async fn run(opts: ControlPlaneOptions) -> anyhow::Result<()> {
    let cp = start(&opts).await?;
    eprintln!(
        "control plane: REST API on http://{}, config push (gRPC) on {}, state in {}",
        cp.rest_addr,
        cp.grpc_addr,
        opts.state_dir.display()
    );
    let signal = async {
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    };
    let mut cp = cp;
    let outcome: anyhow::Result<()> = tokio::select! {
        r = signal => r.map_err(anyhow::Error::from),
        r = cp.wait() => r.map_err(anyhow::Error::from),
    };
    let stopped = cp.shutdown().await;
    outcome?;
    stopped?;
    Ok(())
}
