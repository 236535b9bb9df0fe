//! `GET /v1/entries/search?since=&until=&type=&principal=&cursor=&limit=&order=`: entries by
//! sequencing time range (ms since the Unix epoch; `since` inclusive, `until` exclusive), exact
//! event type and exact submitting principal, `order=newest` (default) or `oldest` first, paged by
//! the `next_cursor` of the previous page. Each result has the shape of `GET /v1/entries/{index}`,
//! and all are within the returned `tree_size`, so any of them can be proven at once. The search
//! itself is `crate::query`.

use axum::extract::State;
use axum::response::Response;

use super::outbound::{Indices, entries_page};
use super::read::{Caller, blocking, may_read_content, param, query};
use super::{ApiError, AppState, QueryResult};
use crate::query::{QueryError, SearchQuery, search as run_search};

const PARAMS: [&str; 7] = [
    "since",
    "until",
    "type",
    "principal",
    "cursor",
    "limit",
    "order",
];

/// The handler.
pub(super) async fn search(
    State(st): State<AppState>,
    caller: Caller,
    peer: super::ClientIp,
    q: QueryResult,
) -> Result<Response, ApiError> {
    let q = query(q, &PARAMS)?;
    let content = may_read_content(&st, &caller);
    let max = st.config.limits.max_page_entries;
    let limit = param(&q, "limit")?.unwrap_or(100.min(max));
    if limit == 0 || limit > max {
        return Err(ApiError::BadRequest(format!("limit must be 1 to {max}")));
    }
    let newest_first = match q.get("order").map(String::as_str) {
        None | Some("newest") => true,
        Some("oldest") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "order must be newest or oldest, got {other:?}"
            )));
        }
    };
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match q.get(name) {
            Some(v) if v.is_empty() => Err(ApiError::BadRequest(format!("{name} is empty"))),
            v => Ok(v.cloned()),
        }
    };
    let sq = SearchQuery {
        since: param(&q, "since")?,
        until: param(&q, "until")?,
        event_type: text("type")?,
        principal: match text("principal")? {
            // Which entries a principal made is private: only content readers may ask.
            Some(_) if !content => {
                return Err(ApiError::Forbidden(
                    "searching by principal needs the reader role (principals are private)".into(),
                ));
            }
            p => p,
        },
        cursor: param(&q, "cursor")?,
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        newest_first,
    };
    let size = st.seq.published().size;
    let page = blocking(&st, move |store, _| {
        run_search(store, size, &sq).map_err(|e| match e {
            QueryError::Invalid(m) => ApiError::BadRequest(m),
            QueryError::Store(e) => ApiError::from(e),
        })
    })
    .await?;
    let mut head = serde_json::Map::new();
    head.insert("tree_size".into(), size.into());
    head.insert("next_cursor".into(), page.next_cursor.into());
    Ok(entries_page(
        &st,
        peer,
        head,
        Indices::List(page.indices),
        content,
    ))
}
