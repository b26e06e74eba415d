//! The resource requests and limits of the provider's own containers in a run's pod (`prepare`
//! and `collect`): their defaults, the runner config's overrides, and the checks that make a
//! bad quantity a plan-time error rather than a pod the API server refuses.
//!
//! Why every helper container has requests and limits for CPU and memory by default: a
//! namespace with a ResourceQuota on `requests.*` or `limits.*` refuses a pod any of whose
//! containers leaves one of them out ("must specify limits.cpu for: collect,prepare"), and such
//! quotas are usual in production. The user's `main` container stays the user's: its resources
//! come from `job.pod_template` only.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The resources of one container: resource name (`cpu`, `memory`, `ephemeral-storage`, …) →
/// quantity (`100m`, `128Mi`, …).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ContainerResources {
    /// `resources.requests`.
    pub(crate) requests: BTreeMap<String, String>,
    /// `resources.limits`.
    pub(crate) limits: BTreeMap<String, String>,
}

/// The resources of the two helper containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HelperResources {
    /// The `prepare` init container (git checkout, files).
    pub(crate) prepare: ContainerResources,
    /// The `collect` sidecar (idle until `main` ends, then one API request).
    pub(crate) collect: ContainerResources,
}

/// `prepare`'s defaults. Why these: a shallow checkout of a large repository takes git a few
/// hundred MiB at most; CPU only speeds it up.
const PREPARE_REQUESTS: [(&str, &str); 2] = [("cpu", "100m"), ("memory", "128Mi")];
const PREPARE_LIMITS: [(&str, &str); 2] = [("cpu", "1"), ("memory", "512Mi")];
/// `collect`'s defaults. Why these: it sleeps until `main` has ended, then reads at most 1 MiB
/// of results and writes one Secret; it was measured at under 10 MiB resident.
const COLLECT_REQUESTS: [(&str, &str); 2] = [("cpu", "10m"), ("memory", "32Mi")];
const COLLECT_LIMITS: [(&str, &str); 2] = [("cpu", "100m"), ("memory", "64Mi")];

fn map(pairs: [(&str, &str); 2]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Default for HelperResources {
    fn default() -> Self {
        HelperResources {
            prepare: ContainerResources {
                requests: map(PREPARE_REQUESTS),
                limits: map(PREPARE_LIMITS),
            },
            collect: ContainerResources {
                requests: map(COLLECT_REQUESTS),
                limits: map(COLLECT_LIMITS),
            },
        }
    }
}

/// The defaults as the markdown the schema's descriptions show.
pub(crate) fn defaults_markdown(step: &str) -> String {
    let (requests, limits) = match step {
        "prepare" => (PREPARE_REQUESTS, PREPARE_LIMITS),
        _ => (COLLECT_REQUESTS, COLLECT_LIMITS),
    };
    let show = |pairs: [(&str, &str); 2]| {
        let inner: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k} = \"{v}\""))
            .collect();
        format!("`{{ {} }}`", inner.join(", "))
    };
    format!("requests {}, limits {}", show(requests), show(limits))
}

impl ContainerResources {
    /// The container's `resources` field.
    pub(crate) fn to_json(&self) -> Value {
        json!({"requests": self.requests, "limits": self.limits})
    }
}

/// A quantity or resource name that Kubernetes would refuse, or a request above its limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{attribute}: {problem}")]
pub(crate) struct ResourcesError {
    /// Where, in the user's words (`helper_resources.prepare.limits`).
    pub(crate) attribute: String,
    /// What is wrong, and what would be right.
    pub(crate) problem: String,
}

/// Checks one step's resources: names, quantities, and that no request exceeds its limit.
/// `attribute` is the step's block (`helper_resources.prepare`); `set` says which maps the
/// user gave, so that a limit that comes from the defaults is named as such.
pub(crate) fn check(
    attribute: &str,
    resources: &ContainerResources,
    set: (bool, bool),
) -> Result<(), ResourcesError> {
    for (kind, values) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        for (name, quantity) in values {
            let error = |problem: String| ResourcesError {
                attribute: format!("{attribute}.{kind}"),
                problem,
            };
            if !is_resource_name(name) {
                return Err(error(format!(
                    "{name:?} is not a resource name; use `cpu`, `memory`, \
                     `ephemeral-storage` or an extended resource such as `example.com/gpu`"
                )));
            }
            if parse_quantity(quantity).is_none() {
                return Err(error(format!(
                    "{name} = {quantity:?} is not a Kubernetes quantity; write it like \"250m\" \
                     or \"1\" (CPU cores), \"128Mi\" or \"1Gi\" (bytes)"
                )));
            }
        }
    }
    for (name, request) in &resources.requests {
        let Some(limit) = resources.limits.get(name) else {
            continue;
        };
        if let (Some(r), Some(l)) = (parse_quantity(request), parse_quantity(limit))
            && r > l
        {
            let whose = if set.1 { "" } else { " (the default)" };
            return Err(ResourcesError {
                attribute: format!("{attribute}.requests"),
                problem: format!(
                    "{name} = {request:?} is more than its limit {limit:?}{whose}; Kubernetes \
                     refuses a request above its limit, so raise {attribute}.limits.{name} too"
                ),
            });
        }
    }
    Ok(())
}

/// Whether `name` is a resource name Kubernetes takes: a qualified name, optionally with a
/// DNS-subdomain prefix (`example.com/gpu`).
fn is_resource_name(name: &str) -> bool {
    let (prefix, name) = match name.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, name),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    name_ok && prefix_ok
}

/// A Kubernetes quantity's value (`100m` → 0.1, `1Ki` → 1024, `1e3` → 1000), or `None` when it
/// does not parse. Why `f64`: it only orders a request against its limit.
pub(crate) fn parse_quantity(text: &str) -> Option<f64> {
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    let unsigned = number.strip_prefix(['+', '-']).unwrap_or(number);
    let well_formed = !unsigned.is_empty()
        && unsigned != "."
        && unsigned.chars().filter(|c| *c == '.').count() <= 1
        && unsigned.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !well_formed {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let power = exponent
                .strip_prefix(['e', 'E'])?
                .parse::<i32>()
                .ok()
                .filter(|p| p.abs() <= 30)?;
            10f64.powi(power)
        }
    };
    // Why not negative: a negative request or limit is refused by the API server.
    (value >= 0.0).then_some(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_as_kubernetes_reads_them() {
        let cases = [
            ("100m", Some(0.1)),
            ("1", Some(1.0)),
            ("1.5", Some(1.5)),
            (".5", Some(0.5)),
            ("128Mi", Some(128.0 * 1024.0 * 1024.0)),
            ("1Gi", Some(1024f64.powi(3))),
            ("1G", Some(1e9)),
            ("2k", Some(2000.0)),
            ("1e3", Some(1000.0)),
            ("+1", Some(1.0)),
            ("", None),
            ("Mi", None),
            ("1.2.3", None),
            ("1 Gi", None),
            ("1gb", None),
            ("-1", None),
            ("1KB", None),
            ("one", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_quantity(text), want, "{text:?}");
        }
    }

    #[test]
    fn the_defaults_are_valid_and_complete() {
        let defaults = HelperResources::default();
        for (step, resources) in [
            ("prepare", &defaults.prepare),
            ("collect", &defaults.collect),
        ] {
            check(step, resources, (false, false)).expect("valid defaults");
            for map in [&resources.requests, &resources.limits] {
                // A quota on requests.* or limits.* needs both in every container.
                assert!(
                    map.contains_key("cpu") && map.contains_key("memory"),
                    "{step}"
                );
            }
        }
        assert_eq!(
            defaults_markdown("prepare"),
            "requests `{ cpu = \"100m\", memory = \"128Mi\" }`, limits `{ cpu = \"1\", memory = \"512Mi\" }`"
        );
    }

    #[test]
    fn bad_resources_are_named() {
        let resources = |requests: &[(&str, &str)], limits: &[(&str, &str)]| ContainerResources {
            requests: requests
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            limits: limits
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let at = "helper_resources.prepare";
        let cases: Vec<(ContainerResources, (bool, bool), &str)> = vec![
            (
                resources(&[("memory", "1 GB")], &[]),
                (true, false),
                "helper_resources.prepare.requests: memory = \"1 GB\" is not a Kubernetes quantity",
            ),
            (
                resources(&[], &[("CPU cores", "1")]),
                (false, true),
                "helper_resources.prepare.limits: \"CPU cores\" is not a resource name",
            ),
            (
                resources(&[("memory", "1Gi")], &[("memory", "512Mi")]),
                (true, false),
                "helper_resources.prepare.requests: memory = \"1Gi\" is more than its limit \"512Mi\" (the default); Kubernetes refuses a request above its limit, so raise helper_resources.prepare.limits.memory too",
            ),
        ];
        for (given, set, want) in cases {
            let error = check(at, &given, set).expect_err(want);
            assert!(error.to_string().starts_with(want), "{error}");
        }
        let fine = resources(
            &[("cpu", "250m"), ("example.com/gpu", "1")],
            &[("cpu", "2"), ("ephemeral-storage", "1Gi")],
        );
        assert_eq!(check(at, &fine, (true, true)), Ok(()));
    }
}
