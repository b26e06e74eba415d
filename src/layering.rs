//! The layering of the crate's modules as a test: every `crate::` path points down.
//!
//! The framework below the provider is a crate of its own (`terraform-plugin`), so the compiler
//! keeps it from naming the provider. Inside this crate the layers are modules, and this test
//! reads their sources: a module may name only the modules its layer sits on. From the top:
//!
//! - `provider`: the resources (schema and checks) over the backends (`backend`, `api`,
//!   `direct`); the backends never name the resources, and the definition payloads
//!   (`provider::api::definition`) name nothing else of the provider.
//! - `humanitec` (the REST client) and `runner` (direct mode on a cluster): no provider, no model.
//! - `model`: the typed models, a leaf that names nothing of this crate but itself.

use std::path::{Path, PathBuf};

/// A rule: sources under `module` must not name a path under any of `forbidden` unless it is
/// under one of `allowed`. Paths are `::`-joined module paths from the crate root.
struct Rule {
    module: &'static str,
    forbidden: &'static [&'static str],
    allowed: &'static [&'static str],
}

const RULES: [Rule; 7] = [
    Rule {
        // Why everything: a leaf names no other module of the crate.
        module: "model",
        forbidden: &[""],
        allowed: &["model"],
    },
    Rule {
        module: "text",
        forbidden: &[""],
        allowed: &["text"],
    },
    Rule {
        module: "yaml",
        forbidden: &[""],
        allowed: &["yaml"],
    },
    Rule {
        module: "humanitec",
        forbidden: &["provider", "runner", "model", "command_line"],
        allowed: &[],
    },
    Rule {
        module: "runner",
        forbidden: &["provider", "humanitec", "model", "command_line"],
        allowed: &[],
    },
    Rule {
        module: "provider::api::definition",
        forbidden: &["provider"],
        allowed: &["provider::api::definition"],
    },
    Rule {
        module: "provider::api",
        forbidden: &["provider::resources"],
        allowed: &[],
    },
];

/// The backends besides `provider::api`, which name no resource either.
const BACKENDS: [&str; 2] = ["provider::direct", "provider::backend"];

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file (`src/provider/api/mod.rs` → `provider::api`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

/// The module paths a line of code names through `crate::` or `super::`, resolved from `here`.
fn named_paths(line: &str, here: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for (start, _) in line
        .match_indices("crate::")
        .chain(line.match_indices("super::"))
    {
        // Why: `crate::` inside an identifier (`my_crate::`) is another crate.
        let before = line[..start].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &line[start..];
        let words: Vec<&str> = rest
            .split("::")
            .map(|w| {
                w.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
            })
            .take_while(|w| !w.is_empty())
            .collect();
        if words.first() == Some(&"super") && start >= 2 && &line[start - 2..start] == "::" {
            continue; // counted with the `super::` that starts the path
        }
        let mut path: Vec<String> = Vec::new();
        let mut rest_words = words.iter();
        if words.first() == Some(&"crate") {
            rest_words.next();
        } else {
            path = here.to_vec();
            while rest_words.clone().next() == Some(&"super") {
                rest_words.next();
                path.pop();
            }
        }
        path.extend(rest_words.map(|w| (*w).to_string()));
        found.push(path.join("::"));
    }
    found
}

/// Whether module path `path` is `prefix` or under it (the empty prefix is everything).
fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path.starts_with(prefix) && path[prefix.len()..].starts_with("::")
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut upward = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let name = module.join("::");
        if name.starts_with("bin") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("a readable source");
        let mut in_tests = false;
        for (number, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            // Why: an inline `mod tests` is one module below its file's.
            if code
                .trim_start_matches("pub(crate) ")
                .starts_with("mod tests")
            {
                in_tests = true;
            }
            let here: Vec<String> = if in_tests {
                module.iter().cloned().chain(["tests".into()]).collect()
            } else {
                module.clone()
            };
            for path in named_paths(code, &here) {
                let broken = RULES
                    .iter()
                    .filter(|rule| under(&name, rule.module))
                    // The most specific rule for the module decides.
                    .max_by_key(|rule| rule.module.len())
                    .is_some_and(|rule| {
                        rule.forbidden.iter().any(|f| under(&path, f))
                            && !rule.allowed.iter().any(|a| under(&path, a))
                    })
                    || BACKENDS.iter().any(|backend| under(&name, backend))
                        && under(&path, "provider::resources");
                if broken {
                    upward.push(format!(
                        "{}:{}: {name} names {path}",
                        file.strip_prefix(&src).unwrap_or(file).display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up the layering:\n{}",
        upward.join("\n")
    );
}

#[test]
fn paths_are_resolved_from_where_they_are_written() {
    let here: Vec<String> = ["provider", "api", "tests"].map(String::from).to_vec();
    assert_eq!(
        named_paths("use super::super::backend::set;", &here),
        ["provider::backend::set"]
    );
    assert_eq!(
        named_paths("let x = crate::model::container_runner::SECRETS;", &here),
        ["model::container_runner::SECRETS"]
    );
    assert!(named_paths("use my_crate::thing;", &here).is_empty());
    assert!(under("provider::api::definition", "provider"));
    assert!(!under("providers", "provider"));
    assert!(under("anything", ""));
}
