//! `humanitec-sandbox`: a local, strict, in-memory implementation of the Humanitec Resource
//! Definitions API (`/orgs/{orgId}/resources/defs…`, spec v0.28.37) for tests and offline use of the
//! provider.
//!
//! This file is the entry point. It parses the command line, binds the listener, prints the base URL
//! (the only line ever written to stdout) and runs the server until SIGINT or SIGTERM. The binary is
//! self-contained and does not use the provider's library crate.
//!
//! Modules: `cli` (flags), `server` (HTTP, auth, faults, admin endpoints), `faults` (fault kinds,
//! the after-processing fault settings, connections a fault can drop), `api` (the operations),
//! `schema` (strict request validation), `secrets` (secrets stored, answered as refs), `model` (data and
//! response bodies), `persist` (`--data`), `error`, `clock`, `rng`. Tests: `tests_behaviour`,
//! `tests_openapi` (spec conformance against `tests/data/humanitec-openapi.json`), `test_support`.
//!
//! Behaviour the spec leaves open, as the sandbox settles it:
//! - An invalid org id is a 404. An empty, malformed or wrong-kind body (e.g. an array for an object)
//!   is a 422. Schema violations are 400. `null` on an optional property counts as absent (Go semantics).
//! - A matching rule must be unique per Resource Type across live definitions (409), as the spec's
//!   `MatchingCriteriaResponse` note says. Replacing criteria keeps the ids of rules that stay.
//! - Deleting a criterion conflicts only for Active Resources that would then match another
//!   definition (or none); `to_def` is `""` when none would match.
//! - `proposed: true` on PUT/PATCH leaves the active definition unchanged (versions are not modelled).
//! - PATCH merges `driver_inputs.values` as an RFC 7386 merge patch. `secret_refs: null` drops all refs,
//!   and `secrets: null` is ignored.
//! - `GET …/{defId}/resources` for an unknown definition is `200 []`, the only status the spec declares.
//!   Clearing the Active Resources of a soft-deleted definition removes it for good.
//! - An injected 502 or 504 has an HTML body (as from a proxy). Faults come before auth; faults
//!   after processing act on whatever answer the request got, error or not.

mod api;
mod cli;
mod clock;
mod error;
mod faults;
mod model;
mod persist;
mod rng;
mod schema;
mod secrets;
mod server;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests_behaviour;
#[cfg(test)]
mod tests_openapi;

use std::io::Write;
use std::process::ExitCode;

/// Parses the arguments, then runs the server on a multi-threaded Tokio runtime.
fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let config = match cli::parse(&args) {
        Ok(cli::Command::Run(config)) => config,
        Ok(cli::Command::Help) => {
            // Why: `--help` is asked for, so it goes to stdout. `write_all` rather than `print!` keeps
            // stdout writes explicit (the crate lints `print_stdout`).
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(cli::USAGE.as_bytes());
            let _ = out.flush();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("humanitec-sandbox: {err}");
            eprintln!("Try `humanitec-sandbox --help`.");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("humanitec-sandbox: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

/// Loads the data, binds, announces the base URL and serves until a shutdown signal arrives.
async fn run(config: cli::Config) -> ExitCode {
    let app = match server::App::new(&config).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("humanitec-sandbox: {err}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&config.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "humanitec-sandbox: cannot listen on {}: {err}",
                config.listen
            );
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("humanitec-sandbox: cannot read the listening address: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Why: callers (tests, scripts) read exactly one line from stdout to learn the port, so it is
    // written in one call and flushed at once; nothing else ever goes to stdout.
    let line = format!("http://{addr}/\n");
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
    eprintln!("humanitec-sandbox: listening on http://{addr}/");
    match server::serve(app, listener, shutdown_signal()).await {
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
