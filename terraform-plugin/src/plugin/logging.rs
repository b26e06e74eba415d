//! Logging for a process whose stdout belongs to the plugin handshake.
//!
//! go-plugin reads each line the plugin writes to stderr and, when the line is an hclog JSON
//! object (`{"@level":"debug","@message":"…","@timestamp":"…"}`), re-logs it at that level in
//! Terraform's own log. So every record becomes one JSON line on stderr, and nothing is ever
//! written to stdout. The level comes from `TF_LOG_PROVIDER`, then `TF_LOG` (the same variables
//! Terraform uses), defaulting to `info`; Terraform filters again on its side.
//!
//! Other crates log here too: a client library's `tracing` events (kube's, say) arrive through
//! tracing's `log` feature (no tracing subscriber is installed). The records of the crates the
//! provider names as its chatty dependencies ([`ProviderIdentity::dependency_log_targets`]) are
//! kept at DEBUG at most (a request's method and URL, a watch that ended), the rest of other
//! crates' records (h2, hyper, tonic, span enter and exit) at TRACE, so that neither floods an
//! INFO log nor takes the provider's own levels.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::ProviderIdentity;

/// The stderr logger in hclog's JSON line format.
struct HclogLogger {
    level: LevelFilter,
    origins: Origins,
}

/// Whose records keep which level: by the module path they were made in.
#[derive(Clone, Copy)]
struct Origins {
    /// The provider's own code (and this crate's): logged at the record's level.
    own: &'static [&'static str],
    /// Dependencies whose records are kept at DEBUG at most.
    dependencies: &'static [&'static str],
}

/// This crate's module path: its records count as the provider's own.
const FRAMEWORK_TARGET: &str = "terraform_plugin";

/// Installs the hclog logger as the process logger.
///
/// Calling it twice is harmless: the second call keeps the first logger.
pub(crate) fn init(identity: &ProviderIdentity) {
    let level = level_from_env(
        std::env::var("TF_LOG_PROVIDER").ok().as_deref(),
        std::env::var("TF_LOG").ok().as_deref(),
    );
    let origins = Origins {
        own: identity.log_targets,
        dependencies: identity.dependency_log_targets,
    };
    if log::set_boxed_logger(Box::new(HclogLogger { level, origins })).is_ok() {
        log::set_max_level(level);
    }
}

/// Picks the log level from `TF_LOG_PROVIDER` (preferred) or `TF_LOG`.
///
/// `TF_LOG=json` means trace in Terraform, so it does here too; an unknown word means `info`.
fn level_from_env(provider: Option<&str>, general: Option<&str>) -> LevelFilter {
    let word = provider
        .filter(|s| !s.is_empty())
        .or(general.filter(|s| !s.is_empty()));
    match word.map(str::to_ascii_lowercase).as_deref() {
        Some("trace") | Some("json") => LevelFilter::Trace,
        Some("debug") => LevelFilter::Debug,
        Some("warn") => LevelFilter::Warn,
        Some("error") => LevelFilter::Error,
        Some("off") => LevelFilter::Off,
        _ => LevelFilter::Info,
    }
}

/// The level a record is logged at: the provider's own as it is; a named dependency's at most
/// DEBUG (the enter and exit of its spans at TRACE); every other crate's at TRACE. `module` is
/// where the record was made, which tracing's span records carry (their target is
/// `tracing::span`).
fn effective_level(origins: Origins, level: Level, target: &str, module: Option<&str>) -> Level {
    let origin = module.unwrap_or(target);
    let ours = |name: &str| {
        name.starts_with(FRAMEWORK_TARGET) || origins.own.iter().any(|own| name.starts_with(own))
    };
    if ours(target) {
        level
    } else if target == "tracing::span::active" {
        Level::Trace
    } else if origins
        .dependencies
        .iter()
        .any(|dependency| origin.starts_with(dependency))
    {
        level.max(Level::Debug)
    } else {
        Level::Trace
    }
}

impl Log for HclogLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Why by target only, and generously for spans: the module that decides a span's level
        // is known in `log`, not here.
        let target = metadata.target();
        let level = if target == "tracing::span" {
            metadata.level().max(Level::Debug)
        } else {
            effective_level(self.origins, metadata.level(), target, None)
        };
        level <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        let level = effective_level(
            self.origins,
            record.level(),
            record.target(),
            record.module_path(),
        );
        if level > self.level {
            return;
        }
        let target = record
            .module_path()
            .filter(|_| record.target().starts_with("tracing::span"))
            .unwrap_or(record.target());
        let line = format_line(level, target, &record.args().to_string());
        // Why ignore the result: a closed stderr must never take the provider down.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Renders one record as an hclog JSON line, newline included.
fn format_line(level: Level, target: &str, message: &str) -> String {
    let level = match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    };
    let line = serde_json::json!({
        "@level": level,
        "@message": message,
        "@module": format!("provider.{}", target.replace("::", ".")),
        "@timestamp": rfc3339_now(),
    });
    format!("{line}\n")
}

/// The current UTC time as RFC 3339 with microseconds, as hclog writes it.
pub(crate) fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_micros())
}

/// Formats seconds since the Unix epoch (UTC) and microseconds as RFC 3339.
fn rfc3339(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 into a (year, month, day) civil date.
///
/// Why by hand: it is the one date computation the provider needs, and it is ten lines
/// (Howard Hinnant's `civil_from_days`), cheaper than a date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_prefers_provider_variable_and_defaults_to_info() {
        let cases = [
            (None, None, LevelFilter::Info),
            (None, Some("DEBUG"), LevelFilter::Debug),
            (Some("trace"), Some("error"), LevelFilter::Trace),
            (Some(""), Some("warn"), LevelFilter::Warn),
            (None, Some("json"), LevelFilter::Trace),
            (None, Some("nonsense"), LevelFilter::Info),
            (Some("off"), None, LevelFilter::Off),
        ];
        for (provider, general, want) in cases {
            assert_eq!(
                level_from_env(provider, general),
                want,
                "{provider:?} {general:?}"
            );
        }
    }

    #[test]
    fn other_crates_log_at_debug_or_trace() {
        use Level::*;
        let origins = Origins {
            own: &["example_provider", "terraform_provider_example"],
            dependencies: &["kube"],
        };
        let cases = [
            (Info, "example_provider::runner::run", None, Info),
            (Warn, "terraform_provider_example", None, Warn),
            (Debug, "terraform_plugin::framework::server", None, Debug),
            (Error, "kube_client::client::builder", None, Debug),
            (Trace, "kube_runtime::watcher", None, Trace),
            (
                Debug,
                "tracing::span",
                Some("kube_client::client::builder"),
                Debug,
            ),
            (
                Debug,
                "tracing::span::active",
                Some("kube_client::client::builder"),
                Trace,
            ),
            (Info, "h2::proto", None, Trace),
            (Debug, "tracing::span", Some("tonic::transport"), Trace),
        ];
        for (level, target, module, want) in cases {
            assert_eq!(
                effective_level(origins, level, target, module),
                want,
                "{target}"
            );
        }
    }

    #[test]
    fn line_is_hclog_json() {
        let line = format_line(Level::Debug, "terraform_plugin::plugin", "hello \"x\"");
        assert!(line.ends_with('\n'));
        let parsed: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(parsed["@level"], "debug");
        assert_eq!(parsed["@message"], "hello \"x\"");
        assert_eq!(parsed["@module"], "provider.terraform_plugin.plugin");
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(rfc3339(1_795_815_125, 0), "2026-11-27T21:32:05.000000Z");
    }
}
