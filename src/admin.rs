//! The emulator's own JSON endpoints under `/_elastilite/` (described in
//! `openapi/admin.yaml`): health, version, configuration, the node list, fault
//! injection, reset, the web console and its data, and `/metrics`.

use crate::http::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use control_plane::{ApiError, Fault};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_elastilite/health", get(health))
        .route("/_elastilite/version", get(version))
        .route("/_elastilite/configuration", get(configuration))
        .route(CONSOLE_PATH, get(console))
        .route("/_elastilite/console/state", get(console_state))
        .route("/metrics", get(metrics))
        .route("/_elastilite/nodes", get(nodes))
        .route("/_elastilite/log-delivery", get(log_delivery))
        .route("/_elastilite/ca.pem", get(ca_pem))
        .route(
            "/_elastilite/nodes/{region}/{cluster}/{node}/{action}",
            post(fault),
        )
        .route("/_elastilite/reset", post(reset))
        .route("/_elastilite/snapshots/run-window", post(run_window))
        .route("/_elastilite/security-groups", get(security_groups))
        .route(
            "/_elastilite/security-groups/{id}",
            axum::routing::put(put_security_group).delete(delete_security_group),
        )
}

/// Security groups, simulated: each group id's ingress CIDRs.
async fn security_groups(State(state): State<AppState>) -> Response {
    match state.control_plane.security_group_rules().await {
        Ok(r) => Json(r).into_response(),
        Err(e) => error(&e),
    }
}

/// `{"ingress": ["10.0.0.0/8", "127.0.0.1/32"]}`
async fn put_security_group(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    // Parsed here rather than by an extractor, so a bad body gets this API's JSON error.
    let body: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let cidrs: Option<Vec<String>> = body
        .as_ref()
        .and_then(|b| b.get("ingress"))
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().map(|c| c.as_str().map(str::to_string)).collect());
    let Some(cidrs) = cidrs else {
        return error(&ApiError::InvalidParameterValue(
            "The body must be {\"ingress\": [\"<cidr>\", ...]}.".into(),
        ));
    };
    match state
        .control_plane
        .set_security_group_rules(&id, Some(cidrs))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

async fn delete_security_group(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state
        .control_plane
        .set_security_group_rules(&id, None)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "data_dir": state.control_plane.data_dir().display().to_string(),
        "ca_pem": state.control_plane.ca_pem_path().display().to_string(),
    }))
    .into_response()
}

/// Log delivery files (slow-log, engine-log) and where they are.
async fn log_delivery(State(state): State<AppState>) -> Response {
    let cp = state.control_plane.clone();
    match tokio::task::spawn_blocking(move || cp.log_delivery_files()).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(&ApiError::Internal(e.to_string())),
    }
}

async fn version() -> Response {
    Json(serde_json::json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "api_version": control_plane::API_VERSION,
    }))
    .into_response()
}

/// The effective settings (flags and environment), without secrets.
async fn configuration(State(state): State<AppState>) -> Response {
    Json(state.configuration.as_ref().clone()).into_response()
}

/// Where the web console is served.
pub const CONSOLE_PATH: &str = "/_elastilite/console";

/// The console: one self-contained page (no external scripts or styles).
async fn console() -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console.html"),
    )
        .into_response()
}

/// Whether a request without an Action comes from a browser.
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// What the console polls: nodes with live statistics and history, groups, events.
async fn console_state(State(state): State<AppState>) -> Response {
    match state
        .control_plane
        .console_state(&state.default_region)
        .await
    {
        Ok(s) => Json(s).into_response(),
        Err(e) => error(&e),
    }
}

/// Prometheus text exposition of every node's CloudWatch-named metrics.
async fn metrics(State(state): State<AppState>) -> Response {
    match state.control_plane.metrics_text().await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => error(&e),
    }
}

/// The certificate authority TLS nodes' certificates are signed by.
async fn ca_pem(State(state): State<AppState>) -> Response {
    match std::fs::read_to_string(state.control_plane.ca_pem_path()) {
        Ok(pem) => (
            [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
            pem,
        )
            .into_response(),
        Err(e) => error(&ApiError::Internal(format!(
            "reading the CA certificate: {e}"
        ))),
    }
}

async fn nodes(State(state): State<AppState>) -> Response {
    match state.control_plane.nodes().await {
        Ok(n) => Json(n).into_response(),
        Err(e) => error(&e),
    }
}

async fn fault(
    State(state): State<AppState>,
    Path((region, cluster, node, action)): Path<(String, String, String, String)>,
    // `pause?seconds=N` (fractions allowed; none = until resume).
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let bad = |message: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"code": "InvalidParameterValue", "message": message})),
        )
            .into_response()
    };
    let fault = match action.as_str() {
        "stop" => Fault::Stop,
        "start" => Fault::Start,
        "pause" => match q.get("seconds").map(|s| s.parse::<f64>()) {
            None => Fault::Pause(None),
            Some(Ok(s)) if s.is_finite() && s > 0.0 && s <= 86_400.0 => {
                Fault::Pause(Some(std::time::Duration::from_secs_f64(s)))
            }
            Some(_) => {
                return bad(format!(
                    "seconds must be a number in (0, 86400], got {:?}",
                    q.get("seconds").map(String::as_str).unwrap_or_default()
                ))
            }
        },
        "resume" => Fault::Resume,
        "isolate" => Fault::Isolate,
        "heal" => Fault::Heal,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"code": "InvalidAction", "message": format!("unknown fault {other}; use stop, start, pause, resume, isolate or heal")})),
            )
                .into_response()
        }
    };
    match state
        .control_plane
        .inject(&region, &cluster, &node, fault)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

/// Run the automatic-backup window now instead of waiting for it.
async fn run_window(State(state): State<AppState>) -> Response {
    match state.control_plane.run_snapshot_window().await {
        Ok(names) => Json(serde_json::json!({ "snapshots": names })).into_response(),
        Err(e) => error(&e),
    }
}

async fn reset(State(state): State<AppState>) -> Response {
    match state.control_plane.reset().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

fn error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(serde_json::json!({"code": e.code(), "message": e.to_string()})),
    )
        .into_response()
}
