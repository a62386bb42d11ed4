//! The REST API the `strait` CLI talks to: apply, get, delete, proxy status and proxy config.
//!
//! Bodies are YAML or JSON manifests, answers are JSON. Every error is `{"error": "..."}` (or
//! `{"errors": [...]}` for validation, one line per problem) with the HTTP status that says what
//! went wrong: 400 bad request, 404 not found, 422 invalid resources, 500 state directory failure.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use strait_api::{Kind, Resource};

use crate::push::PushServer;
use crate::store::{Action, ActionResult, ResourceKey, Store, StoreError, WriteOutcome};

/// Header naming the file a body came from, so errors can point at it.
pub const SOURCE_HEADER: &str = "x-strait-source";

/// Largest manifest body accepted.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct RestState {
    /// The config store.
    pub store: Arc<Store>,
    /// The push server (proxy status and configs).
    pub push: Arc<PushServer>,
}

/// The API's routes.
pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/api/v1/apply", post(apply))
        .route("/api/v1/delete", post(delete_documents))
        .route("/api/v1/resources/{kind}", get(list))
        .route(
            "/api/v1/resources/{kind}/{namespace}/{name}",
            get(get_one).delete(delete_one),
        )
        .route("/api/v1/proxies", get(proxies))
        .route("/api/v1/proxies/{id}/config", get(proxy_config))
        // Manifests of thousands of services exceed axum's 2 MiB default.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error answer.
#[derive(Debug)]
pub enum RestError {
    /// 400.
    BadRequest(String),
    /// 404.
    NotFound(String),
    /// 422 with one line per problem.
    Invalid(Vec<String>),
    /// 500.
    Internal(String),
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        match self {
            RestError::BadRequest(m) => {
                (StatusCode::BAD_REQUEST, Json(json!({ "error": m }))).into_response()
            }
            RestError::NotFound(m) => (StatusCode::NOT_FOUND, Json(json!({ "error": m }))).into_response(),
            RestError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "errors": errors })),
            )
                .into_response(),
            RestError::Internal(m) => {
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": m }))).into_response()
            }
        }
    }
}

impl From<StoreError> for RestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(errors) => {
                RestError::Invalid(errors.iter().map(ToString::to_string).collect())
            }
            StoreError::NotFound(_) | StoreError::PartlyNotFound { .. } => RestError::NotFound(e.to_string()),
            StoreError::Io { .. } => RestError::Internal(e.to_string()),
        }
    }
}

fn parse_kind(kind: &str) -> Result<Kind, RestError> {
    Kind::parse(kind).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
        RestError::BadRequest(format!(
            "the server doesn't have a resource type \"{kind}\"; known types: {}",
            known.join(", ")
        ))
    })
}

/// Runs a store write off the async threads (it fsyncs).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, RestError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(RestError::from),
        Err(e) => Err(RestError::Internal(format!("store task failed: {e}"))),
    }
}

fn source_of(headers: &HeaderMap) -> String {
    headers
        .get(SOURCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
        .unwrap_or("request")
        .to_string()
}

#[derive(Debug, Deserialize)]
struct ApplyQuery {
    #[serde(rename = "dryRun")]
    dry_run: Option<String>,
}

async fn apply(
    State(state): State<RestState>,
    Query(query): Query<ApplyQuery>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<WriteOutcome>, RestError> {
    // kubectl sends dryRun=All; accept that and true.
    let dry_run = query
        .dry_run
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("all"));
    let source = source_of(&headers);
    let store = state.store.clone();
    Ok(Json(
        blocking(move || {
            let mut outcome = store.apply_text(&body, &source, dry_run)?;
            if !dry_run {
                outcome.warnings = analysis_of(&store, &outcome);
            }
            Ok(outcome)
        })
        .await?,
    ))
}

/// Cross-resource findings about the resources an apply wrote, with the whole store as context.
fn analysis_of(store: &Store, outcome: &WriteOutcome) -> Vec<String> {
    let written: std::collections::BTreeSet<String> = outcome
        .results
        .iter()
        .map(|r| format!("{} {}/{}", r.kind, r.namespace, r.name))
        .collect();
    // The shared snapshot (no copy), and only the written resources checked: this runs beside
    // the push server's recompilation of the same change.
    let snapshot = store.shared_snapshot();
    strait_api::analyze_only(&snapshot.resources, &|r| written.contains(&r.display_name()))
        .into_iter()
        .map(|d| d.to_string())
        .collect()
}

async fn delete_documents(
    State(state): State<RestState>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, RestError> {
    let source = source_of(&headers);
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.delete_text(&body, &source)).await {
        Ok(Ok(outcome)) => Ok(Json(outcome).into_response()),
        Ok(Err(StoreError::PartlyNotFound { deleted, missing })) => {
            let errors: Vec<String> = missing
                .into_iter()
                .map(|k| StoreError::NotFound(k).to_string())
                .collect();
            let body = json!({ "results": deleted.results, "notes": deleted.notes, "errors": errors });
            Ok((StatusCode::NOT_FOUND, Json(body)).into_response())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(RestError::Internal(format!("store task failed: {e}"))),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    namespace: Option<String>,
}

async fn list(
    State(state): State<RestState>,
    Path(kind): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, RestError> {
    // `all` lists every kind, as `kubectl get all` lists every category member.
    let kind = if kind.eq_ignore_ascii_case("all") {
        None
    } else {
        Some(parse_kind(&kind)?)
    };
    let namespace = query.namespace.filter(|ns| !ns.is_empty());
    let items: Vec<Resource> = state.store.list(kind, namespace.as_deref());
    Ok(Json(json!({ "items": items })))
}

async fn get_one(
    State(state): State<RestState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<Resource>, RestError> {
    let kind = parse_kind(&kind)?;
    state
        .store
        .get(kind, &namespace, &name)
        .map(Json)
        .ok_or_else(|| StoreError::NotFound(ResourceKey::new(kind, namespace, name)).into())
}

async fn delete_one(
    State(state): State<RestState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<ActionResult>, RestError> {
    let kind = parse_kind(&kind)?;
    let store = state.store.clone();
    let key = ResourceKey::new(kind, namespace, name);
    let k = key.clone();
    blocking(move || store.delete(k.kind, &k.namespace, &k.name)).await?;
    Ok(Json(ActionResult {
        kind,
        namespace: key.namespace,
        name: key.name,
        action: Action::Deleted,
    }))
}

async fn proxies(State(state): State<RestState>) -> Json<Value> {
    Json(json!({ "proxies": state.push.status() }))
}

async fn proxy_config(
    State(state): State<RestState>,
    Path(id): Path<String>,
) -> Result<Json<strait_mesh::ProxyConfig>, RestError> {
    match state.push.acked_config(&id) {
        Some(Some(config)) => Ok(Json(config)),
        Some(None) => Err(RestError::NotFound(format!(
            "proxy \"{id}\" is connected but has not acknowledged any configuration yet"
        ))),
        None => Err(RestError::NotFound(format!(
            "no proxy \"{id}\" is connected; `strait proxy-status` lists the connected proxies"
        ))),
    }
}

#[cfg(test)]
mod tests;
