//! The docs in `docs/` are generated from the provider's schema (as Terraform reports it with
//! `terraform providers schema -json`) and the files under `examples/`; this test fails when they
//! drift apart. Regenerate them with `UPDATE_DOCS=1 cargo test --test integration docs`.
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
    all["provider_schemas"]["registry.terraform.io/container-runner/humanitec"].clone()
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
    let mut dirs = vec![examples.join("provider"), examples.join("quickstart")];
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
