//! The web explorer at `/ui/`: a few static files (HTML, CSS, JavaScript modules, an icon)
//! compiled into the binary and served as they are. Everything the page shows it fetches from the
//! API with the user's bearer token, and everything it proves (record commitments, leaf hashes,
//! inclusion and consistency proofs, checkpoint signatures, cosignatures and the witness quorum)
//! it checks in the browser with Web Crypto (`assets/verify.js`), never taking the server's word.
//!
//! In scope here: serving the files, the security headers (a strict Content-Security-Policy: no
//! inline script or style, nothing but this origin), caching, and the `/ui` redirect. The files
//! are public, like `/livez` (`crate::auth` classifies `/ui` paths as public): they hold no data,
//! and the API calls the page makes carry the user's credentials. Out of scope: any server-side
//! rendering; the page never receives data in its HTML.

use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};

use crate::http_error::ApiError;

/// Where the explorer lives.
pub const UI_PATH: &str = "/ui/";

/// The policy on every `/ui` answer: scripts, styles, images and API calls from this origin only,
/// no inline script or style, no plugins, no framing, no form posts, no `<base>` rewriting.
/// `data:` images only for the inline icons CSS may use.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Browsers revalidate every file (with its `ETag`) before using a cached copy, so a new server
/// version is picked up at once while an unchanged file costs a 304.
const CACHE_CONTROL: &str = "no-cache";

/// One static file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file of the explorer. A name not listed here is 404.
const ASSETS: &[Asset] = &[
    asset("index.html", HTML, include_bytes!("assets/index.html")),
    asset("style.css", CSS, include_bytes!("assets/style.css")),
    asset("icon.svg", SVG, include_bytes!("assets/icon.svg")),
    asset("app.js", JS, include_bytes!("assets/app.js")),
    asset("api.js", JS, include_bytes!("assets/api.js")),
    asset("dom.js", JS, include_bytes!("assets/dom.js")),
    asset("verify.js", JS, include_bytes!("assets/verify.js")),
    asset("trust.js", JS, include_bytes!("assets/trust.js")),
    asset(
        "view-overview.js",
        JS,
        include_bytes!("assets/view-overview.js"),
    ),
    asset(
        "view-search.js",
        JS,
        include_bytes!("assets/view-search.js"),
    ),
    asset("view-entry.js", JS, include_bytes!("assets/view-entry.js")),
    asset(
        "view-consistency.js",
        JS,
        include_bytes!("assets/view-consistency.js"),
    ),
    asset("view-admin.js", JS, include_bytes!("assets/view-admin.js")),
    asset(
        "view-evidence.js",
        JS,
        include_bytes!("assets/view-evidence.js"),
    ),
    asset(
        "view-settings.js",
        JS,
        include_bytes!("assets/view-settings.js"),
    ),
];

const fn asset(name: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

/// The explorer's routes: `/ui` (a redirect to `/ui/`), `/ui/` (the page) and `/ui/<file>`, every
/// answer with the security headers.
/// They take no state, so the HTTP layer (`crate::api`) merges them without this module
/// depending on it.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent(UI_PATH) }))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { serve("index.html", &headers) }),
        )
        .route(
            "/ui/{*file}",
            get(
                |file: Result<Path<String>, PathRejection>, headers: HeaderMap| async move {
                    // A name that does not even decode (`%ff`) is no file either.
                    let file = file.map(|Path(f)| f).unwrap_or_default();
                    serve(&file, &headers)
                },
            ),
        )
        .layer(axum::middleware::map_response(security_headers))
}

/// The file `name`, or 304 when the client's copy (`If-None-Match`) is current, or 404.
fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::NotFound(format!("no file {name:?} in the web explorer")).into_response();
    };
    let etag = etag(a.body);
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    let status = if fresh {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let body = if fresh { &[][..] } else { a.body };
    (
        status,
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, CACHE_CONTROL),
            (header::ETAG, etag.as_str()),
        ],
        body,
    )
        .into_response()
}

/// A strong validator: the first 16 bytes of the file's SHA-256, quoted.
fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", sealtrail_spec::to_hex(&digest[..16]))
}

/// Adds the security headers to every `/ui` answer (files, redirects and errors alike).
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{HeaderMap, Request, StatusCode, header};
    use sealtrail_spec::note::Ed25519Signer;
    use tower::ServiceExt as _;

    use super::{ASSETS, CONTENT_SECURITY_POLICY};
    use crate::auth::{AnonymousAccess, Role, TokenEntry};
    use crate::serve::Server;
    use crate::store::mem::MemStore;

    const ORIGIN: &str = "ui.test.sealtrail.example/log";
    const READER: &str = "stk_ui-test-reader-token-0000000000000000000000";

    /// A server whose reads are private and whose anonymous callers may do nothing: only
    /// `/livez`, `/readyz` and the explorer's files answer without a token.
    fn private_server() -> (Server, axum::Router) {
        use sha2::Digest as _;
        let mut c = crate::config::Config {
            origin: ORIGIN.into(),
            ..crate::config::Config::default()
        };
        c.auth.private_reads = true;
        c.auth.private_metrics = true;
        c.auth.anonymous_writes = AnonymousAccess::Never;
        c.auth.anonymous_content = AnonymousAccess::Never;
        c.auth.tokens = vec![TokenEntry {
            name: "auditor".into(),
            role: Role::Reader,
            sha256: sealtrail_spec::to_hex(&sha2::Sha256::digest(READER.as_bytes())),
            expires_at: None,
        }];
        let signer = Ed25519Signer::from_seed(ORIGIN, [9; 32]).unwrap();
        let server = Server::start(c, Arc::new(MemStore::new()), signer).unwrap();
        let app = crate::api::router(server.state().clone());
        (server, app)
    }

    struct Got {
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    async fn get(app: &axum::Router, uri: &str, headers: &[(&str, &str)]) -> Got {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Got {
            status,
            headers,
            body,
        }
    }

    fn header<'a>(g: &'a Got, name: &str) -> &'a str {
        g.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    fn assert_security_headers(g: &Got, uri: &str) {
        assert_eq!(
            header(g, "content-security-policy"),
            CONTENT_SECURITY_POLICY,
            "{uri}"
        );
        assert_eq!(header(g, "x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(header(g, "referrer-policy"), "no-referrer", "{uri}");
        assert_eq!(header(g, "x-frame-options"), "DENY", "{uri}");
    }

    #[test]
    fn the_policy_is_strict() {
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                CONTENT_SECURITY_POLICY.split("; ").any(|d| d == directive),
                "{directive} missing from {CONTENT_SECURITY_POLICY}"
            );
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains('*'));
    }

    #[tokio::test]
    async fn files_are_public_on_a_private_server_with_their_types_and_headers() {
        let (server, app) = private_server();
        // The API itself is private...
        assert_eq!(
            get(&app, "/v1/log", &[]).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(&app, "/checkpoint", &[]).await.status,
            StatusCode::UNAUTHORIZED
        );
        let auth = format!("Bearer {READER}");
        let with_token = get(&app, "/v1/log", &[("authorization", auth.as_str())]).await;
        assert_eq!(with_token.status, StatusCode::OK);
        // ...the explorer's files are not, and each has its type.
        let page = get(&app, "/ui/", &[]).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
        assert!(
            String::from_utf8(page.body.clone())
                .unwrap()
                .starts_with("<!doctype html>")
        );
        assert_security_headers(&page, "/ui/");
        let want = |name: &str| match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("no content type expected for {other:?}"),
        };
        for a in ASSETS {
            let uri = format!("/ui/{}", a.name);
            let g = get(&app, &uri, &[]).await;
            assert_eq!(g.status, StatusCode::OK, "{uri}");
            assert_eq!(header(&g, "content-type"), want(a.name), "{uri}");
            assert_eq!(header(&g, "cache-control"), "no-cache", "{uri}");
            assert_eq!(g.body, a.body, "{uri}");
            assert_security_headers(&g, &uri);
        }
        server.stop().await;
    }

    #[tokio::test]
    async fn unknown_files_are_404_and_ui_redirects() {
        let (server, app) = private_server();
        for uri in [
            "/ui/nothing.js",
            "/ui/a/b",
            "/ui/../v1/log",
            "/ui/%2e%2e/checkpoint",
            "/ui/index.html.bak",
            "/ui/APP.JS",
            "/ui/%ff",
        ] {
            let g = get(&app, uri, &[]).await;
            assert_eq!(g.status, StatusCode::NOT_FOUND, "{uri}");
            let j: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
            assert_eq!(j["error"]["code"], "not_found", "{uri}");
            assert_security_headers(&g, uri);
        }
        let g = get(&app, "/ui", &[]).await;
        assert_eq!(g.status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header(&g, "location"), "/ui/");
        assert_security_headers(&g, "/ui");
        server.stop().await;
    }

    #[tokio::test]
    async fn unchanged_files_revalidate_with_304() {
        let (server, app) = private_server();
        let first = get(&app, "/ui/app.js", &[]).await;
        let etag = header(&first, "etag").to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "{etag}"
        );
        let again = get(
            &app,
            "/ui/app.js",
            &[(header::IF_NONE_MATCH.as_str(), &etag)],
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED);
        assert!(again.body.is_empty());
        assert_security_headers(&again, "/ui/app.js (304)");
        // Another file's tag does not match.
        let other = get(
            &app,
            "/ui/api.js",
            &[(header::IF_NONE_MATCH.as_str(), &etag)],
        )
        .await;
        assert_eq!(other.status, StatusCode::OK);
        assert_ne!(header(&other, "etag"), etag);
        server.stop().await;
    }

    /// The attribute values `name="..."` in `text`.
    fn attribute_values<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let pat = format!("{name}=\"");
        text.match_indices(&pat)
            .filter_map(|(at, _)| {
                let rest = &text[at + pat.len()..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    /// Every file the page and its modules load is served, nothing is loaded from elsewhere, and
    /// nothing the CSP forbids (inline script or style) or that could render data as markup
    /// (`innerHTML`, `insertAdjacentHTML`, `document.write`) is in the files.
    #[test]
    fn the_files_reference_only_each_other_and_render_no_markup() {
        let served = |name: &str| ASSETS.iter().any(|a| a.name == name);
        let index = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert_eq!(ASSETS[0].name, "index.html");
        let mut referenced = Vec::new();
        for attr in ["src", "href"] {
            for v in attribute_values(index, attr) {
                if v.starts_with('#') {
                    continue;
                }
                assert!(served(v), "index.html loads {v:?}, which is not served");
                referenced.push(v.to_owned());
            }
        }
        assert!(!index.contains("<style"), "inline style element");
        assert!(!index.contains(" style="), "inline style attribute");
        assert_eq!(
            index.matches("<script").count(),
            index.matches("<script type=\"module\" src=\"").count(),
            "every script is an external module"
        );
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let js = std::str::from_utf8(a.body).unwrap();
            for forbidden in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!js.contains(forbidden), "{} uses {forbidden}", a.name);
            }
            for line in js.lines().filter(|l| l.starts_with("import ")) {
                let from = line
                    .rsplit_once("from './")
                    .and_then(|(_, rest)| rest.split_once('\''))
                    .map(|(name, _)| name)
                    .unwrap_or_else(|| panic!("{}: unexpected import {line:?}", a.name));
                assert!(
                    served(from),
                    "{} imports {from:?}, which is not served",
                    a.name
                );
                referenced.push(from.to_owned());
            }
            assert!(
                !js.contains("http://") && !js.contains("https://"),
                "{} names an absolute URL",
                a.name
            );
            // The bearer token is kept in sessionStorage only.
            for line in js.lines().filter(|l| l.contains("localStorage")) {
                assert!(!line.contains("TOKEN"), "{}: {line}", a.name);
            }
        }
        for a in ASSETS.iter().filter(|a| a.name != "index.html") {
            assert!(
                referenced.iter().any(|r| r == a.name),
                "{} is served but never loaded",
                a.name
            );
        }
    }
}
