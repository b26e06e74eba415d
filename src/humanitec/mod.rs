//! Client for the Humanitec Platform API's Resource Definitions endpoints
//! (`/orgs/{orgId}/resources/defs`): configuration, the endpoint methods, and the rules that make
//! retries safe for writes.
//!
//! Plain Rust and serde only; this module knows nothing about Terraform. Layout:
//! - [`models`]: the request and response types;
//! - [`error`]: the one error type of this boundary;
//! - [`retry`]: the backoff policy and time budget;
//! - [`transport`]: one HTTP attempt, its classification and logging.
//!
//! Retries: 429, 500, 502, 503, 504 and connection failures are retried with backoff inside a time
//! budget. A write whose outcome is unknown (5xx, timeout, connection lost after sending) is not
//! blindly repeated: a create first looks for what it may already have created, and a delete that
//! then finds nothing has succeeded.
//!
//! The API token goes into one sensitive header and nowhere else: not into a log line, an error
//! message or a `Debug` output.

mod error;
mod models;
mod retry;
mod transport;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use error::Error;
pub(crate) use models::{
    Criteria, CriteriaRule, DEFAULT_CLASS, Definition, DefinitionChange, DefinitionCreate,
    DefinitionUpdate, DriverInputs, JsonObject,
};
pub(crate) use retry::RetryPolicy;

use error::{api_error, describe_transport};
use retry::Budget;
use transport::{Answer, Call, Step, Transport, trace};

/// The public Humanitec API.
pub(crate) const DEFAULT_API_PREFIX: &str = "https://api.humanitec.io/";

/// Default longest time of one HTTP attempt (the official Go provider uses one minute too).
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest time to wait for a TCP/TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How this client names itself in `Humanitec-User-Agent` and `User-Agent`.
const SDK: &str = concat!("humanitec-provider-rust/", env!("CARGO_PKG_VERSION"));

/// The header the Humanitec SDKs use to identify the calling application.
const HUMANITEC_USER_AGENT: HeaderName = HeaderName::from_static("humanitec-user-agent");

/// Everything the client needs; no network is used to build a client from it.
///
/// `Debug` never shows the token.
#[derive(Clone)]
pub(crate) struct ClientConfig {
    /// Base URL of the API, e.g. `https://api.humanitec.io/`, with or without a trailing slash;
    /// it may carry a path prefix.
    pub(crate) api_prefix: String,
    /// Humanitec organization id.
    pub(crate) org_id: String,
    /// API token (org API token or service-user token).
    pub(crate) token: String,
    /// The calling application and version, e.g. `terraform-provider-humanitec/0.1.0`.
    pub(crate) user_agent: String,
    /// Retry behaviour.
    pub(crate) retry: RetryPolicy,
    /// Longest time of one HTTP attempt.
    pub(crate) request_timeout: Duration,
}

impl ClientConfig {
    /// A configuration with the default retry policy and request timeout.
    pub(crate) fn new(
        api_prefix: impl Into<String>,
        org_id: impl Into<String>,
        token: impl Into<String>,
        user_agent: impl Into<String>,
    ) -> Self {
        Self {
            api_prefix: api_prefix.into(),
            org_id: org_id.into(),
            token: token.into(),
            user_agent: user_agent.into(),
            retry: RetryPolicy::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_prefix", &self.api_prefix)
            .field("org_id", &self.org_id)
            .field(
                "token",
                // Why format_args: the mask unquoted, as every `Debug` of a secret shows it.
                &format_args!(
                    "{}",
                    if self.token.is_empty() {
                        "<empty>"
                    } else {
                        crate::text::MASK
                    }
                ),
            )
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// A Humanitec API client for one organization.
///
/// Cheap to clone (the clones share one connection pool). Every method is cancel-safe: dropping
/// its future at any point leaves no task or request behind.
#[derive(Clone)]
pub(crate) struct Client {
    /// Shared state.
    inner: Arc<Inner>,
}

/// The shared state of a [`Client`]. The token is not kept here: it lives only in the HTTP
/// client's default headers, marked sensitive.
struct Inner {
    /// The HTTP side.
    transport: Transport,
    /// Base URL (the API prefix).
    base: Url,
    /// Organization id.
    org_id: String,
    /// Retry behaviour.
    retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_prefix", &self.inner.base.as_str())
            .field("org_id", &self.inner.org_id)
            .field("token", &format_args!("{}", crate::text::MASK))
            .field("retry", &self.inner.retry)
            .field("request_timeout", &self.inner.transport.request_timeout)
            .finish()
    }
}

impl Client {
    /// Checks the configuration and builds the client. Touches no network.
    pub(crate) fn new(config: ClientConfig) -> Result<Self, Error> {
        let base = parse_api_prefix(&config.api_prefix)?;
        if config.org_id.trim().is_empty() {
            return Err(config_error("the organization id is empty"));
        }
        if config.token.trim().is_empty() {
            return Err(config_error("the API token is empty"));
        }
        if config.request_timeout.is_zero() {
            return Err(config_error("the request timeout must be longer than zero"));
        }
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {}", config.token)).map_err(|_| {
                config_error("the API token contains characters that cannot be sent in a header")
            })?;
        authorization.set_sensitive(true);
        let app = config.user_agent.trim();
        let (humanitec_agent, agent) = if app.is_empty() {
            (format!("sdk {SDK}"), SDK.to_owned())
        } else {
            (format!("app {app}; sdk {SDK}"), format!("{app} {SDK}"))
        };
        let humanitec_agent = HeaderValue::try_from(humanitec_agent).map_err(|_| {
            config_error("the user agent contains characters that cannot be sent in a header")
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization);
        headers.insert(HUMANITEC_USER_AGENT, humanitec_agent);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(agent)
            // Why: an API endpoint has no business redirecting; following one could turn a POST
            // into a GET or send the request somewhere unexpected. A 3xx becomes an error.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.request_timeout.min(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| {
                config_error(format!(
                    "could not set up the HTTP client: {}",
                    describe_transport(&e)
                ))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                transport: Transport {
                    http,
                    request_timeout: config.request_timeout,
                },
                base,
                org_id: config.org_id,
                retry: config.retry,
            }),
        })
    }

    /// Creates a resource definition (`POST /resources/defs`).
    ///
    /// A create whose answer was lost is not sent again blindly: before each re-send the
    /// definition is looked up, and if it exists (same type and driver) it is returned. A 409 on
    /// the first attempt is [`Error::AlreadyExists`] when the id is taken, else (a criterion
    /// another definition has) an [`Error::Api`]; after a lost answer it is resolved the same way.
    pub(crate) async fn create_definition(
        &self,
        create: &DefinitionCreate,
    ) -> Result<Definition, Error> {
        let body = encode(create, "the new resource definition")?;
        let call = self.call(Method::POST, &[], &[], Some(&body))?;
        let mut budget = self.budget();
        let mut ambiguous = false;
        loop {
            if ambiguous && let Some(found) = self.find_created(create, &mut budget).await? {
                return Ok(found);
            }
            let answer = match self.inner.transport.step(&call, &mut budget).await? {
                Step::Retry { ambiguous: maybe } => {
                    ambiguous |= maybe;
                    continue;
                }
                Step::Done(answer) => answer,
            };
            if answer.is_success() {
                return decode(&answer, || {
                    format!("the resource definition \"{}\" just created", create.id)
                });
            }
            return Err(match answer.status {
                409 => {
                    if ambiguous && let Some(found) = self.find_created(create, &mut budget).await?
                    {
                        return Ok(found);
                    }
                    // Why look: the API also answers 409 for a criterion that another definition
                    // of the same resource type already has; only an existing id is "exists".
                    match self
                        .fetch_definition(&create.id, false, &mut budget)
                        .await?
                    {
                        Some(_) => Error::AlreadyExists {
                            id: create.id.clone(),
                        },
                        None => api_error(answer.status, &answer.body),
                    }
                }
                _ => api_error(answer.status, &answer.body),
            });
        }
    }

    /// The organization this client works in.
    pub(crate) fn org_id(&self) -> &str {
        &self.inner.org_id
    }

    /// Reads a resource definition (`GET /resources/defs/{defId}`); `None` when it does not
    /// exist (a 404 that the organization's list confirms).
    pub(crate) async fn get_definition(&self, id: &str) -> Result<Option<Definition>, Error> {
        let mut budget = self.budget();
        self.fetch_definition(id, true, &mut budget).await
    }

    /// Replaces a resource definition's name, driver, account, inputs and provision
    /// (`PUT /resources/defs/{defId}`). Fields left `None` are unset; criteria are untouched.
    pub(crate) async fn update_definition(
        &self,
        id: &str,
        update: &DefinitionUpdate,
    ) -> Result<Definition, Error> {
        let body = encode(update, "the resource definition update")?;
        // Why plainly retried: a PUT is idempotent.
        let call = self.call(Method::PUT, &[id], &[], Some(&body))?;
        let answer = self.exchange(&call).await?;
        match answer.status {
            _ if answer.is_success() => decode(&answer, || {
                format!("the updated resource definition \"{id}\"")
            }),
            404 => Err(Error::NotFound {
                what: self.definition_what(id),
            }),
            _ => Err(api_error(answer.status, &answer.body)),
        }
    }

    /// Deletes a resource definition (`DELETE /resources/defs/{defId}`).
    ///
    /// Without `force`, a definition still used by active resources is not deleted:
    /// [`Error::InUse`]. With `force` it is marked deleted and the resources are re-matched at
    /// their next deployment. A definition that does not exist is [`Error::NotFound`], except
    /// after an attempt whose answer was lost: then the earlier attempt deleted it, and this
    /// returns `Ok`.
    pub(crate) async fn delete_definition(&self, id: &str, force: bool) -> Result<(), Error> {
        let query = force_query(force);
        let call = self.call(Method::DELETE, &[id], query, None)?;
        self.delete(&call, || self.definition_what(id)).await
    }

    /// Adds one matching-criteria rule to a definition (`POST /resources/defs/{defId}/criteria`).
    ///
    /// Like [`Client::create_definition`], a rule whose answer was lost is looked up (an
    /// identical rule on the definition) before it is sent again.
    pub(crate) async fn add_criteria(
        &self,
        def_id: &str,
        rule: &CriteriaRule,
    ) -> Result<Criteria, Error> {
        let body = encode(rule, "the matching criteria")?;
        let call = self.call(Method::POST, &[def_id, "criteria"], &[], Some(&body))?;
        let mut budget = self.budget();
        let mut ambiguous = false;
        loop {
            if ambiguous && let Some(found) = self.find_criterion(def_id, rule, &mut budget).await?
            {
                return Ok(found);
            }
            let answer = match self.inner.transport.step(&call, &mut budget).await? {
                Step::Retry { ambiguous: maybe } => {
                    ambiguous |= maybe;
                    continue;
                }
                Step::Done(answer) => answer,
            };
            if answer.is_success() {
                return decode(&answer, || {
                    format!("the matching criteria just added to \"{def_id}\"")
                });
            }
            return Err(match answer.status {
                404 => Error::NotFound {
                    what: self.definition_what(def_id),
                },
                409 if ambiguous => match self.find_criterion(def_id, rule, &mut budget).await? {
                    Some(found) => return Ok(found),
                    None => api_error(answer.status, &answer.body),
                },
                _ => api_error(answer.status, &answer.body),
            });
        }
    }

    /// Deletes one matching-criteria rule
    /// (`DELETE /resources/defs/{defId}/criteria/{criteriaId}`), with the same `force`, in-use and
    /// not-found rules as [`Client::delete_definition`].
    pub(crate) async fn delete_criteria(
        &self,
        def_id: &str,
        criteria_id: &str,
        force: bool,
    ) -> Result<(), Error> {
        let query = force_query(force);
        let call = self.call(
            Method::DELETE,
            &[def_id, "criteria", criteria_id],
            query,
            None,
        )?;
        self.delete(&call, || {
            format!(
                "matching criteria \"{criteria_id}\" of {}",
                self.definition_what(def_id)
            )
        })
        .await
    }

    /// A fresh retry budget for one operation.
    fn budget(&self) -> Budget {
        Budget::new(self.inner.retry)
    }

    /// Runs an idempotent call to its final answer with a fresh budget.
    async fn exchange(&self, call: &Call<'_>) -> Result<Answer, Error> {
        let mut budget = self.budget();
        self.inner.transport.exchange(call, &mut budget).await
    }

    /// GET of one definition within an operation's budget; `None` on a 404, which `confirm`
    /// checks against the organization's list first.
    async fn fetch_definition(
        &self,
        id: &str,
        confirm: bool,
        budget: &mut Budget,
    ) -> Result<Option<Definition>, Error> {
        let call = self.call(Method::GET, &[id], &[], None)?;
        let answer = self.inner.transport.exchange(&call, budget).await?;
        match answer.status {
            _ if answer.is_success() => {
                decode(&answer, || format!("the resource definition \"{id}\"")).map(Some)
            }
            404 if confirm => self.confirm_missing(id, budget).await.map(|()| None),
            404 => Ok(None),
            _ => Err(api_error(answer.status, &answer.body)),
        }
    }

    /// Confirms that a 404 for definition `id` means it does not exist: the organization's list
    /// of definitions answers, without it.
    ///
    /// Why: a mistyped `api_prefix` path, a wrong org or a proxy's HTML page answer 404 too, and
    /// reading those as "deleted" would drop every resource from state and plan duplicates.
    async fn confirm_missing(&self, id: &str, budget: &mut Budget) -> Result<(), Error> {
        let call = self.call(Method::GET, &[], &[], None)?;
        let answer = self.inner.transport.exchange(&call, budget).await?;
        let listed: Option<Vec<serde_json::Value>> = answer
            .is_success()
            .then(|| serde_json::from_slice(&answer.body).ok())
            .flatten();
        match listed {
            Some(definitions) if !definitions.iter().any(|d| d["id"] == id) => Ok(()),
            Some(_) => Err(Error::Api {
                status: 404,
                code: String::new(),
                message: format!(
                    "GET answered 404 for {}, though the organization's list holds it; try again",
                    self.definition_what(id)
                ),
                details: None,
            }),
            None => Err(Error::WrongEndpoint {
                // Why origin and path only: a URL's user-info part could hold credentials.
                base: format!(
                    "{}{}",
                    self.inner.base.origin().ascii_serialization(),
                    self.inner.base.path()
                ),
                what: self.definition_what(id),
                list: status_text(answer.status),
            }),
        }
    }

    /// After a create whose outcome is unknown: the definition, if it now exists and is the one
    /// being created (same type and driver; otherwise it is someone else's).
    async fn find_created(
        &self,
        create: &DefinitionCreate,
        budget: &mut Budget,
    ) -> Result<Option<Definition>, Error> {
        let found = self
            // Why unconfirmed: here a 404 only means "not made yet"; the POST that follows
            // meets any definition that does exist.
            .fetch_definition(&create.id, false, budget)
            .await?
            .filter(|d| d.type_ == create.type_ && d.driver_type == create.driver_type);
        if found.is_some() {
            trace(format_args!(
                "POST resource definition {:?}: it exists after a lost answer; not sending again",
                create.id
            ));
        }
        Ok(found)
    }

    /// After a criteria POST whose outcome is unknown: an identical rule on the definition, if
    /// there is one.
    async fn find_criterion(
        &self,
        def_id: &str,
        rule: &CriteriaRule,
        budget: &mut Budget,
    ) -> Result<Option<Criteria>, Error> {
        let Some(definition) = self.fetch_definition(def_id, false, budget).await? else {
            return Err(Error::NotFound {
                what: self.definition_what(def_id),
            });
        };
        let found = definition.criteria.into_iter().find(|c| rule.matches(c));
        if found.is_some() {
            trace(format_args!(
                "POST criteria of {def_id:?}: the rule exists after a lost answer; not sending again"
            ));
        }
        Ok(found)
    }

    /// The DELETE loop shared by definitions and criteria: 2xx is done, 409 with a list is
    /// [`Error::InUse`], 404 is [`Error::NotFound`] unless an earlier attempt's answer was lost.
    async fn delete(&self, call: &Call<'_>, what: impl FnOnce() -> String) -> Result<(), Error> {
        let mut budget = self.budget();
        let mut ambiguous = false;
        loop {
            let answer = match self.inner.transport.step(call, &mut budget).await? {
                Step::Retry { ambiguous: maybe } => {
                    ambiguous |= maybe;
                    continue;
                }
                Step::Done(answer) => answer,
            };
            return match answer.status {
                _ if answer.is_success() => Ok(()),
                404 if ambiguous => {
                    trace(format_args!(
                        "{} {}: gone after a lost answer; the earlier attempt deleted it",
                        call.method,
                        call.url.path()
                    ));
                    Ok(())
                }
                404 => Err(Error::NotFound { what: what() }),
                409 => Err(
                    match serde_json::from_slice::<Vec<DefinitionChange>>(&answer.body) {
                        Ok(changes) => Error::InUse { changes },
                        Err(_) => api_error(answer.status, &answer.body),
                    },
                ),
                _ => Err(api_error(answer.status, &answer.body)),
            };
        }
    }

    /// Builds a call to `{api_prefix}/orgs/{org}/resources/defs/{tail…}?{query}`, every path
    /// segment percent-encoded.
    fn call<'a>(
        &self,
        method: Method,
        tail: &[&str],
        query: &[(&str, &str)],
        body: Option<&'a [u8]>,
    ) -> Result<Call<'a>, Error> {
        // Why: an empty, `.` or `..` segment would address another endpoint (the URL library
        // drops dot segments, and servers collapse them), e.g. DELETE on the whole collection.
        if let Some(bad) = tail.iter().find(|s| matches!(**s, "" | "." | "..")) {
            return Err(config_error(format!(
                "{bad:?} is not a valid id for a Humanitec resource definition or criterion"
            )));
        }
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| config_error("the API prefix cannot be used as a base URL"))?
            .pop_if_empty()
            .extend(["orgs", self.inner.org_id.as_str(), "resources", "defs"])
            .extend(tail);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(Call { method, url, body })
    }

    /// How a definition is named in messages.
    fn definition_what(&self, id: &str) -> String {
        format!(
            "resource definition \"{id}\" in organization \"{}\"",
            self.inner.org_id
        )
    }
}

/// A status as people read it, e.g. `404 Not Found`.
fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status) {
        Ok(code) => code.to_string(),
        Err(_) => status.to_string(),
    }
}

/// The `force` query of the delete endpoints; absent when false (the API's default).
fn force_query(force: bool) -> &'static [(&'static str, &'static str)] {
    if force { &[("force", "true")] } else { &[] }
}

/// Checks and parses the API prefix.
fn parse_api_prefix(prefix: &str) -> Result<Url, Error> {
    let prefix = prefix.trim();
    if prefix.is_empty() {
        return Err(config_error("the API prefix is empty"));
    }
    // Why the prefix is not quoted in this message: an unparsable string might still hold
    // credentials.
    let url = Url::parse(prefix)
        .map_err(|e| config_error(format!("the API prefix is not a valid URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_error(
            "the API prefix must not contain a user name or password; set the token instead",
        ));
    }
    if !matches!(url.scheme(), "https" | "http") || url.cannot_be_a_base() {
        return Err(config_error(format!(
            "the API prefix {prefix:?} must be an https:// (or http://) URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config_error(format!(
            "the API prefix {prefix:?} must not contain a query or a fragment"
        )));
    }
    Ok(url)
}

/// An [`Error::Config`].
fn config_error(message: impl Into<String>) -> Error {
    Error::Config {
        message: message.into(),
    }
}

/// Encodes a request body.
fn encode<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|source| Error::Decode {
        what: format!("encoding {what}"),
        source,
    })
}

/// Decodes a successful answer's body.
fn decode<T: DeserializeOwned>(answer: &Answer, what: impl FnOnce() -> String) -> Result<T, Error> {
    serde_json::from_slice(&answer.body).map_err(|source| Error::Decode {
        what: what(),
        source,
    })
}
