//! Behaviour tests over real HTTP against an in-process sandbox: create/duplicate, strict validation,
//! auth, the secrets-as-refs quirk, PUT/PATCH semantics, criteria, deletes with Active Resources,
//! 404s, list filters, persistence with `--data`, and fault injection.

use serde_json::{Value, json};

use crate::Options;
use crate::test_support::{TestServer, config, scratch_dir};

/// The defs collection path of the test org.
const DEFS: &str = "/orgs/test-org/resources/defs";

/// A minimal valid create body.
fn minimal(id: &str) -> Value {
    json!({"id": id, "name": format!("Def {id}"), "type": "s3", "driver_type": "humanitec/echo"})
}

/// The error code of an error body.
fn code(body: &Value) -> &str {
    body.get("error").and_then(Value::as_str).unwrap_or("")
}

/// Whether `text` contains `needle` anywhere.
fn mentions(value: &Value, needle: &str) -> bool {
    value.to_string().contains(needle)
}

#[tokio::test]
async fn create_returns_200_and_duplicate_409() {
    let server = TestServer::start(config()).await;
    let created = server.call("POST", DEFS, Some(&minimal("my-def"))).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let body = created.body();
    assert_eq!(body["id"], "my-def");
    assert_eq!(body["org_id"], "test-org");
    assert_eq!(body["is_default"], false);
    assert_eq!(body["is_deleted"], false);
    assert_eq!(body["in_place_driver_change"], false);
    assert_eq!(body["criteria"], json!([]));
    assert!(
        body["active_version_id"]
            .as_str()
            .is_some_and(|s| s.len() == 36)
    );
    assert!(body.get("driver_inputs").is_none());
    assert!(body.get("provision").is_none());
    assert_eq!(
        created.header("content-type").as_deref(),
        Some("application/json")
    );

    let again = server.call("POST", DEFS, Some(&minimal("my-def"))).await;
    assert_eq!(again.status, 409);
    assert_eq!(code(&again.body()), "API-004");

    let fetched = server.call("GET", &format!("{DEFS}/my-def"), None).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body(), body);
    server.stop().await;
}

#[tokio::test]
async fn strict_validation_rejects_unknown_missing_and_mistyped() {
    let server = TestServer::start(config()).await;
    let cases = [
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d", "colour": 1}),
            "colour",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d",
                   "criteria": [{"env_type": "dev", "app": "x"}]}),
            "criteria[0].app",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d",
                   "driver_inputs": {"values": {}, "secret": {}}}),
            "driver_inputs.secret",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d",
                   "provision": {"dns": {"is_dependent": true, "extra": 1}}}),
            "provision.dns.extra",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t"}),
            "driver_type",
        ),
        (json!({"name": "n", "type": "t", "driver_type": "d"}), "id"),
        (
            json!({"id": "abc", "name": 5, "type": "t", "driver_type": "d"}),
            "name",
        ),
        (
            json!({"id": "Not_Valid", "name": "n", "type": "t", "driver_type": "d"}),
            "id",
        ),
        (
            json!({"id": "ab", "name": "n", "type": "t", "driver_type": "d"}),
            "id",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d", "driver_account": "Bad Account"}),
            "driver_account",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d", "criteria": {}}),
            "criteria",
        ),
        (
            json!({"id": "abc", "name": "", "type": "t", "driver_type": "d"}),
            "name",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d",
                   "driver_inputs": {"secrets": {"a": "x"}, "secret_refs": {"a": {"value": "y"}}}}),
            "driver_inputs.a",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d",
                   "driver_inputs": {"secret_refs": {"a": {"value": "y", "store": "s"}}}}),
            "driver_inputs.secret_refs.a",
        ),
        (
            json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d",
                   "driver_inputs": {"secret_refs": {"a": "plain"}}}),
            "driver_inputs.secret_refs.a",
        ),
    ];
    for (body, path) in cases {
        let resp = server.call("POST", DEFS, Some(&body)).await;
        assert_eq!(resp.status, 400, "{body} -> {}", resp.text);
        assert_eq!(code(&resp.body()), "API-002");
        assert!(
            resp.text.contains(path),
            "{path} not named in {}",
            resp.text
        );
    }
    // Nothing was created by any of them.
    let list = server.call("GET", DEFS, None).await;
    assert_eq!(list.body(), json!([]));

    // Body that is not JSON, empty, or the wrong kind: 422.
    for raw in ["{", "", "[]", "\"x\""] {
        let resp = server
            .call_raw(
                "POST",
                DEFS,
                Some("Bearer test-token"),
                Some(raw.to_owned()),
            )
            .await;
        assert_eq!(resp.status, 422, "{raw:?}");
        assert_eq!(code(&resp.body()), "API-005");
    }
    // An explicit null on an optional property counts as absent; a placeholder account is accepted.
    let ok = json!({"id": "abc", "name": "n", "type": "t", "driver_type": "d", "driver_account": null,
                    "provision": null});
    assert_eq!(server.call("POST", DEFS, Some(&ok)).await.status, 200);
    let placeholder = json!({"id": "abd", "name": "n", "type": "t", "driver_type": "d",
        "driver_account": "${resources['config.default#app'].account}"});
    assert_eq!(
        server.call("POST", DEFS, Some(&placeholder)).await.status,
        200
    );

    // PUT: `type` and `id` are not in the schema; `name` is required. PATCH has no `driver_type`.
    let put_path = format!("{DEFS}/abc");
    for body in [
        json!({"name": "n", "type": "other"}),
        json!({"name": "n", "id": "abc"}),
        json!({"driver_type": "x"}),
        json!({"name": "n", "criteria": []}),
    ] {
        let resp = server.call("PUT", &put_path, Some(&body)).await;
        assert_eq!(resp.status, 400, "{body} -> {}", resp.text);
    }
    let resp = server
        .call("PATCH", &put_path, Some(&json!({"driver_type": "x"})))
        .await;
    assert_eq!(resp.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn auth_and_org_checks() {
    let server = TestServer::start(config()).await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("test-token"),
        Some("Basic dGVzdA=="),
        Some("Bearer "),
    ] {
        let resp = server.call_raw("GET", DEFS, auth, None).await;
        assert_eq!(resp.status, 401, "{auth:?}");
        assert_eq!(code(&resp.body()), "API-001");
        assert!(resp.body()["message"].is_string());
    }
    let ok = server
        .call_raw("GET", DEFS, Some("bearer test-token"), None)
        .await;
    assert_eq!(ok.status, 200);
    for org in ["A", "a", "a--b", "-ab", "bad_org"] {
        let resp = server
            .call("GET", &format!("/orgs/{org}/resources/defs"), None)
            .await;
        assert_eq!(resp.status, 404, "{org}");
    }
    server.stop().await;

    // Without --token any bearer token works, but one is still required.
    let open = TestServer::start(Options {
        token: None,
        ..config()
    })
    .await;
    let resp = open
        .call_raw("GET", DEFS, Some("Bearer anything"), None)
        .await;
    assert_eq!(resp.status, 200);
    let resp = open.call_raw("GET", DEFS, None, None).await;
    assert_eq!(resp.status, 401);
    open.stop().await;
}

#[tokio::test]
async fn secrets_are_stored_and_returned_only_as_refs() {
    let server = TestServer::start(config()).await;
    // Why a string: `json!` would turn 1.50 into 1.5; the raw text checks that numbers stay as sent.
    let body: Value = serde_json::from_str(
        r#"{
        "id": "with-secrets", "name": "S", "type": "config", "driver_type": "humanitec/template",
        "driver_inputs": {
            "values": {"templates": {"outputs": "a: <b> & c\n"}, "n": 1.50,
                       "big": 123456789012345678901234567890},
            "secrets": {"agent_url": "https://agent", "nested": {"pw": "s3cret"}},
            "secret_refs": {
                "source": {"password": {"store": "my-store", "ref": "path/to/pw"}},
                "token": {"value": "tok-value"},
                "pinned": {"store": "vault", "ref": "x", "version": "7"}
            }
        }
    }"#,
    )
    .expect("test body");
    let created = server.call("POST", DEFS, Some(&body)).await;
    assert_eq!(created.status, 200, "{}", created.text);
    // Plaintext never comes back, and neither does a `secrets` key.
    for plaintext in ["https://agent", "s3cret", "tok-value"] {
        assert!(!created.text.contains(plaintext), "{plaintext} leaked");
    }
    let inputs = &created.body()["driver_inputs"];
    assert!(inputs.get("secrets").is_none());
    // Values are kept as sent, numbers included (no reformatting).
    assert!(created.text.contains("1.50"));
    assert!(created.text.contains("123456789012345678901234567890"));
    assert_eq!(inputs["values"]["templates"]["outputs"], "a: <b> & c\n");
    let refs = &inputs["secret_refs"];
    let prefix = "orgs--test-org--resources--defs--with-secrets--driver_secrets--";
    assert_eq!(
        refs["agent_url"],
        json!({"store": "sandbox-primary", "ref": format!("{prefix}agent_url"), "version": "1"})
    );
    assert_eq!(
        refs["nested"]["pw"],
        json!({"store": "sandbox-primary", "ref": format!("{prefix}nested--pw"), "version": "1"})
    );
    assert_eq!(
        refs["token"],
        json!({"store": "sandbox-primary", "ref": format!("{prefix}token"), "version": "1"})
    );
    assert_eq!(
        refs["source"]["password"],
        json!({"store": "my-store", "ref": "path/to/pw", "version": "1"})
    );
    assert_eq!(refs["pinned"]["version"], "7");

    // The secrets really arrived in the primary store.
    let store = server
        .call("GET", "/_sandbox/orgs/test-org/secrets", None)
        .await;
    assert_eq!(store.status, 200);
    let secrets = &store.body()["secrets"];
    assert_eq!(
        secrets[format!("{prefix}agent_url")]["value"],
        "https://agent"
    );
    assert_eq!(secrets[format!("{prefix}nested--pw")]["value"], "s3cret");
    assert_eq!(secrets[format!("{prefix}token")]["value"], "tok-value");

    // Each write carrying a secret bumps its version, even with the same value.
    let put_path = format!("{DEFS}/with-secrets");
    let put_body =
        json!({"name": "S", "driver_inputs": {"secrets": {"agent_url": "https://agent"}}});
    let first = server.call("PUT", &put_path, Some(&put_body)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(
        first.body()["driver_inputs"]["secret_refs"]["agent_url"]["version"],
        "2"
    );
    // PUT replaced driver_inputs: values, nested and the user refs are gone.
    assert!(first.body()["driver_inputs"].get("values").is_none());
    assert!(
        first.body()["driver_inputs"]["secret_refs"]
            .get("nested")
            .is_none()
    );
    let second = server.call("PUT", &put_path, Some(&put_body)).await;
    assert_eq!(
        second.body()["driver_inputs"]["secret_refs"]["agent_url"]["version"],
        "3"
    );
    let fetched = server.call("GET", &put_path, None).await;
    assert_eq!(
        fetched.body()["driver_inputs"]["secret_refs"]["agent_url"]["version"],
        "3"
    );
    // PATCH with a secret bumps too, and keeps the rest.
    let patched = server
        .call(
            "PATCH",
            &put_path,
            Some(&json!({"driver_inputs": {"secret_refs": {"extra": {"value": "e"}}}})),
        )
        .await;
    let refs = &patched.body()["driver_inputs"]["secret_refs"];
    assert_eq!(refs["agent_url"]["version"], "3");
    assert_eq!(refs["extra"]["version"], "1");
    // Sending back a ref the API returned keeps it as a user ref.
    let echoed = json!({"name": "S", "driver_inputs": {"secret_refs": {"agent_url": refs["agent_url"].clone()}}});
    let resp = server.call("PUT", &put_path, Some(&echoed)).await;
    assert_eq!(
        resp.body()["driver_inputs"]["secret_refs"]["agent_url"],
        refs["agent_url"]
    );
    server.stop().await;
}

#[tokio::test]
async fn put_replaces_and_leaves_criteria_alone() {
    let server = TestServer::start(config()).await;
    let body = json!({
        "id": "full", "name": "Full", "type": "s3", "driver_type": "humanitec/container-runner",
        "driver_account": "aws-dev", "in_place_driver_change": true,
        "driver_inputs": {"values": {"job": {"image": "img:1"}}},
        "provision": {"aws-policy": {"is_dependent": true}, "dns#my-dns": {}},
        "criteria": [{"env_type": "development"}, {"app_id": "app", "class": "large"}]
    });
    let created = server.call("POST", DEFS, Some(&body)).await.body();
    assert_eq!(
        created["provision"],
        json!({"aws-policy": {"is_dependent": true, "match_dependents": false},
               "dns#my-dns": {"is_dependent": false, "match_dependents": false}})
    );
    let criteria = created["criteria"].clone();
    let path = format!("{DEFS}/full");
    let updated = server
        .call(
            "PUT",
            &path,
            Some(&json!({"name": "Renamed", "driver_type": ""})),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let updated = updated.body();
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["driver_type"], "humanitec/container-runner");
    assert_eq!(updated["type"], "s3");
    assert!(updated.get("driver_account").is_none());
    assert!(updated.get("driver_inputs").is_none());
    assert!(updated.get("provision").is_none());
    assert_eq!(updated["in_place_driver_change"], false);
    assert_eq!(updated["criteria"], criteria);
    assert_ne!(updated["active_version_id"], created["active_version_id"]);
    assert_eq!(updated["created_at"], created["created_at"]);
    let changed_driver = server
        .call(
            "PUT",
            &path,
            Some(&json!({"name": "R", "driver_type": "humanitec/echo"})),
        )
        .await
        .body();
    assert_eq!(changed_driver["driver_type"], "humanitec/echo");
    // A proposed version leaves the active definition as it is.
    let proposed = server
        .call(
            "PUT",
            &path,
            Some(&json!({"name": "Proposed", "proposed": true})),
        )
        .await
        .body();
    assert_eq!(proposed["name"], "R");
    assert_eq!(
        proposed["active_version_id"],
        changed_driver["active_version_id"]
    );
    server.stop().await;
}

#[tokio::test]
async fn patch_merges() {
    let server = TestServer::start(config()).await;
    let body = json!({
        "id": "merge-me", "name": "M", "type": "s3", "driver_type": "humanitec/echo",
        "driver_account": "acct-1",
        "driver_inputs": {"values": {"job": {"image": "a", "command": ["x"]}, "keep": 1, "drop": 2},
                          "secrets": {"s1": "v1", "s2": "v2"}},
        "provision": {"a": {"is_dependent": true}, "b": {}},
        "criteria": [{"env_type": "dev"}]
    });
    let created = server.call("POST", DEFS, Some(&body)).await.body();
    let path = format!("{DEFS}/merge-me");
    let patch = json!({
        "name": null,
        "driver_inputs": {"values": {"job": {"image": "b"}, "drop": null, "new": true},
                          "secrets": {"s2": null, "s3": "v3"}},
        "provision": {"b": null, "c": {"match_dependents": true}}
    });
    let patched = server.call("PATCH", &path, Some(&patch)).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let patched = patched.body();
    assert_eq!(patched["name"], "M");
    assert_eq!(patched["driver_account"], "acct-1");
    assert_eq!(
        patched["driver_inputs"]["values"],
        json!({"job": {"image": "b", "command": ["x"]}, "keep": 1, "new": true})
    );
    let refs = patched["driver_inputs"]["secret_refs"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let keys: Vec<&str> = refs.keys().map(String::as_str).collect();
    assert_eq!(keys, ["s1", "s3"]);
    assert_eq!(refs["s1"]["version"], "1");
    assert_eq!(
        patched["provision"],
        json!({"a": {"is_dependent": true, "match_dependents": false},
               "c": {"is_dependent": false, "match_dependents": true}})
    );
    assert_eq!(patched["criteria"], created["criteria"]);
    // An empty patch changes nothing but the version.
    let same = server.call("PATCH", &path, Some(&json!({}))).await.body();
    assert_eq!(same["driver_inputs"], patched["driver_inputs"]);
    // values: null removes them; secret_refs: null removes all refs.
    let cleared = server
        .call(
            "PATCH",
            &path,
            Some(&json!({"driver_inputs": {"values": null, "secret_refs": null}, "driver_account": ""})),
        )
        .await
        .body();
    assert!(cleared.get("driver_inputs").is_none(), "{cleared}");
    assert!(cleared.get("driver_account").is_none());
    server.stop().await;
}

#[tokio::test]
async fn criteria_ids_defaults_and_duplicates() {
    let server = TestServer::start(config()).await;
    let created = server
        .call(
            "POST",
            DEFS,
            Some(&json!({"id": "crit", "name": "C", "type": "postgres", "driver_type": "d",
                         "criteria": [{"env_type": "development"}, {"res_id": "db", "class": "big", "app_id": ""}]})),
        )
        .await
        .body();
    let criteria = created["criteria"].as_array().cloned().unwrap_or_default();
    assert_eq!(criteria.len(), 2);
    assert_eq!(criteria[0]["class"], "default");
    assert_eq!(criteria[1]["class"], "big");
    assert!(
        criteria[1].get("app_id").is_none(),
        "empty string counts as unset"
    );
    assert!(
        criteria
            .iter()
            .all(|c| c["id"].as_str().is_some_and(|s| !s.is_empty()))
    );
    assert_ne!(criteria[0]["id"], criteria[1]["id"]);

    let path = format!("{DEFS}/crit/criteria");
    let added = server
        .call("POST", &path, Some(&json!({"app_id": "my-app"})))
        .await;
    assert_eq!(added.status, 200, "{}", added.text);
    assert_eq!(added.body()["class"], "default");
    assert_eq!(added.body()["app_id"], "my-app");
    // The same rule again (class defaulted on both sides): 409.
    let dup = server
        .call(
            "POST",
            &path,
            Some(&json!({"app_id": "my-app", "class": "default"})),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(code(&dup.body()), "API-004");
    // Another definition of the same type can't register it either; another type can.
    server
        .call(
            "POST",
            DEFS,
            Some(&json!({"id": "crit-2", "name": "C2", "type": "postgres", "driver_type": "d"})),
        )
        .await;
    let other = server
        .call(
            "POST",
            &format!("{DEFS}/crit-2/criteria"),
            Some(&json!({"env_type": "development"})),
        )
        .await;
    assert_eq!(other.status, 409);
    server
        .call(
            "POST",
            DEFS,
            Some(&json!({"id": "crit-3", "name": "C3", "type": "mysql", "driver_type": "d"})),
        )
        .await;
    let other_type = server
        .call(
            "POST",
            &format!("{DEFS}/crit-3/criteria"),
            Some(&json!({"env_type": "development"})),
        )
        .await;
    assert_eq!(other_type.status, 200);
    // Unknown field in a rule.
    let bad = server.call("POST", &path, Some(&json!({"env": "x"}))).await;
    assert_eq!(bad.status, 400);

    // PUT replaces all; identical rules keep their ids; duplicates inside the body are a 409.
    let kept_id = criteria[0]["id"].clone();
    let replaced = server
        .call(
            "PUT",
            &path,
            Some(&json!([{"env_type": "development"}, {"env_id": "prod"}])),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let replaced = replaced.body();
    assert_eq!(replaced[0]["id"], kept_id);
    assert_eq!(replaced[1]["env_id"], "prod");
    assert_eq!(replaced.as_array().map(Vec::len), Some(2));
    let dup_body = server
        .call(
            "PUT",
            &path,
            Some(&json!([{"env_id": "a"}, {"env_id": "a", "class": "default"}])),
        )
        .await;
    assert_eq!(dup_body.status, 409);
    let not_array = server
        .call("PUT", &path, Some(&json!({"env_id": "a"})))
        .await;
    assert_eq!(not_array.status, 422);
    let fetched = server
        .call("GET", &format!("{DEFS}/crit"), None)
        .await
        .body();
    assert_eq!(fetched["criteria"], replaced);

    // Delete one criterion; unknown ids are 404.
    let crit_id = replaced[1]["id"].as_str().unwrap_or_default().to_owned();
    let deleted = server
        .call("DELETE", &format!("{path}/{crit_id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.text.is_empty());
    let again = server
        .call("DELETE", &format!("{path}/{crit_id}"), None)
        .await;
    assert_eq!(again.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn delete_with_active_resources() {
    let server = TestServer::start(config()).await;
    let make = |id: &str, criteria: Value| json!({"id": id, "name": id, "type": "s3", "driver_type": "d", "criteria": criteria});
    server
        .call(
            "POST",
            DEFS,
            Some(&make("in-use", json!([{"env_type": "development"}]))),
        )
        .await;
    server
        .call("POST", DEFS, Some(&make("fallback", json!([{}]))))
        .await;
    let active = json!([{"app_id": "app1", "env_id": "dev", "res_id": "modules.w.externals.s3"}]);
    let set = server
        .call(
            "PUT",
            "/_sandbox/orgs/test-org/resources/defs/in-use/active-resources",
            Some(&active),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);

    let resources = server
        .call("GET", &format!("{DEFS}/in-use/resources"), None)
        .await;
    assert_eq!(resources.status, 200);
    let list = resources.body();
    assert_eq!(list[0]["app_id"], "app1");
    assert_eq!(list[0]["def_id"], "in-use");
    assert_eq!(list[0]["class"], "default");
    assert_eq!(list[0]["scheduled_deletion"], false);
    assert!(list[0]["criteria_id"].is_string());
    assert_eq!(list[0]["gu_res_id"].as_str().map(str::len), Some(40));

    // The only criterion can't go without force: the resource would move to `fallback`.
    let def = server
        .call("GET", &format!("{DEFS}/in-use"), None)
        .await
        .body();
    let crit_id = def["criteria"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let crit_path = format!("{DEFS}/in-use/criteria/{crit_id}");
    let blocked = server.call("DELETE", &crit_path, None).await;
    assert_eq!(blocked.status, 409);
    assert_eq!(
        blocked.body(),
        json!([{"app_id": "app1", "env_id": "dev", "res_id": "modules.w.externals.s3",
                "from_def": "in-use", "to_def": "fallback"}])
    );

    // Deleting the definition is blocked the same way, with a JSON array.
    let path = format!("{DEFS}/in-use");
    let blocked = server.call("DELETE", &path, None).await;
    assert_eq!(blocked.status, 409);
    assert!(blocked.body().is_array());
    assert_eq!(blocked.body()[0]["to_def"], "fallback");
    let still = server.call("GET", &path, None).await;
    assert_eq!(still.status, 200);

    // force=true marks it deleted: hidden unless deleted=true.
    let forced = server
        .call("DELETE", &format!("{path}?force=true"), None)
        .await;
    assert_eq!(forced.status, 204);
    assert_eq!(server.call("GET", &path, None).await.status, 404);
    let shown = server
        .call("GET", &format!("{path}?deleted=true"), None)
        .await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body()["is_deleted"], true);
    let listed = server.call("GET", DEFS, None).await.body();
    assert!(!mentions(&listed, "\"in-use\""));
    let listed = server
        .call("GET", &format!("{DEFS}?deleted=true"), None)
        .await
        .body();
    assert!(mentions(&listed, "\"in-use\""));
    // Marked definitions can't be changed, and their id can't be reused yet.
    assert_eq!(
        server
            .call("PUT", &path, Some(&json!({"name": "x"})))
            .await
            .status,
        404
    );
    assert_eq!(server.call("DELETE", &path, None).await.status, 404);
    assert_eq!(
        server
            .call("POST", DEFS, Some(&minimal("in-use")))
            .await
            .status,
        409
    );
    let resources = server
        .call("GET", &format!("{DEFS}/in-use/resources"), None)
        .await;
    assert_eq!(resources.body()[0]["scheduled_deletion"], true);

    // Once its resources are gone (next deployment), it is removed for good.
    server
        .call(
            "PUT",
            "/_sandbox/orgs/test-org/resources/defs/in-use/active-resources",
            Some(&json!([])),
        )
        .await;
    assert_eq!(
        server
            .call("GET", &format!("{path}?deleted=true"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        server
            .call("POST", DEFS, Some(&minimal("in-use")))
            .await
            .status,
        200
    );

    // Without Active Resources, delete is immediate (force or not).
    assert_eq!(
        server
            .call("DELETE", &format!("{DEFS}/fallback"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        server
            .call("GET", &format!("{DEFS}/fallback?deleted=true"), None)
            .await
            .status,
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn not_found_and_method_errors() {
    let server = TestServer::start(config()).await;
    for (method, path, body) in [
        ("GET", format!("{DEFS}/nope"), None),
        ("PUT", format!("{DEFS}/nope"), Some(json!({"name": "x"}))),
        ("PATCH", format!("{DEFS}/nope"), Some(json!({}))),
        ("DELETE", format!("{DEFS}/nope"), None),
        ("PUT", format!("{DEFS}/nope/criteria"), Some(json!([]))),
        ("POST", format!("{DEFS}/nope/criteria"), Some(json!({}))),
        ("DELETE", format!("{DEFS}/nope/criteria/c1"), None),
        ("GET", "/orgs/test-org/apps".to_owned(), None),
        ("GET", format!("{DEFS}/"), None),
        ("GET", "/".to_owned(), None),
    ] {
        let resp = server.call(method, &path, body.as_ref()).await;
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text);
        assert_eq!(code(&resp.body()), "API-003");
    }
    // The spec declares only 200 for the Active Resources list, so an unknown definition lists none.
    let resp = server
        .call("GET", &format!("{DEFS}/nope/resources"), None)
        .await;
    assert_eq!((resp.status, resp.body()), (200, json!([])));
    let resp = server.call("DELETE", DEFS, None).await;
    assert_eq!(resp.status, 405);
    assert_eq!(code(&resp.body()), "API-006");
    let resp = server
        .call("GET", &format!("{DEFS}/x/versions"), None)
        .await;
    assert_eq!(resp.status, 501);
    let resp = server
        .call("GET", &format!("{DEFS}?deleted=maybe"), None)
        .await;
    assert_eq!(resp.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn list_filters_may_match() {
    let server = TestServer::start(config()).await;
    let defs = [
        ("a-dev", "s3", json!([{"env_type": "development"}])),
        (
            "b-app",
            "s3",
            json!([{"app_id": "shop", "res_id": "modules.x.externals.bucket"}]),
        ),
        ("c-none", "s3", json!([])),
        (
            "d-pg",
            "postgres",
            json!([{"env_type": "development", "class": "large"}]),
        ),
    ];
    for (id, res_type, criteria) in defs {
        let body = json!({"id": id, "name": id, "type": res_type, "driver_type": "d", "criteria": criteria});
        assert_eq!(server.call("POST", DEFS, Some(&body)).await.status, 200);
    }
    let ids = |value: Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let list = |query: &'static str| {
        let server = &server;
        async move {
            let resp = server.call("GET", &format!("{DEFS}{query}"), None).await;
            assert_eq!(resp.status, 200, "{query}");
            ids(resp.body())
        }
    };
    assert_eq!(list("").await, ["d-pg", "a-dev", "b-app", "c-none"]);
    assert_eq!(list("?res_type=s3").await, ["a-dev", "b-app", "c-none"]);
    // Within a type, the more specific possible match comes first.
    assert_eq!(
        list("?env_type=development").await,
        ["d-pg", "b-app", "a-dev"]
    );
    assert_eq!(list("?env_type=production").await, ["b-app"]);
    assert_eq!(list("?app=shop&res_type=s3").await, ["b-app", "a-dev"]);
    assert_eq!(list("?app=other").await, ["d-pg", "a-dev"]);
    assert_eq!(list("?class=large").await, ["d-pg"]);
    assert_eq!(list("?res=modules.y").await, ["d-pg", "a-dev"]);
    assert_eq!(
        list("?unknown=1&app=").await,
        ["d-pg", "a-dev", "b-app", "c-none"]
    );
    server.stop().await;
}

#[tokio::test]
async fn persistence_round_trip() {
    let dir = scratch_dir("persist");
    let file = dir.join("state.json");
    let with_data = Options {
        data: Some(file.clone()),
        ..config()
    };
    let server = TestServer::start(with_data.clone()).await;
    let body = json!({"id": "kept", "name": "K", "type": "s3", "driver_type": "d",
                      "driver_inputs": {"values": {"n": 1.0}, "secrets": {"pw": "p"}},
                      "criteria": [{"env_type": "dev"}]});
    let created = server.call("POST", DEFS, Some(&body)).await.body();
    assert!(file.exists(), "saved after the change");
    let saved = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(saved.contains("\n  "), "pretty JSON");
    server
        .call(
            "PUT",
            "/_sandbox/orgs/test-org/resources/defs/kept/active-resources",
            Some(&json!([{"app_id": "a", "env_id": "e", "res_id": "r"}])),
        )
        .await;
    server.stop().await;
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(leftovers.len(), 1, "no temp files left: {leftovers:?}");

    let restarted = TestServer::start(with_data).await;
    let fetched = restarted.call("GET", &format!("{DEFS}/kept"), None).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body(), created);
    assert!(fetched.text.contains("1.0"));
    let resources = restarted
        .call("GET", &format!("{DEFS}/kept/resources"), None)
        .await;
    assert_eq!(resources.body()[0]["res_id"], "r");
    let secrets = restarted
        .call("GET", "/_sandbox/orgs/test-org/secrets", None)
        .await
        .body();
    assert!(mentions(&secrets, "\"p\""));
    // Ids stay unique across the restart even with the same seed.
    let criterion = restarted
        .call(
            "POST",
            &format!("{DEFS}/kept/criteria"),
            Some(&json!({"env_type": "prod"})),
        )
        .await
        .body();
    assert_ne!(criterion["id"], created["criteria"][0]["id"]);
    assert_ne!(criterion["id"], created["active_version_id"]);
    restarted.stop().await;

    // A file that is not a data file stops the start.
    std::fs::write(&file, "not json").unwrap_or_default();
    let broken = crate::server::App::new(&Options {
        data: Some(file.clone()),
        ..config()
    })
    .await;
    assert!(broken.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn fault_injection_kinds_and_rates() {
    let server = TestServer::start(Options {
        fault_rate: 1.0,
        ..config()
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..80 {
        let resp = server
            .call("POST", DEFS, Some(&minimal(&format!("f-{i:03}"))))
            .await;
        match resp.status {
            429 => {
                assert_eq!(resp.header("retry-after").as_deref(), Some("1"));
                assert_eq!(code(&resp.body()), "API-007");
            }
            500 | 503 => assert!(resp.json.is_some()),
            502 => assert!(resp.json.is_none(), "502 is an HTML page"),
            other => panic!("no fault at rate 1.0: {other}"),
        }
        seen.insert(resp.status);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [429, 500, 502, 503]);
    let stats = server.call("GET", "/_sandbox/stats", None).await.body();
    assert_eq!(stats["requests"], 80);
    assert_eq!(stats["faults_injected"], 80);
    for kind in [
        "429_before",
        "500_before",
        "502_before",
        "503_before",
        "502_after",
        "503_after",
    ] {
        assert!(
            stats["faults"][kind].as_u64().is_some_and(|n| n > 0),
            "{kind}: {stats}"
        );
    }
    // Faults "after processing" really applied the change: exactly those definitions exist.
    let settings = server
        .call(
            "PUT",
            "/_sandbox/faults",
            Some(&json!({"rate": 0, "latency_ms": 0})),
        )
        .await;
    assert_eq!(settings.body()["rate"], 0.0);
    let listed = server.call("GET", DEFS, None).await.body();
    let after = stats["faults"]["502_after"].as_u64().unwrap_or(0)
        + stats["faults"]["503_after"].as_u64().unwrap_or(0);
    assert_eq!(listed.as_array().map(Vec::len), Some(after as usize));
    // Reads only get "before" faults.
    server
        .call("PUT", "/_sandbox/faults", Some(&json!({"rate": 1.0})))
        .await;
    for _ in 0..30 {
        let resp = server.call("GET", DEFS, None).await;
        assert!([429, 500, 502, 503].contains(&resp.status));
    }
    let stats = server.call("GET", "/_sandbox/stats", None).await.body();
    assert_eq!(stats["faults_injected"], 110);
    // Bad settings are rejected; admin endpoints never get faults.
    let bad = server
        .call("PUT", "/_sandbox/faults", Some(&json!({"rate": 2})))
        .await;
    assert_eq!(bad.status, 400);
    let bad = server
        .call(
            "PUT",
            "/_sandbox/faults",
            Some(&json!({"rate": 0.5, "x": 1})),
        )
        .await;
    assert_eq!(bad.status, 400);
    // Rate 0: none.
    server
        .call("PUT", "/_sandbox/faults", Some(&json!({"rate": 0.0})))
        .await;
    for i in 0..30 {
        let resp = server
            .call("POST", DEFS, Some(&minimal(&format!("z-{i:03}"))))
            .await;
        assert_eq!(resp.status, 200);
    }
    let stats = server.call("GET", "/_sandbox/stats", None).await.body();
    assert_eq!(stats["faults_injected"], 110);
    server.stop().await;
}

#[tokio::test]
async fn latency_delays_org_requests() {
    let server = TestServer::start(Options {
        latency_ms: 150,
        ..config()
    })
    .await;
    let started = std::time::Instant::now();
    assert_eq!(server.call("GET", DEFS, None).await.status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    let started = std::time::Instant::now();
    server.call("GET", "/_sandbox/stats", None).await;
    assert!(started.elapsed() < std::time::Duration::from_millis(150));
    server.stop().await;
}

/// Sets fault settings through the admin endpoint; answers the status and the settings.
async fn set_faults(server: &TestServer, settings: Value) -> (u16, Value) {
    let resp = server
        .call("PUT", "/_sandbox/faults", Some(&settings))
        .await;
    (resp.status, resp.body())
}

#[tokio::test]
async fn dropped_answers_leave_the_change_applied() {
    // Every create is applied and its connection closed without an answer; other methods are
    // not touched.
    let server = TestServer::start(Options {
        after: crate::faults::AfterFaults {
            rate: 1.0,
            kinds: vec![crate::faults::FaultKind::Dropped],
            methods: vec!["POST"],
            delay_ms: 0,
        },
        ..config()
    })
    .await;
    for i in 0..5 {
        let sent = server
            .try_call("POST", DEFS, Some(&minimal(&format!("lost-{i}"))))
            .await;
        assert!(sent.is_err(), "a dropped answer is no answer: {sent:?}");
    }
    for i in 0..5 {
        let fetched = server.call("GET", &format!("{DEFS}/lost-{i}"), None).await;
        assert_eq!(fetched.status, 200, "the create was applied");
    }
    // A retried create sees its own earlier success as a conflict: the client must look it up.
    server
        .call(
            "PUT",
            "/_sandbox/faults",
            Some(&json!({"after_methods": ["PUT"]})),
        )
        .await;
    let again = server.call("POST", DEFS, Some(&minimal("lost-0"))).await;
    assert_eq!(again.status, 409);
    let stats = server.call("GET", "/_sandbox/stats", None).await.body();
    assert_eq!(stats["faults"]["drop_after"], 5);
    assert_eq!(stats["faults_injected"], 5);
    assert_eq!(stats["responses_by_status"]["200"], 5, "{stats}");
    server.stop().await;
}

#[tokio::test]
async fn gateway_errors_after_processing_replace_the_answer() {
    let server = TestServer::start(config()).await;
    let (status, settings) = set_faults(
        &server,
        json!({"after_rate": 1, "after_kinds": ["504"], "after_methods": ["post", "DELETE"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(settings["after_kinds"], json!(["504"]));
    assert_eq!(settings["after_methods"], json!(["POST", "DELETE"]));
    let resp = server.call("POST", DEFS, Some(&minimal("gw-one"))).await;
    assert_eq!(resp.status, 504);
    assert!(resp.json.is_none(), "a 504 is an HTML page: {}", resp.text);
    assert!(resp.text.contains("504 Gateway Time-out"));
    // Reads and updates are not faulted; the create is there.
    assert_eq!(
        server
            .call("GET", &format!("{DEFS}/gw-one"), None)
            .await
            .status,
        200
    );
    let updated = server
        .call(
            "PUT",
            &format!("{DEFS}/gw-one"),
            Some(&json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(updated.status, 200);
    // Requests that fail still get the fault: the answer is replaced whatever it was.
    let duplicate = server.call("POST", DEFS, Some(&minimal("gw-one"))).await;
    assert_eq!(duplicate.status, 504);

    set_faults(&server, json!({"after_kinds": ["502"]})).await;
    let deleted = server.call("DELETE", &format!("{DEFS}/gw-one"), None).await;
    assert_eq!(deleted.status, 502);
    assert!(deleted.json.is_none());
    assert_eq!(
        server
            .call("GET", &format!("{DEFS}/gw-one"), None)
            .await
            .status,
        404
    );

    // A mix at rate 1: every kind shows up, and every create was applied.
    set_faults(
        &server,
        json!({"after_kinds": ["drop", "502", "504"], "after_methods": ["POST"]}),
    )
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..40 {
        let sent = server
            .try_call("POST", DEFS, Some(&minimal(&format!("mix-{i:02}"))))
            .await;
        seen.insert(sent.map_or(0, |resp| resp.status));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [0, 502, 504]);
    set_faults(&server, json!({"after_rate": 0})).await;
    let listed = server.call("GET", DEFS, None).await.body();
    assert_eq!(listed.as_array().map(Vec::len), Some(40));
    server.stop().await;
}

#[tokio::test]
async fn delayed_answers_come_after_the_change_is_visible() {
    let server = TestServer::start(config()).await;
    let (status, _) = set_faults(
        &server,
        json!({"after_rate": 1, "after_kinds": ["delay"], "after_delay_ms": 400,
               "after_methods": ["POST"]}),
    )
    .await;
    assert_eq!(status, 200);
    let body = minimal("slow-one");
    let started = std::time::Instant::now();
    let create = server.call("POST", DEFS, Some(&body));
    let look = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let seen = server.call("GET", &format!("{DEFS}/slow-one"), None).await;
        (seen.status, started.elapsed())
    };
    let (created, (seen, seen_at)) = tokio::join!(create, look);
    assert_eq!(created.status, 200, "the real answer, late");
    assert_eq!(created.body()["id"], "slow-one");
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    assert_eq!(seen, 200, "applied before the answer was sent");
    assert!(seen_at < std::time::Duration::from_millis(400));
    server.stop().await;
}

#[tokio::test]
async fn after_fault_settings_are_checked() {
    let server = TestServer::start(config()).await;
    let (_, defaults) = set_faults(&server, json!({})).await;
    assert_eq!(defaults["after_rate"], 0.0);
    assert_eq!(defaults["after_kinds"], json!(["502", "504", "drop"]));
    assert_eq!(
        defaults["after_methods"],
        json!(["GET", "POST", "PUT", "PATCH", "DELETE"])
    );
    assert_eq!(defaults["after_delay_ms"], 0);
    for bad in [
        json!({"after_rate": 1.5}),
        json!({"after_kinds": []}),
        json!({"after_kinds": ["503"]}),
        json!({"after_kinds": [502]}),
        json!({"after_kinds": "drop"}),
        json!({"after_methods": ["HEAD"]}),
        json!({"after_delay_ms": -1}),
        // `delay` without a delay does nothing.
        json!({"after_kinds": ["delay"]}),
    ] {
        let (status, _) = set_faults(&server, bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
    }
    // A refused body changes nothing.
    let current = server.call("GET", "/_sandbox/faults", None).await.body();
    assert_eq!(current, defaults);
    let (status, set) = set_faults(
        &server,
        json!({"after_kinds": ["delay"], "after_delay_ms": 5}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(set["after_kinds"], json!(["delay"]));
    assert_eq!(set["after_delay_ms"], 5);
    server.stop().await;
}

#[tokio::test]
async fn stale_temp_files_are_removed_on_start() {
    let dir = scratch_dir("stale-temps");
    let file = dir.join("state.json");
    // Temp files of sandboxes killed during a save: one whose process is gone, one with this
    // process's id (an earlier process with the same id).
    let dead = dir.join("state.json.tmp-999999999");
    let own = dir.join(format!("state.json.tmp-{}", std::process::id()));
    // Not ours to remove: another file's temp, other suffixes, and (where /proc tells) a temp file
    // whose process still runs (pid 1 always does).
    let keep = [
        "other.json.tmp-999999999",
        "state.json.tmp-",
        "state.json.tmp-12x",
        "state.json.bak",
        "xstate.json.tmp-999999999",
    ];
    for path in [&dead, &own] {
        std::fs::write(path, "{\"format\": 1, \"cou").expect("write temp");
    }
    for name in keep {
        std::fs::write(dir.join(name), "x").expect("write other");
    }
    let live = dir.join("state.json.tmp-1");
    std::fs::write(&live, "x").expect("write live");
    let server = TestServer::start(Options {
        data: Some(file.clone()),
        ..config()
    })
    .await;
    assert!(!dead.exists(), "a dead process's temp file is removed");
    assert!(!own.exists(), "a temp file with our pid is stale");
    for name in keep {
        assert!(dir.join(name).exists(), "{name} is kept");
    }
    if std::path::Path::new("/proc/self").exists() {
        assert!(live.exists(), "a running process's temp file is kept");
    }
    // Saving still works and leaves no temp file of its own.
    assert_eq!(
        server
            .call("POST", DEFS, Some(&minimal("after-clean")))
            .await
            .status,
        200
    );
    server.stop().await;
    assert!(file.exists());
    assert!(!own.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_in_process_handle_scripts_faults_records_requests_and_reads_the_store() {
    use std::time::{Duration, Instant};

    use crate::{Answer, Sandbox, ScriptedAction, ScriptedFault};

    let sandbox = Sandbox::start(Options {
        record_requests: true,
        log_requests: false,
        ..config()
    })
    .expect("starts");
    assert!(
        sandbox.url().starts_with("http://127.0.0.1:"),
        "{}",
        sandbox.url()
    );
    assert_eq!(sandbox.token(), Some(crate::test_support::TOKEN));
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{}", sandbox.url(), path.trim_start_matches('/'));
    let send = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = client
            .request(method, url(path))
            .bearer_auth(crate::test_support::TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };

    // A definition made through the handle is the API's, and is not a request.
    let made = sandbox
        .create_definition("test-org", &minimal("seeded"))
        .expect("valid");
    assert_eq!(made["id"], "seeded");
    let refused = sandbox
        .create_definition("test-org", &json!({"id": "x"}))
        .expect_err("invalid");
    assert_eq!(refused.0, 400);
    assert!(sandbox.requests().is_empty());

    // An answer, twice, then the real one; the store untouched.
    sandbox.script(
        ScriptedFault::next(
            "GET",
            "/seeded",
            ScriptedAction::Answer(Answer::error(429, "API-007", "slow down").retry_after("3")),
        )
        .times(2),
    );
    for _ in 0..2 {
        let response = send(reqwest::Method::GET, &format!("{DEFS}/seeded"), None)
            .await
            .expect("answer");
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body, json!({"error": "API-007", "message": "slow down"}));
    }
    let response = send(reqwest::Method::GET, &format!("{DEFS}/seeded"), None)
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);

    // Applied, then the answer replaced: the change is in the store.
    sandbox.script(ScriptedFault::next(
        "POST",
        "/defs",
        ScriptedAction::ApplyThenAnswer(Answer::empty(502)),
    ));
    let response = send(reqwest::Method::POST, DEFS, Some(minimal("lost-one")))
        .await
        .expect("answer");
    assert_eq!(response.status(), 502);
    assert!(sandbox.definitions("test-org").contains_key("lost-one"));

    // Applied, then the connection closed without an answer.
    sandbox.script(ScriptedFault::next(
        "POST",
        "/defs",
        ScriptedAction::ApplyThenDrop,
    ));
    send(reqwest::Method::POST, DEFS, Some(minimal("dropped-one")))
        .await
        .expect_err("no answer");
    assert!(sandbox.definitions("test-org").contains_key("dropped-one"));

    // A stall before processing, and one after.
    for action in [
        ScriptedAction::Stall(Duration::from_millis(300)),
        ScriptedAction::ApplyThenStall(Duration::from_millis(300)),
    ] {
        sandbox.script(ScriptedFault::next("GET", "/seeded", action));
        let started = Instant::now();
        let response = send(reqwest::Method::GET, &format!("{DEFS}/seeded"), None)
            .await
            .expect("answer");
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    // Every request, until the sandbox stops.
    sandbox.script(ScriptedFault::every_request(ScriptedAction::Answer(
        Answer::empty(503),
    )));
    for path in [DEFS.to_owned(), format!("{DEFS}/seeded")] {
        let response = send(reqwest::Method::GET, &path, None)
            .await
            .expect("answer");
        assert_eq!(response.status(), 503);
    }

    // Every request was recorded as sent, raw path, query and body included.
    let requests = sandbox.requests();
    assert_eq!(requests.len(), 9);
    assert_eq!(sandbox.count("GET", "/seeded"), 6);
    assert_eq!(sandbox.count("POST", "/defs"), 2);
    let post = &requests[3];
    assert_eq!((post.method.as_str(), post.path.as_str()), ("POST", DEFS));
    assert_eq!(post.json()["id"], "lost-one");
    assert_eq!(
        post.header("Authorization"),
        Some(format!("Bearer {}", crate::test_support::TOKEN))
    );
    assert_eq!(
        post.header("content-type").as_deref(),
        Some("application/json")
    );
    sandbox.stop().expect("stops cleanly");
}
