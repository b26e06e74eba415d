//! Provider settings: where they come from and what a resource gets once they are resolved.
//!
//! Each setting is taken from the provider block, else from its environment variable, else from
//! the humctl configuration file (`~/.humctl`, as the official provider and `humctl` read it),
//! else its default. Missing settings are not an error at configure time: a configuration that
//! only plans, or only uses direct mode, never needs a token. The error comes when a resource
//! first needs the API, and it names the attribute and the variable that would fix it.

use std::path::{Path, PathBuf};

use crate::humanitec::{Client, ClientConfig, DEFAULT_API_PREFIX};
use terraform_plugin::framework::Diagnostics;
use terraform_plugin::value::{AttributePath, Value};

/// How the provider realises resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Resources become Humanitec Resource Definitions through the API.
    Api,
    /// No platform: the provider runs container runner Jobs on the cluster itself.
    Direct,
}

impl Mode {
    /// Parses the name users write, `api` or `direct`.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "api" => Some(Self::Api),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }

    /// The name users write.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Direct => "direct",
        }
    }
}

/// One setting's resolved value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Setting {
    /// Found, with its value.
    Set(String),
    /// Not configured anywhere.
    Missing,
    /// Configured from a value Terraform does not know yet.
    Unknown,
}

/// The provider's settings after resolution.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The organization id (`org_id` / `HUMANITEC_ORG`).
    pub(crate) org_id: Setting,
    /// The API token (`token` / `HUMANITEC_TOKEN`); never printed.
    pub(crate) token: Setting,
    /// The API base URL (`api_prefix` / `HUMANITEC_API_PREFIX`).
    pub(crate) api_prefix: Setting,
    /// api or direct.
    pub(crate) mode: Mode,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = match self.token {
            Setting::Set(_) => "<set>",
            Setting::Missing => "<missing>",
            Setting::Unknown => "<unknown>",
        };
        f.debug_struct("Settings")
            .field("org_id", &self.org_id)
            .field("token", &token)
            .field("api_prefix", &self.api_prefix)
            .field("mode", &self.mode)
            .finish()
    }
}

/// The humctl configuration file's fields this provider reads.
#[derive(Debug, Default, serde::Deserialize)]
struct HumctlFile {
    #[serde(rename = "apiPrefix")]
    api_prefix: Option<String>,
    org: Option<String>,
    token: Option<String>,
}

/// Resolves the settings from the provider block, the environment (`env`) and the humctl file.
pub(crate) fn resolve(
    config: &Value,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> Settings {
    let file_path = match config.get("config") {
        Value::String(path) => Some(expand_home(path, env)),
        _ => env("HOME").map(|home| Path::new(&home).join(".humctl")),
    };
    let file = file_path
        .as_deref()
        .map(|path| read_humctl(path, config.get("config").is_null(), diags))
        .unwrap_or_default();
    let pick = |attribute: &str, variables: &[&str], from_file: Option<String>| -> Setting {
        match config.get(attribute) {
            Value::Unknown => return Setting::Unknown,
            Value::String(s) if !s.is_empty() => return Setting::Set(s.clone()),
            _ => {}
        }
        for variable in variables {
            if let Some(value) = env(variable).filter(|v| !v.is_empty()) {
                return Setting::Set(value);
            }
        }
        from_file
            .filter(|v| !v.is_empty())
            .map_or(Setting::Missing, Setting::Set)
    };
    let mode = match config.get("mode").as_str() {
        Some("direct") => Mode::Direct,
        _ => Mode::Api,
    };
    Settings {
        org_id: pick("org_id", &["HUMANITEC_ORG"], file.org),
        token: pick("token", &["HUMANITEC_TOKEN"], file.token),
        api_prefix: match pick("api_prefix", &["HUMANITEC_API_PREFIX"], file.api_prefix) {
            Setting::Missing => Setting::Set(DEFAULT_API_PREFIX.to_string()),
            other => other,
        },
        mode,
    }
}

fn expand_home(path: &str, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match (path.strip_prefix("~/"), env("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads the humctl file; a missing default file is silent, an unreadable one is a warning.
fn read_humctl(path: &Path, is_default: bool, diags: &mut Diagnostics) -> HumctlFile {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_default => {
            return HumctlFile::default();
        }
        Err(e) => {
            diags.warning_at(
                AttributePath::root().attribute("config"),
                "Could not read the humctl configuration",
                format!("{}: {e}. Settings from it are ignored.", path.display()),
            );
            return HumctlFile::default();
        }
    };
    crate::yaml::from_str(&text).unwrap_or_else(|e| {
        diags.warning_at(
            AttributePath::root().attribute("config"),
            "Could not parse the humctl configuration",
            format!(
                "{} is not valid humctl YAML ({e}). Settings from it are ignored.",
                path.display()
            ),
        );
        HumctlFile::default()
    })
}

impl Settings {
    /// Builds an API client, or explains which setting is missing and how to provide it.
    pub(crate) fn client(&self) -> Result<Client, Diagnostics> {
        let mut diags = Diagnostics::new();
        let mut need = |setting: &Setting, attribute: &str, variable: &str, what: &str| {
            match setting {
                Setting::Set(value) => Some(value.clone()),
                Setting::Missing => {
                    diags.error_at(
                    AttributePath::root().attribute(attribute),
                    format!("Missing Humanitec {what}"),
                    format!(
                        "This resource talks to the Humanitec API, which needs the {what}. Set \
                         `{attribute}` in the provider block, or the {variable} environment variable."
                    ),
                );
                    None
                }
                Setting::Unknown => {
                    diags.error_at(
                    AttributePath::root().attribute(attribute),
                    format!("Humanitec {what} not known yet"),
                    format!(
                        "The provider's `{attribute}` depends on a value that is only known after \
                         apply. Apply the resources it depends on first (terraform apply -target=…)."
                    ),
                );
                    None
                }
            }
        };
        let org_id = need(&self.org_id, "org_id", "HUMANITEC_ORG", "organization id");
        let token = need(&self.token, "token", "HUMANITEC_TOKEN", "API token");
        let api_prefix = need(
            &self.api_prefix,
            "api_prefix",
            "HUMANITEC_API_PREFIX",
            "API prefix",
        );
        let (Some(org_id), Some(token), Some(api_prefix)) = (org_id, token, api_prefix) else {
            return Err(diags);
        };
        // Why: a token read with file() keeps its newline, and the API then refuses every call
        // with a 401 that does not say why. The token itself is never shown.
        if token != token.trim() {
            diags.error_at(
                AttributePath::root().attribute("token"),
                "The Humanitec API token has leading or trailing white space",
                "The token starts or ends with a space or a line break, often left by reading it \
                 from a file; wrap it in trimspace(), e.g. token = trimspace(file(\"token.txt\")).",
            );
        }
        if !(api_prefix.starts_with("https://") || api_prefix.starts_with("http://")) {
            diags.error_at(
                AttributePath::root().attribute("api_prefix"),
                "The Humanitec API prefix is not a URL",
                format!(
                    "api_prefix must be a URL with its scheme, such as https://api.humanitec.io/; \
                     {api_prefix:?} has none."
                ),
            );
        }
        if diags.has_errors() {
            return Err(diags);
        }
        let user_agent = format!("terraform-provider-humanitec/{}", env!("CARGO_PKG_VERSION"));
        let config = ClientConfig::new(api_prefix, org_id, token, user_agent);
        Client::new(config).map_err(|e| {
            let mut diags = Diagnostics::new();
            diags.error_at(
                AttributePath::root().attribute("api_prefix"),
                "Invalid Humanitec API settings",
                e.to_string(),
            );
            diags
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn config(pairs: &[(&str, Value)]) -> Value {
        let mut all: Vec<(&str, Value)> = ["org_id", "token", "api_prefix", "mode", "config"]
            .iter()
            .map(|k| (*k, Value::Null))
            .collect();
        for (k, v) in pairs {
            if let Some(slot) = all.iter_mut().find(|(name, _)| name == k) {
                slot.1 = v.clone();
            }
        }
        Value::object(all)
    }

    #[test]
    fn a_token_with_white_space_or_a_prefix_without_scheme_is_named_never_shown() {
        let settings = Settings {
            org_id: Setting::Set("my-org".into()),
            token: Setting::Set("s3cret-token\n".into()),
            api_prefix: Setting::Set("api.humanitec.io".into()),
            mode: Mode::Api,
        };
        let Err(diags) = settings.client() else {
            panic!("settings with problems made a client");
        };
        let found: Vec<String> = diags
            .iter()
            .map(|d| {
                format!(
                    "{} | {} | {}",
                    d.attribute.as_ref().unwrap(),
                    d.summary,
                    d.detail
                )
            })
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("token |") && found[0].contains("trimspace("),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("api_prefix |") && found[1].contains("https://"),
            "{found:?}"
        );
        assert!(!found.iter().any(|f| f.contains("s3cret")), "{found:?}");
    }

    #[test]
    fn block_beats_environment_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".humctl"),
            "org: file-org\ntoken: file-token\napiPrefix: http://file/\n",
        )
        .unwrap();
        let home = dir.path().to_str().unwrap().to_string();
        let mut diags = Diagnostics::new();

        let env = env_of(&[("HOME", &home)]);
        let s = resolve(&config(&[]), &env, &mut diags);
        assert_eq!(s.org_id, Setting::Set("file-org".into()));
        assert_eq!(s.api_prefix, Setting::Set("http://file/".into()));

        let env = env_of(&[("HOME", &home), ("HUMANITEC_ORG", "env-org")]);
        let s = resolve(&config(&[]), &env, &mut diags);
        assert_eq!(s.org_id, Setting::Set("env-org".into()));
        assert_eq!(s.token, Setting::Set("file-token".into()));

        let s = resolve(
            &config(&[("org_id", Value::string("block-org"))]),
            &env,
            &mut diags,
        );
        assert_eq!(s.org_id, Setting::Set("block-org".into()));
        assert!(diags.is_empty());
    }

    #[test]
    fn defaults_unknowns_and_missing_settings() {
        let mut diags = Diagnostics::new();
        let env = env_of(&[]);
        let s = resolve(
            &config(&[("token", Value::Unknown), ("mode", Value::string("direct"))]),
            &env,
            &mut diags,
        );
        assert_eq!(s.api_prefix, Setting::Set(DEFAULT_API_PREFIX.into()));
        assert_eq!(s.org_id, Setting::Missing);
        assert_eq!(s.token, Setting::Unknown);
        assert_eq!(s.mode, Mode::Direct);
        let err = s.client().unwrap_err();
        let text: Vec<String> = err.iter().map(ToString::to_string).collect();
        assert!(
            text[0].starts_with("org_id: Missing Humanitec organization id"),
            "{text:?}"
        );
        assert!(text[0].contains("HUMANITEC_ORG"));
        assert!(
            text[1].starts_with("token: Humanitec API token not known yet"),
            "{text:?}"
        );
    }

    #[test]
    fn token_never_shows_in_debug_output() {
        let mut diags = Diagnostics::new();
        let s = resolve(
            &config(&[("token", Value::string("s3cr3t-token"))]),
            &env_of(&[]),
            &mut diags,
        );
        assert!(!format!("{s:?}").contains("s3cr3t-token"));
    }

    #[test]
    fn explicit_unreadable_file_warns() {
        let mut diags = Diagnostics::new();
        resolve(
            &config(&[("config", Value::string("/nonexistent/humctl"))]),
            &env_of(&[]),
            &mut diags,
        );
        assert!(!diags.has_errors());
        assert!(!diags.is_empty());
    }
}
