//! `genlab serve RUN|FOLDER...`: the studio, a local web app to explore, compare and use trained
//! models. The page and its script are compiled into the binary; the JSON + PNG API behind them
//! is documented in README ("The studio"). Listens on 127.0.0.1 unless told otherwise; serves
//! only the runs named at start, by id (no endpoint takes a path); every size a request gives is
//! bounded, and a bad request gets a 4xx with a one-line message.

mod api;
mod latent;
mod studio;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use studio::Studio;

#[derive(clap::Args)]
pub struct Args {
    /// Run folders, or folders whose sub-folders are runs (image and super-resolution runs).
    runs: Vec<PathBuf>,
    /// Address to listen on. Anything but a loopback address lets others on the network use
    /// the studio (and your CPU).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (0: any free port; the address is printed).
    #[arg(long, default_value_t = 7860)]
    port: u16,
    /// Model computations run at once (default: the number of cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
    /// Folder searched first for the runs' datasets.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where the models run.
    #[arg(long, value_enum, default_value = "cpu")]
    device: crate::common::DeviceArg,
}

/// An API error: a status and a one-line message, answered as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub msg: String,
}

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> Self {
        Self::with(StatusCode::BAD_REQUEST, msg)
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::with(StatusCode::NOT_FOUND, msg)
    }
    pub fn too_large(msg: impl Into<String>) -> Self {
        Self::with(StatusCode::PAYLOAD_TOO_LARGE, msg)
    }
    pub fn busy() -> Self {
        Self::with(
            StatusCode::SERVICE_UNAVAILABLE,
            "the studio is busy (too many requests waiting); try again",
        )
    }
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Self::with(StatusCode::SERVICE_UNAVAILABLE, msg)
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::with(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }
    fn with(status: StatusCode, msg: impl Into<String>) -> Self {
        let msg: String = msg.into();
        Self {
            status,
            msg: msg.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.msg }))).into_response()
    }
}

/// Starts the studio and serves until Ctrl-C.
pub fn run(a: Args, flush_denormals: bool) -> Result<i32> {
    let workers = a.workers.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let device = crate::common::device(a.device)?;
    let studio = Arc::new(Studio::open(&a.runs, a.data_dir, workers, device)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(workers + 2)
        .on_thread_start(move || {
            if flush_denormals {
                genlab::nn::ops::denormals::flush_denormals();
            }
        })
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let addr = SocketAddr::new(a.host, a.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--host {} --port {}: cannot listen", a.host, a.port))?;
        let local = listener.local_addr()?;
        if !a.host.is_loopback() {
            eprintln!(
                "warning: listening on {} — anyone who can reach this machine on that network can use the studio (and its CPU); use --host 127.0.0.1 to keep it local",
                a.host
            );
        }
        let shown = if a.host.is_unspecified() {
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), local.port())
        } else {
            local
        };
        println!(
            "genlab studio: http://{shown}/  ({} image runs, {} super-resolution models; Ctrl-C stops)",
            studio.runs.len(),
            studio.sr.len()
        );
        use std::io::Write;
        std::io::stdout().flush().ok();
        axum::serve(listener, api::router(studio))
            .with_graceful_shutdown(async {
                tokio::signal::ctrl_c().await.ok();
            })
            .await
            .context("serving")?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
