//! Istio's sample applications in Rust: Bookinfo (productpage, details, reviews v1/v2/v3,
//! ratings) and an httpbin in the go-httpbin flavour.
//!
//! Istio's tasks assert on what these apps print and on how they call each other (timeouts,
//! retries, forwarded headers), so each app reproduces its original's observable behaviour; see
//! `shared/reference/bookinfo.md`. Apps are configured from the environment like the original
//! images, and reach each other through the sidecar's explicit proxy when `HTTP_PROXY` is set.

#![forbid(unsafe_code)]

mod client;
mod details;
mod env;
mod form;
mod headers;
mod httpbin;
mod json;
mod productpage;
mod ratings;
mod reviews;
mod server;

pub use env::Env;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Which sample application to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// The Bookinfo front end (Python Flask in Istio).
    Productpage,
    /// Book details (Ruby in Istio).
    Details,
    /// Book reviews; v1/v2/v3 by `ENABLE_RATINGS` and `STAR_COLOR` (Java in Istio).
    Reviews,
    /// Star ratings (Node in Istio).
    Ratings,
    /// go-httpbin, the target of Istio's security and traffic tasks.
    Httpbin,
}

impl App {
    /// The name used on the command line and in Istio's manifests.
    pub fn name(self) -> &'static str {
        match self {
            App::Productpage => "productpage",
            App::Details => "details",
            App::Reviews => "reviews",
            App::Ratings => "ratings",
            App::Httpbin => "httpbin",
        }
    }
}

impl std::fmt::Display for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An application name that is not one of the samples.
#[derive(Debug, thiserror::Error)]
#[error("unknown sample app {0:?}; expected one of productpage, details, reviews, ratings, httpbin")]
pub struct UnknownApp(String);

impl FromStr for App {
    type Err = UnknownApp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "productpage" => Ok(App::Productpage),
            "details" => Ok(App::Details),
            "reviews" => Ok(App::Reviews),
            "ratings" => Ok(App::Ratings),
            "httpbin" => Ok(App::Httpbin),
            other => Err(UnknownApp(other.to_string())),
        }
    }
}

/// Errors starting a sample.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr} for {app}: {source} (is another process using the port?)")]
    Bind {
        app: App,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Serves `app` on `listen` until the process ends. All configuration comes from the environment,
/// as in the original images: SERVICES_DOMAIN, {DETAILS,REVIEWS,RATINGS}_HOSTNAME, {..}_SERVICE_PORT,
/// STAR_COLOR, ENABLE_RATINGS, SERVICE_VERSION (ratings), HOSTNAME (podname), CLUSTER_NAME, FLOOD_FACTOR.
pub async fn run(app: App, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| SampleError::Bind {
            app,
            addr: listen,
            source,
        })?;
    serve(app, listener, Env::from_process()).await
}

/// Same, but with an already-bound listener and explicit env (so tests can run several in one process).
pub async fn serve(app: App, listener: TcpListener, env: Env) -> anyhow::Result<()> {
    let addr = listener.local_addr().ok();
    tracing::info!(%app, ?addr, %env, "sample listening");
    match app {
        App::Productpage => {
            server::serve_forever(listener, Arc::new(productpage::Productpage::new(env))).await
        }
        App::Details => server::serve_forever(listener, Arc::new(details::Details::new(&env))).await,
        App::Reviews => server::serve_forever(listener, Arc::new(reviews::Reviews::new(env))).await,
        App::Ratings => {
            server::serve_forever(listener, Arc::new(ratings::Ratings::new(&env.service_version))).await
        }
        App::Httpbin => server::serve_forever(listener, Arc::new(httpbin::Httpbin)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_round_trip() {
        for app in [
            App::Productpage,
            App::Details,
            App::Reviews,
            App::Ratings,
            App::Httpbin,
        ] {
            assert_eq!(app.name().parse::<App>().unwrap(), app);
        }
        assert!("reviews-v2".parse::<App>().is_err());
    }
}
