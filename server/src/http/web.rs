//! The web board (`web/`): its bundle, embedded in the binary and served at
//! `/` on the server's one port, so the README's run command gives a board
//! with nothing else installed. The page is one more client of the public
//! API (gRPC-web, see `grpc::add_services`); nothing here answers data.
//!
//! `web/build.mjs` writes the bundle to `web/dist/` with content-hashed file
//! names and lists them in `web/dist/assets.rs`, included below, so the
//! names the page asks for and the bytes embedded cannot drift. Hashed files
//! are cached for good (a new bundle has new names); `index.html` is
//! revalidated on every load. The page routes with `#/...`, so no app path
//! reaches the server and unknown paths stay 404.

use axum::{
    Router,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderValue, header};

/// One embedded file of the bundle.
struct Asset {
    /// Its name under `web/dist/` (`index.html`, `app-<hash>.js`...).
    name: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    bytes: &'static [u8],
}

/// The bundle, as `web/build.mjs` listed it.
static ASSETS: &[Asset] = include!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../web/dist/assets.rs"
));

/// What the page may load and call: only this server (its bundle, its
/// gRPC-web), no inline script, no framing (clickjacking); inline styles for
/// the log's ANSI colours, `blob:` for the raw log's download.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Cache policy of a hashed asset: its name changes with its content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache policy of `index.html`: always revalidate, so a new server's page
/// (naming the new bundle) is what a reload shows.
const REVALIDATE: &str = "no-cache";

/// `GET /` (the page) and `GET /assets/<hashed name>` for every other file.
pub fn router() -> Router {
    let mut router = Router::new();
    for asset in ASSETS {
        if asset.name == "index.html" {
            router = router.route("/", get(move || async move { serve(asset, REVALIDATE) }));
        } else {
            let path = format!("/assets/{}", asset.name);
            router = router.route(&path, get(move || async move { serve(asset, IMMUTABLE) }));
        }
    }
    router
}

fn serve(asset: &'static Asset, cache_control: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_has_a_page_and_its_hashed_files() {
        let index = ASSETS
            .iter()
            .find(|a| a.name == "index.html")
            .expect("index.html");
        let page = std::str::from_utf8(index.bytes).unwrap();
        // Every other file is reached: named by the page (the app and its
        // CSS) or imported by a script (the chunks esbuild split off, such
        // as the terminal's, fetched only when it opens).
        for asset in ASSETS.iter().filter(|a| a.name != "index.html") {
            let named_by_page = page.contains(&format!("assets/{}", asset.name));
            let imported = ASSETS
                .iter()
                .filter(|other| other.name != asset.name && other.name.ends_with(".js"))
                .any(|other| {
                    std::str::from_utf8(other.bytes)
                        .is_ok_and(|text| text.contains(&format!("./{}", asset.name)))
                });
            assert!(
                named_by_page || imported,
                "{} is neither named by index.html nor imported by a script",
                asset.name
            );
        }
    }
}
