//! Behaviour tests (placeholder).
