//! Tests of the client against the sandbox API, in-process, with scripted faults: headers and
//! body shapes, retries and the time budget, lost answers on writes, delete conflicts, lenient
//! parsing, and that the token never leaks into messages, `Debug` output or logs.

use std::time::{Duration, Instant};

use humanitec_sandbox::{Answer, Options, Sandbox, ScriptedAction, ScriptedFault};
use reqwest::Method;
use serde_json::{Value, json};

use super::transport::testlog;
use super::*;

/// The organization every test client addresses.
const ORG: &str = "my-org";

/// The token every test client uses; it must never show up anywhere but the request header.
const TOKEN: &str = "hum-TOKEN-7f3c9e1d-never-print-me";

/// The application name every test client sends.
const APP: &str = "terraform-provider-humanitec/0.1.0";

/// A retry policy fast enough for tests.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(10),
    }
}

/// A configuration for a server at `base`.
fn config(base: &str) -> ClientConfig {
    let mut config = ClientConfig::new(base, "my-org", TOKEN, APP);
    config.retry = fast_retry();
    config
}

/// Starts a sandbox that records the requests it receives.
fn start_sandbox() -> Sandbox {
    Sandbox::start(Options {
        seed: Some(7),
        log_requests: false,
        record_requests: true,
        ..Options::default()
    })
    .expect("the sandbox starts")
}

/// Starts a sandbox and a client for it.
async fn setup() -> (Sandbox, Client) {
    testlog::install();
    let sandbox = start_sandbox();
    let client = Client::new(config(sandbox.url())).expect("valid config");
    (sandbox, client)
}

/// Stores a definition directly (as if created earlier), without a request.
fn seed(sandbox: &Sandbox, id: &str, type_: &str, driver_type: &str) {
    let body = json!({"id": id, "name": id, "type": type_, "driver_type": driver_type});
    sandbox
        .create_definition(ORG, &body)
        .expect("the seed definition is valid");
}

/// Marks a definition as used by Active Resources (`[{app_id, env_id, res_id}, …]`).
fn set_in_use(sandbox: &Sandbox, id: &str, resources: Value) {
    sandbox
        .set_active_resources(ORG, id, &resources)
        .expect("the Active Resources are valid");
}

/// Scripts `action` for the next `method` request whose path ends with `path_suffix`.
fn fault(sandbox: &Sandbox, method: Method, path_suffix: &str, action: ScriptedAction) {
    sandbox.script(ScriptedFault::next(method.as_str(), path_suffix, action));
}

/// An answer with `status` and a Humanitec error body, the store untouched.
fn error_answer(status: u16) -> ScriptedAction {
    ScriptedAction::Answer(Answer::error(
        status,
        &format!("API-{status}"),
        "scripted failure",
    ))
}

/// An answer with this status, body and optional `Retry-After`, the store untouched.
fn reply(status: u16, body: &str, retry_after: Option<&str>) -> ScriptedAction {
    ScriptedAction::Answer(Answer {
        status,
        body: body.to_owned(),
        retry_after: retry_after.map(str::to_owned),
    })
}

/// The request applied, then answered with `status` and no body: the client loses the answer.
fn lose(status: u16) -> ScriptedAction {
    ScriptedAction::ApplyThenAnswer(Answer::empty(status))
}

/// The create body of the runner `config` Definition from the notes (§1.5), abridged.
fn runner_config() -> DefinitionCreate {
    DefinitionCreate {
        id: "config-container-runner".into(),
        name: "Config For Container Driver Runner".into(),
        type_: "config".into(),
        driver_type: "humanitec/template".into(),
        driver_inputs: Some(DriverInputs {
            values: Some(object(json!({"templates": {
                "outputs": "skip_permission_checks: false\n",
                "secrets": "agent_url: {{ .driver.secrets.agent_url }}\n"
            }}))),
            secrets: Some(object(
                json!({"agent_url": "${resources.agent.outputs.url}"}),
            )),
            secret_refs: None,
        }),
        criteria: Some(vec![CriteriaRule {
            env_type: Some("development".into()),
            res_id: Some("container-runner".into()),
            class: Some("default".into()),
            ..CriteriaRule::default()
        }]),
        ..DefinitionCreate::default()
    }
}

/// A JSON object literal as a map.
fn object(value: Value) -> JsonObject {
    value.as_object().cloned().expect("a JSON object")
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn headers_and_body_shapes_follow_the_spec() {
    let (sandbox, client) = setup().await;
    let created = client
        .create_definition(&runner_config())
        .await
        .expect("create");
    assert_eq!(created.id, "config-container-runner");
    assert_eq!(created.criteria.len(), 1);
    // The API's quirk: secrets come back as references only.
    let inputs = created.driver_inputs.clone().expect("inputs");
    assert!(inputs.secrets.is_none());
    assert!(inputs.secret_refs.expect("refs").contains_key("agent_url"));

    let update = DefinitionUpdate {
        name: "Renamed".into(),
        driver_type: "humanitec/template".into(),
        driver_inputs: Some(DriverInputs {
            values: Some(object(json!({"templates": {"outputs": ""}}))),
            ..DriverInputs::default()
        }),
        ..DefinitionUpdate::default()
    };
    let updated = client
        .update_definition("config-container-runner", &update)
        .await
        .expect("update");
    assert_eq!(updated.name, "Renamed");
    let rule = CriteriaRule {
        app_id: Some("my-app".into()),
        ..CriteriaRule::default()
    };
    let added = client
        .add_criteria("config-container-runner", &rule)
        .await
        .expect("add criteria");
    assert_eq!(added.class, "default");
    assert_eq!(added.app_id.as_deref(), Some("my-app"));

    let requests = sandbox.requests();
    assert_eq!(requests.len(), 3);
    let sdk = format!("sdk humanitec-provider-rust/{}", env!("CARGO_PKG_VERSION"));
    for request in &requests {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}"))
        );
        assert_eq!(
            request.header("humanitec-user-agent"),
            Some(format!("app {APP}; {sdk}"))
        );
        assert!(
            request
                .header("user-agent")
                .is_some_and(|ua| ua.starts_with(APP))
        );
        assert_eq!(
            request.header("accept").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            request.header("content-type").as_deref(),
            Some("application/json")
        );
    }
    let create = requests[0].json();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/orgs/my-org/resources/defs");
    assert_eq!(
        keys(&create),
        [
            "criteria",
            "driver_inputs",
            "driver_type",
            "id",
            "name",
            "type"
        ]
    );
    assert_eq!(create["type"], "config");
    assert_eq!(keys(&create["driver_inputs"]), ["secrets", "values"]);
    assert_eq!(
        create["criteria"],
        json!([{"env_type": "development", "res_id": "container-runner", "class": "default"}])
    );
    assert_eq!(requests[1].method, "PUT");
    assert_eq!(
        requests[1].json(),
        json!({"name": "Renamed", "driver_type": "humanitec/template",
               "driver_inputs": {"values": {"templates": {"outputs": ""}}}})
    );
    assert_eq!(
        requests[2].path,
        "/orgs/my-org/resources/defs/config-container-runner/criteria"
    );
    assert_eq!(requests[2].json(), json!({"app_id": "my-app"}));
}

#[tokio::test]
async fn get_sends_no_content_type() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "a-def", "config", "humanitec/echo");
    let got = client.get_definition("a-def").await.expect("get");
    assert!(got.is_some());
    let requests = sandbox.requests();
    assert_eq!(requests[0].query, "");
    assert_eq!(requests[0].header("content-type"), None);
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {TOKEN}"))
    );
}

#[tokio::test]
async fn path_segments_are_percent_encoded() {
    let (sandbox, client) = setup().await;
    let got = client.get_definition("a/b c?#%").await.expect("get");
    assert!(got.is_none());
    client
        .delete_criteria("d/1", "c 2", true)
        .await
        .expect_err("nothing to delete");
    let requests = sandbox.requests();
    assert_eq!(
        requests[0].path,
        "/orgs/my-org/resources/defs/a%2Fb%20c%3F%23%25"
    );
    // The 404 is confirmed against the organization's list.
    assert_eq!(requests[1].path, "/orgs/my-org/resources/defs");
    let requests = &requests[1..];
    assert_eq!(
        requests[1].path,
        "/orgs/my-org/resources/defs/d%2F1/criteria/c%202"
    );
    assert_eq!(requests[1].query, "force=true");

    // Dot and empty segments would address another endpoint; they never leave the client.
    for bad in ["", ".", ".."] {
        let err = client
            .delete_definition(bad, false)
            .await
            .expect_err("bad id");
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        let err = client
            .delete_criteria("d", bad, false)
            .await
            .expect_err("bad id");
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
    }
    assert_eq!(sandbox.requests().len(), 3);
}

#[test]
fn api_prefix_forms() {
    let cases = [
        (
            "https://api.humanitec.io/",
            "https://api.humanitec.io/orgs/o%2F1/resources/defs/x",
        ),
        (
            "https://api.humanitec.io",
            "https://api.humanitec.io/orgs/o%2F1/resources/defs/x",
        ),
        (
            " http://h:8080/api ",
            "http://h:8080/api/orgs/o%2F1/resources/defs/x",
        ),
        (
            "http://h:8080/api/",
            "http://h:8080/api/orgs/o%2F1/resources/defs/x",
        ),
    ];
    for (prefix, want) in cases {
        let mut config = ClientConfig::new(prefix, "o/1", TOKEN, APP);
        config.retry = fast_retry();
        let client = Client::new(config).expect("valid");
        let call = client.call(Method::GET, &["x"], &[], None).expect("call");
        assert_eq!(call.url.as_str(), want, "prefix {prefix:?}");
    }
}

#[test]
fn bad_configuration_is_rejected_without_echoing_the_token() {
    let base = ClientConfig::new(DEFAULT_API_PREFIX, "my-org", TOKEN, APP);
    let cases: Vec<(ClientConfig, &str)> = vec![
        (
            ClientConfig {
                api_prefix: "".into(),
                ..base.clone()
            },
            "API prefix is empty",
        ),
        (
            ClientConfig {
                api_prefix: "api.humanitec.io".into(),
                ..base.clone()
            },
            "not a valid URL",
        ),
        (
            ClientConfig {
                api_prefix: "ftp://api.humanitec.io".into(),
                ..base.clone()
            },
            "https://",
        ),
        (
            ClientConfig {
                api_prefix: "https://u:pw@api.humanitec.io".into(),
                ..base.clone()
            },
            "user name or password",
        ),
        (
            ClientConfig {
                api_prefix: "https://h/?x=1".into(),
                ..base.clone()
            },
            "query",
        ),
        (
            ClientConfig {
                org_id: " ".into(),
                ..base.clone()
            },
            "organization id is empty",
        ),
        (
            ClientConfig {
                token: "".into(),
                ..base.clone()
            },
            "token is empty",
        ),
        (
            ClientConfig {
                token: format!("{TOKEN}\n"),
                ..base.clone()
            },
            "cannot be sent in a header",
        ),
        (
            ClientConfig {
                user_agent: "bad\u{7f}agent".into(),
                ..base.clone()
            },
            "user agent",
        ),
        (
            ClientConfig {
                request_timeout: Duration::ZERO,
                ..base.clone()
            },
            "timeout",
        ),
    ];
    for (config, want) in cases {
        let err = Client::new(config.clone()).expect_err("invalid config");
        let text = err.to_string();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(text.contains(want), "{text:?} should mention {want:?}");
        assert!(!text.contains(TOKEN) && !format!("{err:?}").contains(TOKEN));
        assert!(!format!("{config:?}").contains(TOKEN));
    }
}

#[tokio::test]
async fn retry_after_on_429_is_honoured() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "limited", "s3", "humanitec/echo");
    fault(
        &sandbox,
        Method::GET,
        "/limited",
        reply(
            429,
            r#"{"error":"API-429","message":"rate limit"}"#,
            Some("1"),
        ),
    );
    let started = Instant::now();
    let got = client.get_definition("limited").await.expect("get");
    assert!(got.is_some());
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(sandbox.count("GET", "/limited"), 2);
}

#[tokio::test]
async fn retry_after_as_http_date_is_honoured() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "dated", "s3", "humanitec/echo");
    // A date in the past: retry at once (no backoff growth, no error).
    fault(
        &sandbox,
        Method::GET,
        "/dated",
        reply(503, "", Some("Thu, 01 Jan 1970 00:00:00 GMT")),
    );
    assert!(client.get_definition("dated").await.expect("get").is_some());
    assert_eq!(sandbox.count("GET", "/dated"), 2);
}

#[tokio::test]
async fn transient_errors_are_retried_until_success() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "flaky", "s3", "humanitec/echo");
    fault(&sandbox, Method::GET, "/flaky", error_answer(503));
    fault(&sandbox, Method::GET, "/flaky", error_answer(503));
    let got = client.get_definition("flaky").await.expect("get");
    assert!(got.is_some());
    assert_eq!(sandbox.count("GET", "/flaky"), 3);
}

#[tokio::test]
async fn every_retryable_status_is_retried() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "def-x1", "s3", "humanitec/echo");
    for status in [429, 500, 502, 503, 504] {
        fault(&sandbox, Method::GET, "/def-x1", error_answer(status));
    }
    assert!(
        client
            .get_definition("def-x1")
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(sandbox.count("GET", "/def-x1"), 6);
}

#[tokio::test]
async fn gives_up_when_the_budget_is_spent() {
    testlog::install();
    let sandbox = start_sandbox();
    let base = sandbox.url().to_owned();
    sandbox.script(ScriptedFault::every_request(error_answer(500)));
    let mut config = config(&base);
    config.retry.max_elapsed = Duration::from_millis(150);
    let client = Client::new(config).expect("client");
    let started = Instant::now();
    let err = client
        .get_definition("anything")
        .await
        .expect_err("always 500");
    match &err {
        Error::GaveUp { attempts, last, .. } => {
            assert!(*attempts >= 2, "attempts {attempts}");
            assert_eq!(*attempts as usize, sandbox.requests().len());
            assert!(matches!(**last, Error::Api { status: 500, .. }), "{last:?}");
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(150));
    let text = crate::text::error_chain(&err);
    assert!(
        text.starts_with("gave up on the Humanitec API after"),
        "{text}"
    );
    assert!(
        text.ends_with(
            " s: Humanitec API answered 500 Internal Server Error (API-500): scripted failure"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (sandbox, client) = setup().await;
    fault(
        &sandbox,
        Method::POST,
        "/defs",
        reply(
            400,
            r#"{"error":"API-400","message":"Invalid driver type.","details":{"field":"driver_type"}}"#,
            None,
        ),
    );
    let err = client
        .create_definition(&runner_config())
        .await
        .expect_err("400");
    assert_eq!(
        err.to_string(),
        "Humanitec API answered 400 Bad Request (API-400): Invalid driver type."
    );
    assert!(matches!(err, Error::Api { status: 400, ref details, .. } if details.is_some()));
    assert_eq!(sandbox.requests().len(), 1);
}

#[tokio::test]
async fn lost_create_answer_is_found_not_resent() {
    let (sandbox, client) = setup().await;
    fault(&sandbox, Method::POST, "/defs", lose(502));
    let created = client
        .create_definition(&runner_config())
        .await
        .expect("create survives a lost answer");
    assert_eq!(created.id, "config-container-runner");
    assert_eq!(sandbox.definitions(ORG).len(), 1);
    assert_eq!(sandbox.count("POST", "/defs"), 1);
    assert_eq!(sandbox.count("GET", "/config-container-runner"), 1);
}

#[tokio::test]
async fn timed_out_create_is_found_not_resent() {
    testlog::install();
    let sandbox = start_sandbox();
    let base = sandbox.url().to_owned();
    let mut config = config(&base);
    config.request_timeout = Duration::from_millis(300);
    let client = Client::new(config).expect("client");
    fault(
        &sandbox,
        Method::POST,
        "/defs",
        ScriptedAction::ApplyThenStall(Duration::from_secs(3)),
    );
    let created = client
        .create_definition(&runner_config())
        .await
        .expect("create survives a timeout");
    assert_eq!(created.id, "config-container-runner");
    assert_eq!(sandbox.definitions(ORG).len(), 1);
    assert_eq!(sandbox.count("POST", "/defs"), 1);
}

#[tokio::test]
async fn create_failed_before_applying_is_resent() {
    let (sandbox, client) = setup().await;
    fault(&sandbox, Method::POST, "/defs", error_answer(502));
    client
        .create_definition(&runner_config())
        .await
        .expect("create");
    assert_eq!(sandbox.definitions(ORG).len(), 1);
    assert_eq!(sandbox.count("POST", "/defs"), 2);
    assert_eq!(sandbox.count("GET", "/config-container-runner"), 1);
}

#[tokio::test]
async fn conflict_on_a_resent_create_resolves_to_the_definition() {
    let (sandbox, client) = setup().await;
    // The first POST is applied but its answer lost; the check GET races it and misses; the
    // re-sent POST then meets the definition the first one made.
    fault(&sandbox, Method::POST, "/defs", lose(500));
    fault(
        &sandbox,
        Method::GET,
        "/config-container-runner",
        error_answer(404),
    );
    let created = client
        .create_definition(&runner_config())
        .await
        .expect("create");
    assert_eq!(created.type_, "config");
    assert_eq!(sandbox.definitions(ORG).len(), 1);
    assert_eq!(sandbox.count("POST", "/defs"), 2);
    assert_eq!(sandbox.count("GET", "/config-container-runner"), 2);
}

#[tokio::test]
async fn conflict_on_the_first_create_is_already_exists() {
    let (sandbox, client) = setup().await;
    seed(
        &sandbox,
        "config-container-runner",
        "config",
        "humanitec/template",
    );
    let err = client
        .create_definition(&runner_config())
        .await
        .expect_err("exists");
    assert!(
        matches!(&err, Error::AlreadyExists { id } if id == "config-container-runner"),
        "{err:?}"
    );
    assert!(err.to_string().contains("already exists"));
    // The POST, then the look-up that tells a taken id from a taken criterion.
    assert_eq!(sandbox.requests().len(), 2);
}

#[tokio::test]
async fn conflict_over_a_criterion_is_not_already_exists() {
    let (sandbox, client) = setup().await;
    fault(&sandbox, Method::POST, "/defs", error_answer(409));
    let err = client
        .create_definition(&runner_config())
        .await
        .expect_err("criterion taken");
    assert!(matches!(err, Error::Api { status: 409, .. }), "{err:?}");
    assert_eq!(sandbox.count("GET", "/config-container-runner"), 1);
}

#[tokio::test]
async fn someone_elses_definition_is_not_taken_for_ours() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "config-container-runner", "s3", "humanitec/echo");
    fault(&sandbox, Method::POST, "/defs", error_answer(503));
    let err = client
        .create_definition(&runner_config())
        .await
        .expect_err("exists with another type");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
}

#[tokio::test]
async fn delete_in_use_lists_the_resources() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "my-s3", "s3", "humanitec/container-runner");
    // The definition the resource would move to once `my-s3` is gone.
    sandbox
        .create_definition(
            ORG,
            &json!({"id": "default-s3", "name": "default-s3", "type": "s3",
                    "driver_type": "humanitec/echo", "criteria": [{"app_id": "app1"}]}),
        )
        .expect("valid definition");
    set_in_use(
        &sandbox,
        "my-s3",
        json!([{"app_id": "app1", "env_id": "dev", "res_id": "modules.w.externals.s3"}]),
    );
    let err = client
        .delete_definition("my-s3", false)
        .await
        .expect_err("in use");
    let Error::InUse { changes } = &err else {
        panic!("expected InUse, got {err:?}");
    };
    assert_eq!(
        changes,
        &[DefinitionChange {
            app_id: "app1".into(),
            env_id: "dev".into(),
            res_id: "modules.w.externals.s3".into(),
            from_def: "my-s3".into(),
            to_def: "default-s3".into(),
        }]
    );
    assert!(err.to_string().contains("app1/dev/modules.w.externals.s3"));
    assert_eq!(sandbox.requests().len(), 1);

    client
        .delete_definition("my-s3", true)
        .await
        .expect("forced delete");
    let left: Vec<String> = sandbox.definitions(ORG).into_keys().collect();
    assert_eq!(left, ["default-s3"]);
    assert_eq!(sandbox.requests()[1].query, "force=true");
}

#[tokio::test]
async fn conflict_without_a_list_is_an_api_error() {
    let (sandbox, client) = setup().await;
    fault(&sandbox, Method::DELETE, "/busy", error_answer(409));
    let err = client
        .delete_definition("busy", false)
        .await
        .expect_err("409");
    assert!(matches!(err, Error::Api { status: 409, .. }), "{err:?}");
}

#[tokio::test]
async fn delete_after_a_lost_answer_accepts_not_found() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "gone", "s3", "humanitec/echo");
    fault(&sandbox, Method::DELETE, "/gone", lose(502));
    client
        .delete_definition("gone", false)
        .await
        .expect("the first attempt deleted it");
    assert_eq!(sandbox.count("DELETE", "/gone"), 2);
    assert!(sandbox.definitions(ORG).is_empty());

    // Without a lost answer, a missing definition is the caller's to judge.
    let err = client
        .delete_definition("gone", false)
        .await
        .expect_err("not found");
    assert!(
        matches!(&err, Error::NotFound { what } if what.contains("\"gone\"")),
        "{err:?}"
    );
}

#[tokio::test]
async fn delete_after_rate_limit_still_reports_not_found() {
    let (sandbox, client) = setup().await;
    fault(&sandbox, Method::DELETE, "/never", error_answer(429));
    let err = client
        .delete_definition("never", false)
        .await
        .expect_err("a 429 was certainly not applied");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn lost_criteria_answer_is_found_not_resent() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "def-1", "config", "humanitec/template");
    fault(&sandbox, Method::POST, "/criteria", lose(504));
    let rule = CriteriaRule {
        env_type: Some("development".into()),
        res_id: Some("container-runner".into()),
        ..CriteriaRule::default()
    };
    let added = client.add_criteria("def-1", &rule).await.expect("add");
    assert_eq!(added.env_type.as_deref(), Some("development"));
    assert_eq!(added.class, "default");
    assert_eq!(sandbox.count("POST", "/criteria"), 1);
    let stored = &sandbox.definitions(ORG)["def-1"]["criteria"];
    assert_eq!(stored.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn criteria_lifecycle() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "def-2", "config", "humanitec/template");
    let rules = [
        CriteriaRule {
            env_type: Some("development".into()),
            ..CriteriaRule::default()
        },
        CriteriaRule {
            env_id: Some("prod".into()),
            class: Some("large".into()),
            ..CriteriaRule::default()
        },
    ];
    let mut added = Vec::new();
    for rule in &rules {
        added.push(client.add_criteria("def-2", rule).await.expect("add"));
    }
    assert_eq!(added[0].class, "default");
    assert_eq!(added[1].class, "large");
    assert_eq!(
        sandbox.requests()[1].json(),
        json!({"env_id": "prod", "class": "large"})
    );

    // A duplicate on the first attempt is the server's verdict, not resolved away.
    let err = client
        .add_criteria("def-2", &rules[0])
        .await
        .expect_err("duplicate");
    assert!(matches!(err, Error::Api { status: 409, .. }), "{err:?}");

    client
        .delete_criteria("def-2", &added[0].id, false)
        .await
        .expect("delete criteria");
    let err = client
        .delete_criteria("def-2", &added[0].id, false)
        .await
        .expect_err("already deleted");
    assert!(
        matches!(&err, Error::NotFound { what } if what.contains("matching criteria")),
        "{err:?}"
    );
    let err = client
        .add_criteria("missing", &rules[0])
        .await
        .expect_err("no definition");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn update_of_a_missing_definition_is_not_found() {
    let (_mock, client) = setup().await;
    let err = client
        .update_definition(
            "missing",
            &DefinitionUpdate {
                name: "Missing".into(),
                driver_type: "humanitec/echo".into(),
                ..DefinitionUpdate::default()
            },
        )
        .await
        .expect_err("missing");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn lenient_responses_parse_and_garbage_is_a_decode_error() {
    let (sandbox, client) = setup().await;
    fault(
        &sandbox,
        Method::GET,
        "/odd",
        reply(
            200,
            &json!({
                "id": "odd", "type": "s3", "driver_type": "humanitec/echo",
                "criteria": null, "driver_inputs": {"values": null, "extra": 1},
                "brand_new_field": [1, 2, 3], "is_deleted": true
            })
            .to_string(),
            None,
        ),
    );
    let odd = client
        .get_definition("odd")
        .await
        .expect("lenient")
        .expect("found");
    assert!(odd.is_deleted);
    assert!(odd.criteria.is_empty());
    assert_eq!(odd.org_id, "");

    fault(
        &sandbox,
        Method::GET,
        "/garbage",
        reply(200, "<html>not json</html>", None),
    );
    let err = client.get_definition("garbage").await.expect_err("garbage");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("could not understand"), "{err}");
}

#[tokio::test]
async fn timeouts_are_retried() {
    testlog::install();
    let sandbox = start_sandbox();
    let base = sandbox.url().to_owned();
    seed(&sandbox, "slow", "s3", "humanitec/echo");
    fault(
        &sandbox,
        Method::GET,
        "/slow",
        ScriptedAction::Stall(Duration::from_secs(3)),
    );
    let mut config = config(&base);
    config.request_timeout = Duration::from_millis(300);
    let client = Client::new(config).expect("client");
    let got = client.get_definition("slow").await.expect("get");
    assert!(got.is_some());
    assert_eq!(sandbox.count("GET", "/slow"), 2);
}

#[tokio::test]
async fn dropping_a_call_leaves_nothing_running() {
    let (sandbox, client) = setup().await;
    fault(&sandbox, Method::GET, "/later", reply(503, "", Some("1")));
    // Cancel while the client waits for Retry-After.
    let cancelled =
        tokio::time::timeout(Duration::from_millis(300), client.get_definition("later")).await;
    assert!(cancelled.is_err());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(sandbox.count("GET", "/later"), 1, "no retry after the drop");
    // The client is still usable.
    assert!(client.get_definition("later").await.expect("get").is_none());
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_naming_the_url() {
    testlog::install();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    // A budget of two minutes: refused connections must not wait it out.
    let mut config = config(&format!("http://{addr}/"));
    config.retry.max_elapsed = Duration::from_secs(120);
    let client = Client::new(config).expect("client");
    let err = client.get_definition("x").await.expect_err("refused");
    let Error::Unreachable { url, .. } = &err else {
        panic!("expected Unreachable, got {err:?}");
    };
    assert_eq!(url, &format!("http://{addr}"));
    let text = crate::text::error_chain(&err);
    assert!(text.contains("Connection refused"), "{text}");
    assert!(text.contains("check api_prefix"), "{text}");
    assert!(
        !text.contains("tcp connect error"),
        "no HTTP client internals: {text}"
    );
}

#[tokio::test]
async fn the_token_never_leaks() {
    let (sandbox, client) = setup().await;
    let mut errors: Vec<Error> = Vec::new();

    fault(&sandbox, Method::GET, "/a", error_answer(401));
    errors.push(client.get_definition("a").await.expect_err("401"));
    errors.push(client.delete_definition("b", false).await.expect_err("404"));
    seed(&sandbox, "def-c", "s3", "humanitec/echo");
    set_in_use(
        &sandbox,
        "def-c",
        json!([{"app_id": "a", "env_id": "e", "res_id": "r"}]),
    );
    errors.push(
        client
            .delete_definition("def-c", false)
            .await
            .expect_err("409"),
    );
    errors.push(
        client
            .create_definition(&DefinitionCreate {
                id: "def-c".into(),
                name: "def-c".into(),
                type_: "s3".into(),
                driver_type: "humanitec/echo".into(),
                ..DefinitionCreate::default()
            })
            .await
            .expect_err("exists"),
    );
    fault(&sandbox, Method::GET, "/d", reply(200, "[", None));
    errors.push(client.get_definition("d").await.expect_err("decode"));
    // A 404 for the definition and for the list: the endpoint is wrong.
    fault(&sandbox, Method::GET, "/w", error_answer(404));
    fault(&sandbox, Method::GET, "/defs", error_answer(404));
    errors.push(
        client
            .get_definition("w")
            .await
            .expect_err("wrong endpoint"),
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut refused = config(&format!("http://{addr}/"));
    refused.retry.max_elapsed = Duration::from_millis(50);
    let refused = Client::new(refused).expect("client");
    errors.push(refused.get_definition("e").await.expect_err("refused"));

    let mut short = config(&format!("http://{}/", &client.inner.base.authority()));
    short.request_timeout = Duration::from_millis(200);
    short.retry.max_elapsed = Duration::from_millis(100);
    let short = Client::new(short).expect("client");
    fault(
        &sandbox,
        Method::GET,
        "/f",
        ScriptedAction::Stall(Duration::from_secs(2)),
    );
    errors.push(short.get_definition("f").await.expect_err("timeout"));

    let kinds: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            Error::Api { .. } => "api",
            Error::NotFound { .. } => "not-found",
            Error::AlreadyExists { .. } => "exists",
            Error::InUse { .. } => "in-use",
            Error::Transport { .. } => "transport",
            Error::GaveUp { .. } => "gave-up",
            Error::Decode { .. } => "decode",
            Error::Config { .. } => "config",
            Error::WrongEndpoint { .. } => "wrong-endpoint",
            Error::Unreachable { .. } => "unreachable",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "api",
            "not-found",
            "in-use",
            "exists",
            "decode",
            "wrong-endpoint",
            "unreachable",
            "gave-up"
        ]
    );
    for error in &errors {
        let mut chain = vec![error.to_string(), format!("{error:?}")];
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            chain.push(inner.to_string());
            chain.push(format!("{inner:?}"));
            source = inner.source();
        }
        for text in chain {
            assert!(!text.contains(TOKEN), "token in {text:?}");
        }
    }
    for text in [
        format!("{client:?}"),
        format!("{:?}", config("http://h/")),
        format!("{:?}", client.inner.transport),
    ] {
        assert!(!text.contains(TOKEN), "token in {text:?}");
        assert!(!text.contains("7f3c9e1d"), "token part in {text:?}");
    }
    let lines = testlog::lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("GET /orgs/my-org/resources/defs/a attempt 1: status 401")),
        "this module's lines are captured: {lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("retrying in")));
    for line in &lines {
        assert!(!line.contains(TOKEN), "token in log line {line:?}");
    }
}

#[tokio::test]
async fn a_404_means_gone_only_when_the_organizations_list_answers() {
    let (sandbox, client) = setup().await;
    seed(&sandbox, "other", "s3", "humanitec/echo");
    assert!(client.get_definition("gone").await.unwrap().is_none());

    // A proxy's HTML 404 for the definition and for the list alike.
    let html = reply(404, "<html>Not Found</html>", None);
    fault(&sandbox, Method::GET, "/gone", html.clone());
    fault(&sandbox, Method::GET, "/defs", html);
    let err = client.get_definition("gone").await.expect_err("not proof");
    let text = err.to_string();
    assert!(matches!(err, Error::WrongEndpoint { .. }), "{err:?}");
    assert!(
        text.contains("api_prefix") && text.contains("org_id"),
        "{text}"
    );
    assert!(text.contains("404 Not Found"), "{text}");
}
