//! The docs in `docs/` are generated from the provider's schema (as Terraform reports it with
//! `terraform providers schema -json`), the files under `examples/` and the hand-written sections
//! of `templates/index.md` (placed in `docs/index.md` before the schema); this test fails when
//! they drift apart. Regenerate them with `UPDATE_DOCS=1 cargo test --test integration docs`.
//! Every example is also checked with `terraform validate` against the built provider.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::support::Workdir;

const REQUIRED_PROVIDERS: &str = "terraform {\n  required_providers {\n    humanitec = { source = \"container-runner/humanitec\" }\n  }\n}\n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn provider_schema() -> Json {
    let work = Workdir::new(REQUIRED_PROVIDERS);
    let run = work
        .tf(&["providers", "schema", "-json"])
        .ok("terraform providers schema");
    let all: Json = serde_json::from_str(&run.stdout).expect("schema JSON");
    // Why by suffix: the bare source address means registry.terraform.io under Terraform and
    // registry.opentofu.org under OpenTofu.
    let schemas = all["provider_schemas"]
        .as_object()
        .expect("provider_schemas");
    let (_, schema) = schemas
        .iter()
        .find(|(address, _)| address.ends_with("/container-runner/humanitec"))
        .unwrap_or_else(|| panic!("no container-runner/humanitec in {:?}", schemas.keys()));
    schema.clone()
}

fn type_name(ty: &Json) -> String {
    match ty {
        Json::String(s) => capitalise(s),
        Json::Array(parts) if parts.len() >= 2 => {
            let kind = parts[0].as_str().unwrap_or_default();
            match kind {
                "object" => "Object".into(),
                _ => format!("{} of {}", capitalise(kind), type_name(&parts[1])),
            }
        }
        _ => "Dynamic".into(),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// Renders one block's attributes and nested blocks in tfplugindocs' layout.
fn render_block(out: &mut String, block: &Json, prefix: &str, nested: &mut Vec<(String, Json)>) {
    let mut groups: [(&str, Vec<String>); 3] = [
        ("Required", vec![]),
        ("Optional", vec![]),
        ("Read-Only", vec![]),
    ];
    if let Some(attributes) = block["attributes"].as_object() {
        for (name, a) in attributes {
            let group = if a["required"] == true {
                0
            } else if a["optional"] == true {
                1
            } else {
                2
            };
            let mut flags = type_name(&a["type"]);
            if a["sensitive"] == true {
                flags.push_str(", Sensitive");
            }
            if a["write_only"] == true {
                flags.push_str(", Write-only");
            }
            let description = a["description"].as_str().unwrap_or_default();
            groups[group]
                .1
                .push(format!("- `{name}` ({flags}) {description}"));
        }
    }
    if let Some(blocks) = block["block_types"].as_object() {
        for (name, b) in blocks {
            let anchor = format!("nestedblock--{prefix}{name}");
            let min = b["min_items"].as_i64().unwrap_or(0);
            let group = if min > 0 { 0 } else { 1 };
            let nesting = match b["nesting_mode"].as_str().unwrap_or_default() {
                "set" => "Block Set",
                "list" => "Block List",
                _ => "Block",
            };
            let limit = match b["max_items"].as_i64() {
                Some(max) if max > 0 => format!(", Max: {max}"),
                _ => String::new(),
            };
            let summary = b["block"]["description"].as_str().unwrap_or_default();
            groups[group].1.push(format!(
                "- `{name}` ({nesting}{limit}) {summary} (see [below for nested schema](#{anchor}))"
            ));
            nested.push((format!("{prefix}{name}"), b["block"].clone()));
        }
    }
    for (title, lines) in groups {
        if !lines.is_empty() {
            let _ = write!(out, "### {title}\n\n{}\n\n", lines.join("\n"));
        }
    }
}

fn render_nested(out: &mut String, mut pending: Vec<(String, Json)>) {
    while !pending.is_empty() {
        let (path, block) = pending.remove(0);
        let _ = write!(
            out,
            "<a id=\"nestedblock--{path}\"></a>\n### Nested Schema for `{}`\n\n",
            path.replace("--", ".")
        );
        let mut more = Vec::new();
        let mut body = String::new();
        render_block(&mut body, &block, &format!("{path}--"), &mut more);
        out.push_str(
            &body
                .replace("### ", "Nested ")
                .replace("Nested Required", "Required:")
                .replace("Nested Optional", "Optional:")
                .replace("Nested Read-Only", "Read-Only:"),
        );
        pending.extend(more);
    }
}

fn example(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim_end().to_string())
}

fn render_resource(name: &str, schema: &Json) -> String {
    let block = &schema["block"];
    let description = block["description"].as_str().unwrap_or_default();
    let mut out = format!(
        "---\npage_title: \"{name} Resource - container-runner/humanitec\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n\n# {name} (Resource)\n\n{description}\n\n",
        description.replace('\n', "\n  ")
    );
    let examples = repo().join("examples/resources").join(name);
    if let Some(tf) = example(&examples.join("resource.tf")) {
        let _ = write!(out, "## Example Usage\n\n```terraform\n{tf}\n```\n\n");
    }
    out.push_str("## Schema\n\n");
    let mut nested = Vec::new();
    render_block(&mut out, block, "", &mut nested);
    render_nested(&mut out, nested);
    if let Some(import) = example(&examples.join("import.sh")) {
        let _ = write!(
            out,
            "## Import\n\nImport is supported using the following syntax:\n\n```shell\n{import}\n```\n"
        );
    }
    format!("{}\n", out.trim_end())
}

fn render_index(schema: &Json) -> String {
    let block = &schema["provider"]["block"];
    let description = block["description"].as_str().unwrap_or_default();
    let mut out = format!(
        "---\npage_title: \"humanitec Provider\"\ndescription: |-\n  {}\n---\n\n# humanitec Provider\n\n{description}\n\n",
        description.replace('\n', "\n  ")
    );
    if let Some(tf) = example(&repo().join("examples/provider/provider.tf")) {
        let _ = write!(out, "## Example Usage\n\n```terraform\n{tf}\n```\n\n");
    }
    // Hand-written sections (OpenTofu, say) go between the example and the schema.
    if let Some(sections) = example(&repo().join("templates/index.md")) {
        let _ = write!(out, "{sections}\n\n");
    }
    out.push_str("## Schema\n\n");
    let mut nested = Vec::new();
    render_block(&mut out, block, "", &mut nested);
    render_nested(&mut out, nested);
    format!("{}\n", out.trim_end())
}

#[test]
fn docs_match_the_schema() {
    let schema = provider_schema();
    let mut pages = vec![(repo().join("docs/index.md"), render_index(&schema))];
    let resources = schema["resource_schemas"]
        .as_object()
        .expect("resource schemas");
    for (name, resource) in resources {
        let short = name.trim_start_matches("humanitec_");
        pages.push((
            repo().join(format!("docs/resources/{short}.md")),
            render_resource(name, resource),
        ));
    }
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for (path, want) in pages {
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, want).unwrap();
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "docs out of date with the schema: {stale:?}; run UPDATE_DOCS=1 cargo test --test integration docs"
    );
}

#[test]
fn every_example_validates() {
    let examples = repo().join("examples");
    let mut dirs = vec![
        examples.join("provider"),
        examples.join("quickstart"),
        examples.join("direct-mode"),
        examples.join("quickstart-direct"),
    ];
    for entry in std::fs::read_dir(examples.join("resources")).unwrap() {
        dirs.push(entry.unwrap().path());
    }
    for dir in dirs {
        let mut main_tf = String::new();
        let mut has_terraform_block = false;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "tf") {
                let text = std::fs::read_to_string(&path).unwrap();
                has_terraform_block |= text.contains("required_providers");
                main_tf.push_str(&text);
                main_tf.push('\n');
            }
        }
        if !has_terraform_block {
            main_tf.insert_str(0, REQUIRED_PROVIDERS);
        }
        let work = Workdir::new(&main_tf);
        let run = work.tf(&["validate", "-no-color"]);
        assert_eq!(
            run.code,
            0,
            "{} does not validate:\n{}\n{}",
            dir.display(),
            run.stdout,
            run.stderr
        );
    }
}

/// Every attribute and block in a schema block, as `path.to.name`, with its description.
fn schema_names(block: &Json, prefix: &str, out: &mut Vec<(String, String)>) {
    for (key, kind) in [("attributes", None), ("block_types", Some("block"))] {
        if let Some(items) = block[key].as_object() {
            for (name, item) in items {
                let description = match kind {
                    Some(_) => item["block"]["description"].as_str(),
                    None => item["description"].as_str(),
                };
                let path = format!("{prefix}{name}");
                out.push((path.clone(), description.unwrap_or_default().to_string()));
                if kind.is_some() {
                    schema_names(&item["block"], &format!("{path}."), out);
                }
            }
        }
    }
}

/// Every attribute a docs page describes, as `path.to.name`: the bullets of its schema sections.
fn documented_names(page: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut prefix: Option<String> = None;
    for line in page.lines() {
        if line == "## Schema" {
            prefix = Some(String::new());
        } else if let Some(rest) = line.strip_prefix("### Nested Schema for `") {
            prefix = Some(format!("{}.", rest.trim_end_matches('`')));
        } else if line.starts_with("## ") {
            prefix = None;
        } else if let (Some(prefix), Some(rest)) = (&prefix, line.strip_prefix("- `"))
            && let Some((name, _)) = rest.split_once("` (")
        {
            names.push(format!("{prefix}{name}"));
        }
    }
    names
}

/// Independent of how the pages are generated: each page describes exactly the attributes its
/// schema has, every one of them with a description, and there is a page for exactly each
/// resource.
#[test]
fn docs_describe_exactly_the_schema() {
    let schema = provider_schema();
    let resources = schema["resource_schemas"]
        .as_object()
        .expect("resource schemas");
    let mut pages: Vec<String> = std::fs::read_dir(repo().join("docs/resources"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = resources
        .keys()
        .map(|name| format!("{}.md", name.trim_start_matches("humanitec_")))
        .collect();
    expected.sort();
    assert_eq!(pages, expected, "one page per resource type");

    let mut checks = vec![(
        "provider".to_string(),
        schema["provider"]["block"].clone(),
        repo().join("docs/index.md"),
    )];
    for (name, resource) in resources {
        let page = repo().join(format!(
            "docs/resources/{}.md",
            name.trim_start_matches("humanitec_")
        ));
        checks.push((name.clone(), resource["block"].clone(), page));
    }
    for (name, block, page) in checks {
        let mut in_schema = Vec::new();
        schema_names(&block, "", &mut in_schema);
        for (path, description) in &in_schema {
            assert!(
                !description.trim().is_empty(),
                "{name}: {path} has no description"
            );
        }
        let mut in_schema: Vec<String> = in_schema.into_iter().map(|(p, _)| p).collect();
        in_schema.sort();
        let mut in_docs = documented_names(&std::fs::read_to_string(&page).unwrap());
        in_docs.sort();
        let undocumented: Vec<_> = in_schema.iter().filter(|p| !in_docs.contains(p)).collect();
        let unknown: Vec<_> = in_docs.iter().filter(|p| !in_schema.contains(p)).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "{name}: not in {}: {undocumented:?}; described but not in the schema: {unknown:?}",
            page.display()
        );
    }
}
