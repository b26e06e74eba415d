//! `humanitec-sandbox`, the command: parses the flags into the library's [`Options`] (with their
//! validation and the usage text), starts the [`Sandbox`], prints its base URL as the only line on
//! stdout, and serves until SIGINT or SIGTERM.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use humanitec_sandbox::{Options, Sandbox, parse_kinds, parse_methods};

/// Parses the arguments, starts the sandbox, announces its URL and serves until a signal.
fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let options = match parse(&args) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            // Why: `--help` is asked for, so it goes to stdout. `write_all` rather than `print!`
            // keeps stdout writes explicit (the crate lints `print_stdout`).
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(USAGE.as_bytes());
            let _ = out.flush();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("humanitec-sandbox: {err}");
            eprintln!("Try `humanitec-sandbox --help`.");
            return ExitCode::from(2);
        }
    };
    // Why a runtime of its own for the signals: the sandbox serves on its own thread and runtime,
    // the same way it does for in-process tests; this one only waits.
    let signals = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("humanitec-sandbox: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let sandbox = match Sandbox::start(options) {
        Ok(sandbox) => sandbox,
        Err(err) => {
            eprintln!("humanitec-sandbox: {}", error_chain(&err));
            return ExitCode::FAILURE;
        }
    };
    // Why: callers (tests, scripts) read exactly one line from stdout to learn the port, so it is
    // written in one call and flushed at once; nothing else ever goes to stdout.
    let line = format!("{}\n", sandbox.url());
    {
        let mut out = std::io::stdout().lock();
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            eprintln!("humanitec-sandbox: cannot write the base URL to stdout");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("humanitec-sandbox: listening on {}", sandbox.url());
    signals.block_on(shutdown_signal());
    match sandbox.stop() {
        Ok(()) => {
            eprintln!("humanitec-sandbox: stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("humanitec-sandbox: {err}");
            ExitCode::FAILURE
        }
    }
}

/// An error's message followed by each of its sources, joined with ": ".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Why: without a working Ctrl-C handler, never resolve here; SIGTERM can still stop us.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    eprintln!("humanitec-sandbox: shutting down");
}

/// The usage text printed by `--help`.
const USAGE: &str = "\
humanitec-sandbox: a local, strict, in-memory Humanitec Resource Definitions API

USAGE:
    humanitec-sandbox [OPTIONS]

OPTIONS:
    --listen ADDR          address to listen on (default 127.0.0.1:0, a free port)
    --data FILE            load state from FILE if it exists; save it after every change
                           (removing on start FILE.tmp-PID files left by a sandbox killed
                           during a save). Each change rewrites and syncs the whole file, so
                           writes slow down as it grows: about 1,000 a second for a small file,
                           about 60 a second at 5 MB (optimised build; depends on the disk)
    --token TOKEN          accept only `Authorization: Bearer TOKEN` (default: any bearer token)
    --fault-rate F         chance 0..1 that an /orgs request gets an injected fault (default 0)
    --latency-ms N         delay every /orgs response by N milliseconds (default 0)
    --after-rate F         chance 0..1 that an /orgs request is processed (applied to the store)
                           and then its answer is delayed or lost (default 0)
    --after-kinds LIST     what happens then, one picked at random per faulted request, from
                           (comma-separated) delay, 502, 504, drop (default 502,504,drop):
                             delay  the real answer, sent after --after-delay-ms
                             502    an HTML 502 Bad Gateway page instead of the answer
                             504    an HTML 504 Gateway Timeout page, as from a load balancer
                                    that gave up waiting
                             drop   the connection is closed without any answer
    --after-methods LIST   only requests with these methods (comma-separated, from GET, POST, PUT,
                           PATCH, DELETE; default all), e.g. POST: every create applied, answer lost
    --after-delay-ms N     hold the answer N ms before it is sent, replaced or dropped (default 0;
                           `delay` needs more than 0)
    --seed N               seed for ids and fault injection (default: from the clock)
    --primary-store ID     id of the org's primary secret store (default sandbox-primary)
    -h, --help             print this help

On start, the base URL (e.g. http://127.0.0.1:43127/) is printed as the only line on stdout.
Logs go to stderr. SIGINT/SIGTERM stop the server (saving --data first).

Sandbox-only endpoints (no auth, no faults):
    PUT /_sandbox/orgs/{orgId}/resources/defs/{defId}/active-resources   [{app_id, env_id, res_id, ...}]
    GET /_sandbox/orgs/{orgId}/secrets
    GET /_sandbox/stats
    GET /_sandbox/faults,  PUT /_sandbox/faults   {\"rate\": 0.3, \"latency_ms\": 0, \"retry_after_secs\": 1,
        \"after_rate\": 1, \"after_kinds\": [\"drop\"], \"after_methods\": [\"POST\"], \"after_delay_ms\": 0}
        (every field optional; a PUT changes only the fields it names)

Faults: `--fault-rate` faults mostly come before a request is processed (429, 500, 502, 503; a
mutation may also be applied and then answered 502 or 503). `--after-*` faults always come after:
the change is in the store, whatever the client sees. Both can hit one request; the `--after-*`
fault then acts on the answer the `--fault-rate` fault made. `GET /_sandbox/stats` counts each kind
(`502_after`, `504_after`, `delay_after`, `drop_after`, ...).
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    /// Run the server with these options.
    Run(Options),
    /// Print the usage text and exit.
    Help,
}

/// A command-line error; `main` reports it and exits with status 2.
#[derive(Debug, PartialEq, thiserror::Error)]
enum CliError {
    /// An option nobody knows.
    #[error("unknown option `{0}`")]
    Unknown(String),
    /// An argument that is not an option.
    #[error("unexpected argument `{0}`")]
    Unexpected(String),
    /// An option given without its value.
    #[error("option `{0}` needs a value")]
    MissingValue(String),
    /// An option given twice.
    #[error("option `{0}` is given more than once")]
    Repeated(String),
    /// An option value that does not parse or is out of range.
    #[error("invalid value `{value}` for `{flag}`: {reason}")]
    Invalid {
        /// The option.
        flag: String,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// An argument that is not valid UTF-8.
    #[error("arguments must be valid UTF-8")]
    NotUtf8,
}

/// The options that take a value.
const VALUE_FLAGS: [&str; 11] = [
    "--listen",
    "--data",
    "--token",
    "--fault-rate",
    "--latency-ms",
    "--after-rate",
    "--after-kinds",
    "--after-methods",
    "--after-delay-ms",
    "--seed",
    "--primary-store",
];

/// Parses the arguments (without the program name).
fn parse(args: &[OsString]) -> Result<Command, CliError> {
    let mut config = Options::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut iter = args.iter();
    while let Some(raw) = iter.next() {
        let arg = raw.to_str().ok_or(CliError::NotUtf8)?;
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        // Why: accept both `--flag value` and `--flag=value`, like most CLIs.
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg, None),
        };
        let Some(flag) = VALUE_FLAGS.iter().copied().find(|f| *f == name) else {
            return Err(if arg.starts_with('-') {
                CliError::Unknown(name.to_owned())
            } else {
                CliError::Unexpected(arg.to_owned())
            });
        };
        if seen.contains(&flag) {
            return Err(CliError::Repeated(flag.to_owned()));
        }
        seen.push(flag);
        let value = match inline_value {
            Some(value) => value,
            None => iter
                .next()
                .ok_or_else(|| CliError::MissingValue(flag.to_owned()))?
                .to_str()
                .ok_or(CliError::NotUtf8)?
                .to_owned(),
        };
        apply(&mut config, flag, value)?;
    }
    if let Some(reason) = config.after.problem() {
        return Err(CliError::Invalid {
            flag: "--after-kinds".to_owned(),
            value: "delay".to_owned(),
            reason,
        });
    }
    Ok(Command::Run(config))
}

/// Stores one option's value into the configuration.
fn apply(config: &mut Options, flag: &'static str, value: String) -> Result<(), CliError> {
    let invalid = |reason: &'static str, value: &str| CliError::Invalid {
        flag: flag.to_owned(),
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("must not be empty", &value));
    }
    match flag {
        "--listen" => config.listen = value,
        "--data" => config.data = Some(PathBuf::from(value)),
        "--token" => config.token = Some(value),
        "--fault-rate" | "--after-rate" => {
            let rate: f64 = value.parse().map_err(|_| invalid("not a number", &value))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(invalid("must be between 0 and 1", &value));
            }
            if flag == "--fault-rate" {
                config.fault_rate = rate;
            } else {
                config.after.rate = rate;
            }
        }
        "--latency-ms" | "--after-delay-ms" => {
            let ms = value
                .parse()
                .map_err(|_| invalid("not a whole number of milliseconds", &value))?;
            if flag == "--latency-ms" {
                config.latency_ms = ms;
            } else {
                config.after.delay_ms = ms;
            }
        }
        "--after-kinds" => {
            config.after.kinds =
                parse_kinds(value.split(',')).map_err(|reason| invalid(reason, &value))?;
        }
        "--after-methods" => {
            config.after.methods =
                parse_methods(value.split(',')).map_err(|reason| invalid(reason, &value))?;
        }
        "--seed" => {
            config.seed = Some(
                value
                    .parse()
                    .map_err(|_| invalid("not an unsigned 64-bit integer", &value))?,
            );
        }
        "--primary-store" => config.primary_store = value,
        _ => return Err(CliError::Unknown(flag.to_owned())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use humanitec_sandbox::{AfterFaults, FaultKind};

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&args(&[])), Ok(Command::Run(Options::default())));
    }

    #[test]
    fn all_flags_both_forms() {
        let parsed = parse(&args(&[
            "--listen",
            "127.0.0.1:9999",
            "--data=/tmp/x.json",
            "--token",
            "t0k",
            "--fault-rate",
            "0.25",
            "--latency-ms=10",
            "--after-rate",
            "1",
            "--after-kinds=drop,delay",
            "--after-methods",
            "post,PUT",
            "--after-delay-ms",
            "20",
            "--seed",
            "7",
            "--primary-store",
            "vault-1",
        ]));
        let expected = Options {
            listen: "127.0.0.1:9999".to_owned(),
            data: Some(PathBuf::from("/tmp/x.json")),
            token: Some("t0k".to_owned()),
            fault_rate: 0.25,
            latency_ms: 10,
            after: AfterFaults {
                rate: 1.0,
                kinds: vec![FaultKind::Delayed, FaultKind::Dropped],
                methods: vec!["POST", "PUT"],
                delay_ms: 20,
            },
            seed: Some(7),
            primary_store: "vault-1".to_owned(),
            ..Options::default()
        };
        assert_eq!(parsed, Ok(Command::Run(expected)));
    }

    #[test]
    fn help_says_what_data_costs() {
        // Why a test: the cost of `--data` is the answer to "why are my writes slow?".
        assert!(USAGE.contains("rewrites and syncs the whole file"));
        assert!(USAGE.contains("FILE.tmp-PID"));
    }

    #[test]
    fn help() {
        assert_eq!(parse(&args(&["--token", "x", "--help"])), Ok(Command::Help));
        assert_eq!(parse(&args(&["-h"])), Ok(Command::Help));
    }

    #[test]
    fn bad_flags() {
        assert!(matches!(
            parse(&args(&["--nope"])),
            Err(CliError::Unknown(_))
        ));
        assert!(matches!(
            parse(&args(&["stray"])),
            Err(CliError::Unexpected(_))
        ));
        assert!(matches!(
            parse(&args(&["--token"])),
            Err(CliError::MissingValue(_))
        ));
        assert!(matches!(
            parse(&args(&["--seed", "1", "--seed", "2"])),
            Err(CliError::Repeated(_))
        ));
        for bad in [
            ["--fault-rate", "1.5"],
            ["--fault-rate", "-0.1"],
            ["--fault-rate", "NaN"],
            ["--fault-rate", "abc"],
            ["--latency-ms", "-1"],
            ["--after-rate", "2"],
            ["--after-kinds", "503"],
            ["--after-kinds", ","],
            ["--after-methods", "HEAD"],
            ["--after-delay-ms", "soon"],
            // `delay` without a delay does nothing, so it is refused.
            ["--after-kinds", "delay"],
            ["--seed", "x"],
            ["--token", ""],
        ] {
            assert!(
                matches!(parse(&args(&bad)), Err(CliError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
