//! `kube-testworld`: starts the test world by hand. Prints the kubeconfig path (the only line on
//! stdout) and serves until SIGINT or SIGTERM. Logs go to stderr (`KUBE_TESTWORLD_LOG=debug`
//! for every request).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str =
    "usage: kube-testworld [--port N] [--http] [--kubelet] [--dir DIR] [--bookmark-seconds N]

Starts a local Kubernetes test world on 127.0.0.1 and prints the path of its kubeconfig.
  --port N              port to listen on (default: any free port)
  --http                serve plain HTTP instead of HTTPS
  --kubelet             run pods' containers with podman (CONTAINERS_CONF is honoured)
  --dir DIR             write kubeconfig and ca.crt into DIR (default: a temporary directory)
  --bookmark-seconds N  interval of watch bookmarks (default 5)
";

/// A logger that writes `level target: message` lines to stderr.
struct StderrLogger(log::LevelFilter);

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.0
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) && record.target().starts_with("kube_testworld") {
            let _ = writeln!(std::io::stderr(), "{} {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

fn parse(args: &[String]) -> Result<Option<kube_testworld::Options>, String> {
    let mut options = kube_testworld::Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--http" => options.plain_http = true,
            "--kubelet" => options.kubelet = true,
            "--port" => {
                options.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--dir" => options.dir = Some(PathBuf::from(value("--dir")?)),
            "--bookmark-seconds" => {
                let secs: u64 = value("--bookmark-seconds")?
                    .parse()
                    .map_err(|e| format!("--bookmark-seconds: {e}"))?;
                options.bookmark_interval = Duration::from_secs(secs.max(1));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(options))
}

fn main() -> ExitCode {
    let level = match std::env::var("KUBE_TESTWORLD_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("warn") => log::LevelFilter::Warn,
        _ => log::LevelFilter::Info,
    };
    if log::set_boxed_logger(Box::new(StderrLogger(level))).is_ok() {
        log::set_max_level(level);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            let _ = std::io::stdout().write_all(USAGE.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "kube-testworld: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let world = match kube_testworld::TestWorld::start(options) {
        Ok(w) => w,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            let _ = writeln!(std::io::stderr(), "kube-testworld: {message}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", world.kubeconfig_path().display());
        let _ = out.flush();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "kube-testworld: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    });
    drop(world);
    ExitCode::SUCCESS
}
