//! Page tokens for list RPCs.
//!
//! A token is the opaque, URL-safe encoding of the offset of the next page.
//! Offsets are simple and stable for the append-mostly lists served here;
//! the audit trail, which grows while people page through it, pages by
//! event id instead (see `events`).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{StoreError, StoreResult};

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return.
    pub limit: u64,
}

/// Default and maximum page sizes of a list.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    /// Used when the caller sends 0.
    pub default: u64,
    /// Larger requests are clamped to this.
    pub max: u64,
}

/// Limits of the resource lists (agents, capabilities, tasks, executions).
pub const RESOURCE_PAGES: PageLimits = PageLimits {
    default: 50,
    max: 500,
};

/// Limits of the audit trail.
pub const EVENT_PAGES: PageLimits = PageLimits {
    default: 100,
    max: 1000,
};

const TOKEN_PREFIX: &str = "o:";

impl PageRequest {
    /// Parses `page_size` and `page_token` as sent by a client.
    pub fn parse(page_size: i32, page_token: &str, limits: PageLimits) -> StoreResult<Self> {
        let limit = match page_size {
            n if n < 0 => return Err(StoreError::invalid("page_size", "must not be negative")),
            0 => limits.default,
            n => (n as u64).min(limits.max),
        };
        let offset = if page_token.is_empty() {
            0
        } else {
            decode_offset(page_token)
                .ok_or_else(|| StoreError::invalid("page_token", "not a token from this server"))?
        };
        Ok(Self { offset, limit })
    }

    /// The token of a page that starts after the first `kept` rows of this
    /// one (a page cut short to fit a reply).
    pub fn token_after(&self, kept: usize) -> String {
        encode_offset(self.offset + kept as u64)
    }

    /// The token of the page after this one, given how many rows this page
    /// fetched when asked for `limit + 1` (the extra row only signals more).
    pub fn next_token(&self, fetched: usize) -> String {
        if (fetched as u64) > self.limit {
            encode_offset(self.offset + self.limit)
        } else {
            String::new()
        }
    }
}

/// Prefix of keyset tokens ("after this id").
const AFTER_ID_PREFIX: &str = "a:";

/// Token of a list that pages by increasing id: resume after `id`.
pub fn after_id_token(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{AFTER_ID_PREFIX}{id}"))
}

/// The id to resume after; 0 for an empty token (the first page).
pub fn parse_after_id_token(token: &str) -> StoreResult<i64> {
    if token.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(AFTER_ID_PREFIX)?.parse().ok())
        .ok_or_else(|| StoreError::invalid("page_token", "not a token from this server"))
}

fn encode_offset(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{offset}"))
}

/// Largest offset a token may carry: far past any real list, and small
/// enough that the offset plus a page always fits the databases' signed
/// 64-bit OFFSET (an offset above i64::MAX panicked a handler).
const MAX_OFFSET: u64 = 1 << 53;

fn decode_offset(token: &str) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()
        .filter(|offset| *offset <= MAX_OFFSET)
}

/// Trims a page fetched with `limit + 1` rows to `limit` and returns the next token.
pub fn finish_page<T>(request: PageRequest, mut rows: Vec<T>) -> (Vec<T>, String) {
    let next = request.next_token(rows.len());
    rows.truncate(request.limit as usize);
    (rows, next)
}

impl PageRequest {
    /// Reads this page of `query` (which sets the order) and the next page's
    /// token: one row more than the page is fetched to know whether there is
    /// a next one.
    pub(super) async fn fetch<E, C>(
        self,
        query: sea_orm::Select<E>,
        conn: &C,
    ) -> StoreResult<(Vec<E::Model>, String)>
    where
        E: sea_orm::EntityTrait,
        C: sea_orm::ConnectionTrait,
    {
        use sea_orm::QuerySelect;
        let rows = query
            .offset(self.offset)
            .limit(self.limit + 1)
            .all(conn)
            .await?;
        Ok(finish_page(self, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let page = PageRequest::parse(10, "", RESOURCE_PAGES).unwrap();
        assert_eq!(
            page,
            PageRequest {
                offset: 0,
                limit: 10
            }
        );
        let token = page.next_token(11);
        let next = PageRequest::parse(10, &token, RESOURCE_PAGES).unwrap();
        assert_eq!(next.offset, 10);
        assert_eq!(page.next_token(10), "", "no extra row means last page");
        assert!(PageRequest::parse(10, "garbage!", RESOURCE_PAGES).is_err());
        for huge in [u64::MAX, i64::MAX as u64, MAX_OFFSET + 1] {
            let token = encode_offset(huge);
            assert!(
                PageRequest::parse(10, &token, RESOURCE_PAGES).is_err(),
                "{huge}"
            );
        }
        assert!(PageRequest::parse(-1, "", RESOURCE_PAGES).is_err());
        assert_eq!(PageRequest::parse(0, "", RESOURCE_PAGES).unwrap().limit, 50);
        assert_eq!(
            PageRequest::parse(9999, "", RESOURCE_PAGES).unwrap().limit,
            500
        );
    }

    #[test]
    fn after_id_tokens_round_trip() {
        assert_eq!(parse_after_id_token("").unwrap(), 0);
        assert_eq!(parse_after_id_token(&after_id_token(42)).unwrap(), 42);
        assert!(parse_after_id_token(&encode_offset(42)).is_err());
    }
}
