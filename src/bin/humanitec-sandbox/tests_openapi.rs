//! OpenAPI conformance (placeholder).
