//! The requests a sandbox received, kept when [`crate::Options::record_requests`] asks for them, so
//! a client's tests can check what it sent: the method, the raw path and query, the headers and
//! the body.

/// One `/orgs` request as the sandbox received it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The raw (still percent-encoded) path.
    pub path: String,
    /// The raw query, `""` when there was none.
    pub query: String,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of the header `name` (any case), if it was sent.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    }

    /// The body as JSON; `null` when it is empty or not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}
