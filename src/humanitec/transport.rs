//! One HTTP exchange with the Humanitec API, and the step of the retry loop around it: send,
//! read the whole answer, classify it (final, or worth another attempt), log it, and wait before
//! the next attempt.
//!
//! Endpoint logic lives in the parent module; it drives [`Transport::step`] itself when it must do
//! something between attempts (look for a create that may already have happened), and uses
//! [`Transport::exchange`] otherwise.
//!
//! Logging: method, path, status, attempt number and wait only, at `debug`. Never a body (bodies
//! carry secrets) and never a header (one carries the token).

use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Url};

use super::error::{Error, api_error};
use super::retry::{Budget, is_retryable_status, parse_retry_after};

/// One request, ready to be sent as many times as needed.
///
/// `Debug` shows the body's length only: bodies carry secrets.
pub(crate) struct Call<'a> {
    /// HTTP method.
    pub(crate) method: Method,
    /// Full URL, query included.
    pub(crate) url: Url,
    /// JSON body, if any.
    pub(crate) body: Option<&'a [u8]>,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("body_bytes", &self.body.map(<[u8]>::len))
            .finish()
    }
}

/// A complete answer from the server, whatever its status.
///
/// `Debug` shows the body's length only.
pub(crate) struct Answer {
    /// HTTP status code.
    pub(crate) status: u16,
    /// The `Retry-After` header, parsed.
    pub(crate) retry_after: Option<Duration>,
    /// The whole body.
    pub(crate) body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("retry_after", &self.retry_after)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Answer {
    /// Whether the status is 2xx.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What one step of the retry loop ended with.
#[derive(Debug)]
pub(crate) enum Step {
    /// A final answer: success, or an error that another attempt would not fix.
    Done(Answer),
    /// The attempt failed in a retryable way and the wait before the next one is over.
    Retry {
        /// Whether the server may have applied the failed request (5xx, a timeout, a connection
        /// lost after sending), as opposed to certainly not (429, connection refused).
        ambiguous: bool,
    },
}

/// The HTTP side of the client: one `reqwest::Client` and the per-attempt timeout.
#[derive(Debug)]
pub(crate) struct Transport {
    /// Shared connection pool; carries the default headers (token included, marked sensitive).
    pub(crate) http: reqwest::Client,
    /// Longest time one attempt may take.
    pub(crate) request_timeout: Duration,
}

/// How many attempts in a row that cannot connect make the API unreachable.
const CONNECT_ATTEMPTS: u32 = 3;

/// The innermost cause of an error: the operating system's own words ("Connection refused"),
/// without the HTTP client's layers.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

impl Transport {
    /// Repeats [`Transport::step`] until a final answer, or until the budget gives up.
    pub(crate) async fn exchange(
        &self,
        call: &Call<'_>,
        budget: &mut Budget,
    ) -> Result<Answer, Error> {
        loop {
            if let Step::Done(answer) = self.step(call, budget).await? {
                return Ok(answer);
            }
        }
    }

    /// Makes one attempt. A final answer comes back as [`Step::Done`]; after a retryable failure
    /// this waits (backoff or `Retry-After`) and returns [`Step::Retry`]; when the budget is
    /// spent it fails with [`Error::GaveUp`].
    ///
    /// Cancel-safe: dropping the future at any point abandons the attempt or the wait and leaves
    /// nothing running.
    pub(crate) async fn step(&self, call: &Call<'_>, budget: &mut Budget) -> Result<Step, Error> {
        let attempt = budget.begin_attempt();
        let timeout = budget.attempt_timeout(self.request_timeout);
        let started = Instant::now();
        let outcome = self.send_once(call, timeout).await;
        let took = started.elapsed().as_millis();
        let (method, path) = (&call.method, call.url.path());
        let (error, retry_after, ambiguous) = match outcome {
            Ok(answer) => {
                trace(format_args!(
                    "{method} {path} attempt {attempt}: status {} after {took} ms",
                    answer.status
                ));
                if !is_retryable_status(answer.status) {
                    return Ok(Step::Done(answer));
                }
                let ambiguous = answer.status >= 500;
                (
                    api_error(answer.status, &answer.body),
                    answer.retry_after,
                    ambiguous,
                )
            }
            Err(source) => {
                trace(format_args!(
                    "{method} {path} attempt {attempt}: {} after {took} ms",
                    failure_kind(&source)
                ));
                if source.is_builder() {
                    return Err(Error::Transport { source });
                }
                // Why give up early: an API that refuses the connection (or cannot be resolved)
                // a few times in a row is the wrong URL or unreachable from here, not busy, and
                // waiting out the whole budget would only delay the error.
                if source.is_connect() {
                    budget.refused += 1;
                    if budget.refused >= CONNECT_ATTEMPTS {
                        return Err(Error::Unreachable {
                            url: call.url.origin().ascii_serialization(),
                            reason: innermost(&source),
                        });
                    }
                }
                // Why: a refused connection never reached the server; anything later (a timeout,
                // a reset while waiting for the answer) may have been applied.
                let ambiguous = !source.is_connect();
                (Error::Transport { source }, None, ambiguous)
            }
        };
        let wait = match budget.next_wait(error, retry_after) {
            Ok(wait) => wait,
            Err(gave_up) => {
                trace(format_args!(
                    "{method} {path}: giving up after {attempt} attempt(s)"
                ));
                return Err(gave_up);
            }
        };
        trace(format_args!(
            "{method} {path}: retrying in {} ms (attempt {attempt} failed{})",
            wait.as_millis(),
            if retry_after.is_some() {
                ", server sent Retry-After"
            } else {
                ""
            }
        ));
        tokio::time::sleep(wait).await;
        Ok(Step::Retry { ambiguous })
    }

    /// Sends the request once and reads the whole answer.
    async fn send_once(
        &self,
        call: &Call<'_>,
        timeout: Duration,
    ) -> Result<Answer, reqwest::Error> {
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            .timeout(timeout);
        if let Some(body) = call.body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.to_vec());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let body: Vec<u8> = response.bytes().await?.into();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

/// A short name for a transport failure, for the log.
fn failure_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "failed while reading the answer"
    } else {
        "failed to send"
    }
}

/// Writes one debug log line.
///
/// Why a function: every line of this module goes through here, so tests can check all of them
/// (the token must never appear) without depending on which global logger the test binary has.
pub(crate) fn trace(args: std::fmt::Arguments<'_>) {
    #[cfg(test)]
    testlog::record(args.to_string());
    log::debug!("{args}");
}

/// Captures log lines in tests.
#[cfg(test)]
pub(crate) mod testlog {
    use std::sync::Mutex;

    /// Every line recorded so far, by this module or (when the capturing logger could be
    /// installed) by any crate.
    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// A logger that keeps every record, dependencies' included.
    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            record_line(format!("{} {}", record.target(), record.args()));
        }
        fn flush(&self) {}
    }

    /// The capturing logger.
    static CAPTURE: Capture = Capture;

    /// Installs the capturing logger at `trace` level, unless the test binary already has a
    /// logger (then only this module's own lines are captured, through [`record`]).
    pub(crate) fn install() {
        if log::set_logger(&CAPTURE).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    }

    /// Records one line of this module.
    pub(crate) fn record(line: String) {
        record_line(line);
    }

    /// Appends a line.
    fn record_line(line: String) {
        if let Ok(mut lines) = LINES.lock() {
            lines.push(line);
        }
    }

    /// A copy of every line captured so far.
    pub(crate) fn lines() -> Vec<String> {
        LINES.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
