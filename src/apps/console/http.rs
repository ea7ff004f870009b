//! The console's HTTP/1.1 server (hyper): the page, its state, its live events, its actions.
//!
//! - `GET /` and `/console.js`: the page (embedded in the binary), with a Content-Security-Policy
//!   that runs no script but its own (`script-src 'self'`): even markup that slipped into the
//!   page could not run. The page itself inserts every string as text.
//! - `GET /api/state`: the current state as one JSON document.
//! - `GET /api/events`: server-sent events, one `state` event at once and one per change.
//! - `POST /api/designate`: hand an election's mastership over (`{"path", "address"}`);
//!   `POST /api/weight`: set a provider's weight (`{"node", "weight"}`), which the provider keeps
//!   (the rule of [`zoorpc_registry::weight`]; in the Curator layout the weight of the Spring
//!   metadata, refused with 409 and the reason for an instance without it). Only with `--zk-auth-file` (403 otherwise) and
//!   with the header `X-Zoorpc-Confirmed: yes` the page sends after the operator's confirmation
//!   (a form on another site cannot send it).
//! - Requests whose `Host` is a name other than `localhost` are refused (421): another site's
//!   page cannot reach a console on loopback through a name it controls (DNS rebinding).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};
use zoorpc_registry::{Session, inspect};

/// The page and its script.
const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// A comment on an idle event stream, so proxies and browsers keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// The largest action request read.
const MAX_BODY: usize = 16 * 1024;

type Body = BoxBody<Bytes, Infallible>;

/// What the handlers share.
pub(super) struct Console {
    /// The newest state, as JSON text.
    pub states: watch::Receiver<Arc<str>>,
    /// The console's session (with the credential, if any): the actions use it.
    pub session: Session,
    /// Whether `--zk-auth-file` was given: without it every action is refused.
    pub can_act: bool,
}

/// Serves `listener` until the process ends.
pub(super) async fn serve(listener: TcpListener, console: Console) {
    let console = Arc::new(console);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: let some close before accepting again.
                warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let console = console.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let console = console.clone();
                async move { Ok::<_, Infallible>(route(&console, request).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                debug!(error = %e, "console connection ended");
            }
        });
    }
}

async fn route(console: &Console, request: Request<Incoming>) -> Response<Body> {
    if !host_allowed(&request) {
        return error(
            StatusCode::MISDIRECTED_REQUEST,
            "open the console by its IP address or as localhost",
        );
    }
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => page(PAGE, "text/html; charset=utf-8"),
        (&Method::GET, "/console.js") => page(SCRIPT, "text/javascript; charset=utf-8"),
        (&Method::GET, "/api/state") => {
            let state = console.states.borrow().clone();
            respond(
                StatusCode::OK,
                "application/json",
                Bytes::from(stamped(&state)),
            )
        }
        (&Method::GET, "/api/events") => events(console.states.clone()),
        // No icon: an empty answer, not a 404 the browser's console would show as an error.
        (&Method::GET, "/favicon.ico") => {
            respond(StatusCode::NO_CONTENT, "image/x-icon", Bytes::new())
        }
        (&Method::POST, "/api/designate" | "/api/weight") => act(console, request).await,
        (
            _,
            "/" | "/console.js" | "/api/state" | "/api/events" | "/api/designate" | "/api/weight",
        ) => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here"),
        _ => error(StatusCode::NOT_FOUND, "no such page: the console is at /"),
    }
}

/// Whether the `Host` header names an IP address or `localhost` (any port), or is absent.
fn host_allowed<B>(request: &Request<B>) -> bool {
    let Some(host) = request.headers().get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn page(text: &'static str, content_type: &str) -> Response<Body> {
    let mut response = respond(
        StatusCode::OK,
        content_type,
        Bytes::from_static(text.as_bytes()),
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

fn respond(status: StatusCode, content_type: &str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `state` (a JSON object) with `now_ms`, this machine's clock as it is sent: the page shows
/// ages by the server's clock whatever its own says, even from a state read long ago.
fn stamped(state: &str) -> String {
    let rest = state.strip_prefix('{').unwrap_or("}");
    format!("{{\"now_ms\":{},{rest}", super::super::now_ms())
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = json!({ "error": message }).to_string();
    respond(status, "application/json", Bytes::from(body))
}

/// The event stream: the state now, then every new one (a slow reader skips to the newest).
fn events(mut states: watch::Receiver<Arc<str>>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
    tokio::spawn(async move {
        let retry = Bytes::from_static(b"retry: 1000\n\n");
        if tx.send(Ok(Frame::data(retry))).await.is_err() {
            return;
        }
        loop {
            let state = states.borrow_and_update().clone();
            let event = Bytes::from(format!("event: state\ndata: {}\n\n", stamped(&state)));
            if tx.send(Ok(Frame::data(event))).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    changed = states.changed() => match changed {
                        Ok(()) => break,
                        Err(_) => return,
                    },
                    () = tx.closed() => return,
                    () = tokio::time::sleep(KEEPALIVE) => {
                        let comment = Bytes::from_static(b": keep-alive\n\n");
                        if tx.send(Ok(Frame::data(comment))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(ReceiverStream::new(rx))));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `POST /api/designate` and `/api/weight`: refused without the credential (403) or the
/// confirmation (428).
async fn act(console: &Console, request: Request<Incoming>) -> Response<Body> {
    if !console.can_act {
        return error(
            StatusCode::FORBIDDEN,
            "this console is read-only: start it with --zk-auth-file to act",
        );
    }
    let confirmed = request
        .headers()
        .get("x-zoorpc-confirmed")
        .is_some_and(|v| v == "yes");
    if !confirmed {
        return error(
            StatusCode::PRECONDITION_REQUIRED,
            "confirm the action (header X-Zoorpc-Confirmed: yes)",
        );
    }
    let weight = request.uri().path() == "/api/weight";
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request: {e}"),
            );
        }
    };
    let fields = serde_json::from_slice::<Value>(&body).unwrap_or_default();
    let done = if weight {
        set_weight(&console.session, &fields).await
    } else {
        designate(&console.session, &fields).await
    };
    match done {
        Ok(answer) => respond(
            StatusCode::OK,
            "application/json",
            Bytes::from(answer.to_string()),
        ),
        Err((status, e)) => error(status, &e),
    }
}

/// What an action answers: a JSON document, or a status and why.
type Acted = Result<Value, (StatusCode, String)>;

/// `{"node": path, "weight": n}`: sets the provider's weight ([`zoorpc_registry::weight`]).
async fn set_weight(session: &Session, fields: &Value) -> Acted {
    let usage = || {
        (
            StatusCode::BAD_REQUEST,
            r#"expected {"node": "/path/provider...", "weight": 0 to 4294967295}"#.to_owned(),
        )
    };
    let node = fields["node"].as_str().ok_or_else(usage)?;
    let weight = fields["weight"]
        .as_u64()
        .and_then(|w| u32::try_from(w).ok())
        .ok_or_else(usage)?;
    let url = zoorpc_registry::weight::set_weight(session, node, weight)
        .await
        .map_err(|e| (StatusCode::CONFLICT, e.to_string()))?;
    Ok(json!({ "node": node, "url": url.as_str() }))
}

/// `{"path": election, "address": contender}`: hands the election over.
async fn designate(session: &Session, fields: &Value) -> Acted {
    let usage = || {
        (
            StatusCode::BAD_REQUEST,
            r#"expected {"path": ..., "address": ...}"#.to_owned(),
        )
    };
    let path = fields["path"].as_str().ok_or_else(usage)?;
    let address = fields["address"].as_str().ok_or_else(usage)?;
    hand_over(session, path, address)
        .await
        .map_err(|e| (StatusCode::CONFLICT, e))?;
    Ok(json!({ "designated": address, "path": path }))
}

/// Hands `path` over to `address`, which must be a contender's (as `zoorpc designate` without
/// `--force`).
async fn hand_over(session: &Session, path: &str, address: &str) -> Result<(), String> {
    let address = super::super::designate::designee(address)?;
    let contenders = inspect::contenders(session, path)
        .await
        .map_err(|e| e.to_string())?;
    if !contenders
        .iter()
        .any(|c| c.address.as_deref() == Ok(address.as_str()))
    {
        return Err(format!(
            "{address} is not a contender at {path}: no participant node holds it"
        ));
    }
    zoorpc_registry::designate(session, path, &address)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> bool {
        let request = Request::builder()
            .header(header::HOST, value)
            .body(())
            .unwrap();
        host_allowed(&request)
    }

    #[test]
    fn only_addresses_and_localhost_are_served() {
        for ok in [
            "127.0.0.1:8025",
            "localhost:8025",
            "LOCALHOST",
            "[::1]:8025",
            "[::1]",
            "10.0.0.7",
        ] {
            assert!(host(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8025",
            "localhost.evil.example:1",
            "127.0.0.1.nip.io",
        ] {
            assert!(!host(refused), "{refused}");
        }
        assert!(host_allowed(&Request::new(())), "HTTP/1.0 without Host");
    }

    #[test]
    fn the_server_clock_is_stamped_into_the_state() {
        let stamped: Value = serde_json::from_str(&stamped(r#"{"a":1}"#)).unwrap();
        assert_eq!(stamped["a"], 1);
        assert!(stamped["now_ms"].as_i64().unwrap() > 0);
    }
}
