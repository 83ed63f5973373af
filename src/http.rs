//! The HTTP front door: `POST /` (and `GET /?…`) in the AWS query protocol,
//! STS's GetCallerIdentity on the same port, and a health probe.

use aws_query::{error_document, success_document, CredentialScope, Params};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use control_plane::{ApiError, ControlPlane, API_VERSION, NAMESPACE};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

#[derive(Clone)]
pub struct AppState {
    pub control_plane: ControlPlane,
    pub default_region: String,
    /// Strict mode: the access keys whose signatures are accepted.
    pub credentials: Option<Arc<HashMap<String, String>>>,
    /// What `GET /_elastilite/configuration` answers.
    pub configuration: Arc<serde_json::Value>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(api).post(api))
        .merge(crate::admin::routes())
        .fallback(api)
        .with_state(state)
}

async fn api(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    if let Some(creds) = &state.credentials {
        if let Err(e) = verify_signature(creds, &method, &uri, &headers, &body) {
            tracing::info!(code = e.code(), message = %e, "request refused");
            return error_response(
                NAMESPACE,
                &request_id,
                e.status(),
                true,
                e.code(),
                &e.to_string(),
            );
        }
    }
    let params = Params::from_query_and_body(uri.query().unwrap_or(""), &body);
    let scope = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(CredentialScope::from_authorization)
        .or_else(|| {
            params
                .str("X-Amz-Credential")
                .and_then(CredentialScope::from_credential)
        });
    let region = scope
        .as_ref()
        .map(|s| s.region.clone())
        .unwrap_or_else(|| state.default_region.clone());
    let service = scope
        .as_ref()
        .map(|s| s.service.as_str())
        .unwrap_or("elasticache");

    let Some(action) = params.str("Action").map(str::to_string) else {
        if method == Method::GET && crate::admin::wants_html(&headers) {
            // A browser opening the endpoint: show the console.
            return axum::response::Redirect::to(crate::admin::CONSOLE_PATH).into_response();
        }
        return error_response(
            NAMESPACE,
            &request_id,
            400,
            true,
            "MissingAction",
            "The request must contain the parameter Action",
        );
    };
    if service == "sts" || action == "GetCallerIdentity" {
        return sts(&state, &action, &request_id);
    }
    match params.str("Version") {
        Some(API_VERSION) => {}
        Some(other) => {
            return error_response(
                NAMESPACE,
                &request_id,
                400,
                true,
                "InvalidAction",
                &format!("Could not find operation {action} for version {other}"),
            )
        }
        None => {
            return error_response(
                NAMESPACE,
                &request_id,
                400,
                true,
                "MissingParameter",
                "The request must contain the parameter Version",
            )
        }
    }

    let span =
        tracing::info_span!("api", action = %action, region = %region, request_id = %request_id);
    let started = Instant::now();
    let result = state
        .control_plane
        .handle(&region, &action, &params)
        .instrument(span.clone())
        .await;
    let _enter = span.enter();
    match result {
        Ok(body) => {
            tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "ok");
            xml_response(
                StatusCode::OK,
                &request_id,
                success_document(NAMESPACE, &action, body.as_deref(), &request_id),
            )
        }
        Err(e) => {
            if e.sender_fault() {
                tracing::info!(code = e.code(), message = %e, "client error");
            } else {
                tracing::error!(code = e.code(), message = %e, "internal error");
            }
            api_error(&request_id, &e)
        }
    }
}

fn verify_signature(
    creds: &HashMap<String, String>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), sigv4::AuthError> {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let req = sigv4::Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let v = sigv4::verify(&req, creds, std::time::SystemTime::now())?;
    if v.service != "elasticache" && v.service != "sts" {
        return Err(sigv4::AuthError::IncompleteSignature(format!(
            "Credential should be scoped to correct service: 'elasticache', not '{}'",
            v.service
        )));
    }
    Ok(())
}

fn api_error(request_id: &str, e: &ApiError) -> Response {
    error_response(
        NAMESPACE,
        request_id,
        e.status(),
        e.sender_fault(),
        e.code(),
        &e.to_string(),
    )
}

fn error_response(
    ns: &str,
    request_id: &str,
    status: u16,
    sender: bool,
    code: &str,
    message: &str,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    xml_response(
        status,
        request_id,
        error_document(ns, sender, code, message, request_id),
    )
}

fn xml_response(status: StatusCode, request_id: &str, body: String) -> Response {
    let mut r = (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response();
    if let Ok(v) = header::HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-RequestId", v);
    }
    r
}

/// Enough of STS for clients (Terraform's provider start-up) to learn the account.
fn sts(state: &AppState, action: &str, request_id: &str) -> Response {
    if action != "GetCallerIdentity" {
        return error_response(
            STS_NAMESPACE,
            request_id,
            400,
            true,
            "InvalidAction",
            &format!("Could not find operation {action} for version 2011-06-15"),
        );
    }
    let account = state.control_plane.account_id();
    let mut w = aws_query::XmlWriter::new();
    w.text("Arn", &format!("arn:aws:iam::{account}:root"))
        .text("UserId", account)
        .text("Account", account);
    xml_response(
        StatusCode::OK,
        request_id,
        success_document(
            STS_NAMESPACE,
            "GetCallerIdentity",
            Some(&w.finish()),
            request_id,
        ),
    )
}
