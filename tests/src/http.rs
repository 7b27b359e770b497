//! Plain HTTP clients for the server's HTTP paths (`/mcp`).

/// A reqwest client. The crate is built with rustls and no crypto provider
/// of its own (its default would compile aws-lc beside the ring the
/// workspace uses), so the ring provider is installed first.
pub fn client() -> reqwest::Client {
    // Err means one is installed already: fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
