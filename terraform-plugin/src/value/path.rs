//! Attribute paths: where inside a value something is, for diagnostics and `requires_replace`.
//!
//! [`AttributePath`] mirrors tfplugin5's `AttributePath` message (a list of attribute-name, string-key
//! and integer-index steps) and displays in HCL style (`criteria[0].env_type`). [`PathTrail`] is the
//! allocation-free breadcrumb the codecs thread through their recursion; it only becomes an
//! [`AttributePath`] when an error needs one.

use std::fmt::{self, Write as _};

/// One step of an [`AttributePath`], as in tfplugin5's `AttributePath.Step`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// An object attribute or nested block, by name.
    Attribute(String),
    /// A map element (or map-nested block), by key.
    ElementKeyString(String),
    /// A list or tuple element, by index. Set elements cannot be addressed.
    ElementKeyInt(i64),
}

/// A path from the root of a value to somewhere inside it.
///
/// ```ignore
/// let p = AttributePath::root().attribute("criteria").index(0).attribute("env_type");
/// assert_eq!(p.to_string(), "criteria[0].env_type");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AttributePath {
    steps: Vec<PathStep>,
}

impl AttributePath {
    /// The empty path: the value itself.
    pub fn root() -> Self {
        Self::default()
    }

    /// Builds a path from its steps.
    pub fn from_steps(steps: Vec<PathStep>) -> Self {
        Self { steps }
    }

    /// A new path one attribute (or nested block) deeper.
    pub fn attribute(&self, name: impl Into<String>) -> Self {
        self.with(PathStep::Attribute(name.into()))
    }

    /// A new path to the map element with this key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        self.with(PathStep::ElementKeyString(key.into()))
    }

    /// A new path to the list or tuple element at this index.
    pub fn index(&self, index: i64) -> Self {
        self.with(PathStep::ElementKeyInt(index))
    }

    /// The steps, outermost first.
    pub fn steps(&self) -> &[PathStep] {
        &self.steps
    }

    /// Whether this is the root path (no steps).
    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    /// A copy of `self` with one more step.
    fn with(&self, step: PathStep) -> Self {
        let mut steps = Vec::with_capacity(self.steps.len() + 1);
        steps.extend(self.steps.iter().cloned());
        steps.push(step);
        Self { steps }
    }
}

impl fmt::Display for AttributePath {
    /// HCL style: `cluster.zone`, `files["a.txt"]`, `criteria[0].env_type`; the root is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::Attribute(name) if i == 0 => f.write_str(name)?,
                PathStep::Attribute(name) => write!(f, ".{name}")?,
                PathStep::ElementKeyString(key) => {
                    f.write_str("[")?;
                    write_quoted(f, key)?;
                    f.write_str("]")?;
                }
                PathStep::ElementKeyInt(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Writes `s` as an HCL quoted string, escaping what HCL escapes.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// A borrowed, allocation-free path used while walking a value.
///
/// Decoding a million-element list must not clone a path a million times, so the codecs pass
/// `&PathTrail` down the recursion (each level points at its parent) and only call
/// [`PathTrail::to_path`] when they report an error.
#[derive(Debug, Clone)]
pub(crate) enum PathTrail<'a> {
    /// The root of the value.
    Root,
    /// An attribute of the object at the parent trail.
    Attribute(&'a PathTrail<'a>, &'a str),
    /// A map element of the map at the parent trail.
    Key(&'a PathTrail<'a>, &'a str),
    /// An element of the list, set or tuple at the parent trail.
    ///
    /// Set elements cannot be addressed in tfplugin5, so [`PathTrail::to_path`] stops at the set.
    Index(&'a PathTrail<'a>, usize, IndexKind),
}

/// Whether an indexed element sits in a set (not addressable) or in a list/tuple (addressable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKind {
    /// A list or tuple element.
    Sequence,
    /// A set element.
    Set,
}

impl<'a> PathTrail<'a> {
    /// The trail to attribute `name` of this object.
    pub(crate) fn attribute(&'a self, name: &'a str) -> Self {
        PathTrail::Attribute(self, name)
    }

    /// The trail to the element with `key` of this map.
    pub(crate) fn key(&'a self, key: &'a str) -> Self {
        PathTrail::Key(self, key)
    }

    /// The trail to element `index` of this list or tuple.
    pub(crate) fn index(&'a self, index: usize) -> Self {
        PathTrail::Index(self, index, IndexKind::Sequence)
    }

    /// The trail to element `index` of this set.
    pub(crate) fn set_element(&'a self, index: usize) -> Self {
        PathTrail::Index(self, index, IndexKind::Set)
    }

    /// Materializes the trail as an owned [`AttributePath`].
    ///
    /// Steps below a set element are dropped: Terraform cannot address set elements, so the
    /// path stops at the set itself.
    pub(crate) fn to_path(&self) -> AttributePath {
        let mut reversed = Vec::new();
        let mut node = self;
        loop {
            match *node {
                PathTrail::Root => break,
                PathTrail::Attribute(parent, name) => {
                    reversed.push(PathStep::Attribute(name.to_owned()));
                    node = parent;
                }
                PathTrail::Key(parent, key) => {
                    reversed.push(PathStep::ElementKeyString(key.to_owned()));
                    node = parent;
                }
                PathTrail::Index(parent, index, IndexKind::Sequence) => {
                    // An index beyond i64 cannot occur in memory; saturate rather than fail.
                    let index = i64::try_from(index).unwrap_or(i64::MAX);
                    reversed.push(PathStep::ElementKeyInt(index));
                    node = parent;
                }
                PathTrail::Index(parent, _, IndexKind::Set) => {
                    reversed.clear();
                    node = parent;
                }
            }
        }
        reversed.reverse();
        AttributePath::from_steps(reversed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_hcl_style() {
        let cases = [
            (AttributePath::root(), ""),
            (AttributePath::root().attribute("name"), "name"),
            (
                AttributePath::root().attribute("cluster").attribute("zone"),
                "cluster.zone",
            ),
            (
                AttributePath::root().attribute("files").key("a.txt"),
                "files[\"a.txt\"]",
            ),
            (
                AttributePath::root()
                    .attribute("criteria")
                    .index(0)
                    .attribute("env_type"),
                "criteria[0].env_type",
            ),
            (
                AttributePath::root().key("we\"ird\\\n\u{1}"),
                "[\"we\\\"ird\\\\\\n\\u0001\"]",
            ),
            (AttributePath::root().index(-1), "[-1]"),
        ];
        for (path, want) in cases {
            assert_eq!(path.to_string(), want, "{path:?}");
        }
    }

    #[test]
    fn builders_do_not_modify_the_original() {
        let base = AttributePath::root().attribute("a");
        let child = base.index(3);
        assert_eq!(base.steps(), &[PathStep::Attribute("a".into())]);
        assert_eq!(
            child.steps(),
            &[PathStep::Attribute("a".into()), PathStep::ElementKeyInt(3)]
        );
        assert!(AttributePath::root().is_root());
        assert!(!child.is_root());
        assert_eq!(AttributePath::default(), AttributePath::root());
    }

    #[test]
    fn trail_materializes_outermost_first() {
        let root = PathTrail::Root;
        let a = root.attribute("criteria");
        let b = a.index(2);
        let c = b.key("k");
        let d = c.attribute("env");
        assert_eq!(
            d.to_path(),
            AttributePath::root()
                .attribute("criteria")
                .index(2)
                .key("k")
                .attribute("env")
        );
        assert!(root.to_path().is_root());
    }

    #[test]
    fn trail_stops_at_a_set() {
        let root = PathTrail::Root;
        let a = root.attribute("rules");
        let b = a.set_element(4);
        let c = b.attribute("port");
        assert_eq!(c.to_path(), AttributePath::root().attribute("rules"));
    }
}
