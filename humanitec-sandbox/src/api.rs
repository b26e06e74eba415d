//! The Resource Definitions API operations (`/orgs/{orgId}/resources/defs…`) and the sandbox's admin
//! operation on simulated Active Resources, as plain functions over the org store.
//!
//! Each operation validates the whole request before it changes anything, so a rejected request leaves
//! no trace. Operations return a [`Reply`] (any body the spec declares, including the 409 arrays) or an
//! [`ApiError`] (a `HumanitecErrorResponse`). HTTP, auth, faults and persistence live in `server.rs`.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::model::{
    ActiveResource, Criterion, Definition, Filter, Org, Orgs, Provision, Rule, Without,
    change_response,
};
use crate::rng::IdGen;
use crate::schema;
use crate::secrets::{self, Node, Sink};

/// A successful (or array-bodied 409) answer.
#[derive(Debug, PartialEq)]
pub(crate) struct Reply {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// The JSON body; `None` for 204.
    pub(crate) body: Option<Value>,
    /// Whether the store changed (so `--data` must be saved).
    pub(crate) mutated: bool,
}

impl Reply {
    /// 200 with a body, nothing changed.
    fn read(body: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
            mutated: false,
        }
    }

    /// 200 with a body after a change.
    fn changed(body: Value) -> Self {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
            mutated: true,
        }
    }

    /// 204 after a change.
    fn deleted() -> Self {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            mutated: true,
        }
    }
}

/// Everything an operation needs besides the store.
pub(crate) struct Ctx<'a> {
    /// The (validated) org id from the path.
    pub(crate) org_id: &'a str,
    /// The primary secret store id.
    pub(crate) primary_store: &'a str,
    /// Who is acting (`created_by` / `updated_by`).
    pub(crate) user: &'a str,
    /// The request time, RFC 3339.
    pub(crate) now: String,
    /// Id generator.
    pub(crate) ids: &'a mut IdGen,
}

/// A decoded query string (name, value) in order.
pub(crate) type Query = [(String, String)];

/// The last non-empty value of a query parameter.
fn query_value<'q>(query: &'q Query, name: &str) -> Option<&'q str> {
    query
        .iter()
        .rev()
        .find(|(key, value)| key == name && !value.is_empty())
        .map(|(_, value)| value.as_str())
}

/// A boolean query parameter, parsed like Go's `strconv.ParseBool` (the real API is written in Go).
fn query_bool(query: &Query, name: &str) -> Result<bool, ApiError> {
    match query_value(query, name) {
        None => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "Query parameter `{name}` must be a boolean, not `{other}`."
        ))),
    }
}

/// Parses a JSON request body. Empty or malformed JSON is a 422 (spec intro).
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unprocessable("The request body is empty."));
    }
    serde_json::from_slice(body).map_err(|err| {
        ApiError::unprocessable(format!("The request body is not valid JSON: {err}."))
    })
}

/// A string property (after validation; null counts as absent).
fn opt_str<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// A boolean property.
fn opt_bool(map: &Map<String, Value>, key: &str) -> Option<bool> {
    map.get(key).and_then(Value::as_bool)
}

/// An object property.
fn opt_obj<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    map.get(key).and_then(Value::as_object)
}

/// The object behind a validated body (validation guarantees an object; an empty map is the fallback).
fn as_object(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

/// A required, non-empty string property.
fn non_empty<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match opt_str(map, key) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ApiError::bad_request_at(
            key,
            format!("`{key}` must not be empty."),
        )),
    }
}

/// The live (not soft-deleted) definition, or 404.
fn live<'o>(org: Option<&'o Org>, def_id: &str) -> Result<&'o Definition, ApiError> {
    org.and_then(|org| org.defs.get(def_id))
        .filter(|def| !def.is_deleted)
        .ok_or_else(|| definition_not_found(def_id))
}

/// The 404 for a definition.
fn definition_not_found(def_id: &str) -> ApiError {
    ApiError::not_found(format!("Resource Definition with id `{def_id}` not found."))
}

/// A rule from a validated `MatchingCriteriaRuleRequest`. Empty strings count as not set; `class`
/// defaults to `default`.
fn rule_from(map: &Map<String, Value>) -> Rule {
    let field = |key: &str| {
        opt_str(map, key)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    Rule {
        app_id: field("app_id"),
        env_id: field("env_id"),
        env_type: field("env_type"),
        res_id: field("res_id"),
        class: field("class").unwrap_or_else(|| "default".to_owned()),
    }
}

/// The 409 for a rule that already exists for the Resource Type.
fn duplicate_rule(rule: &Rule, owner: &str, resource_type: &str) -> ApiError {
    let criterion = Criterion {
        id: String::new(),
        rule: rule.clone(),
    };
    let mut shown = criterion.response();
    if let Value::Object(map) = &mut shown {
        map.remove("id");
    }
    ApiError::conflict(format!(
        "Matching Criteria {shown} already exists for Resource Type `{resource_type}` \
         (Resource Definition `{owner}`)."
    ))
}

/// Rejects duplicates inside `rules`, and rules another live definition of the type already has
/// (`skip_def`: the definition whose criteria are being replaced).
fn check_rules(
    org: Option<&Org>,
    resource_type: &str,
    rules: &[Rule],
    skip_def: Option<&str>,
    own_id: &str,
) -> Result<(), ApiError> {
    for (index, rule) in rules.iter().enumerate() {
        if rules[..index].contains(rule) {
            return Err(duplicate_rule(rule, own_id, resource_type));
        }
        if let Some(org) = org {
            let owner = org
                .defs
                .values()
                .filter(|d| {
                    !d.is_deleted
                        && d.resource_type == resource_type
                        && Some(d.id.as_str()) != skip_def
                })
                .find(|d| d.criteria.iter().any(|c| c.rule == *rule));
            if let Some(owner) = owner {
                return Err(duplicate_rule(rule, &owner.id, resource_type));
            }
        }
    }
    Ok(())
}

/// `provision` from a validated create/PUT body. Keys are `resType` or `resType#resId`.
fn provision_from(map: &Map<String, Value>) -> Result<BTreeMap<String, Provision>, ApiError> {
    let mut out = BTreeMap::new();
    for (key, value) in map {
        check_provision_key(key)?;
        out.insert(key.clone(), provision_entry(&as_object(value)));
    }
    Ok(out)
}

/// Checks a `provision` key: a non-empty type, then optionally `#` and an id, with at most one `#`.
fn check_provision_key(key: &str) -> Result<(), ApiError> {
    let valid = match key.split_once('#') {
        None => !key.is_empty(),
        Some((res_type, res_id)) => !res_type.is_empty() && !res_id.contains('#'),
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request_at(
            &format!("provision.{key}"),
            format!("`provision` key `{key}` must have the form `resType` or `resType#resId`."),
        ))
    }
}

/// One `provision` entry.
fn provision_entry(map: &Map<String, Value>) -> Provision {
    Provision {
        is_dependent: opt_bool(map, "is_dependent").unwrap_or(false),
        match_dependents: opt_bool(map, "match_dependents").unwrap_or(false),
        params: opt_obj(map, "params").cloned(),
    }
}

/// A parsed replacement of `driver_inputs` (create and PUT).
struct InputsReplace {
    /// `values`, as sent.
    values: Option<Map<String, Value>>,
    /// `secrets` and `secret_refs`, combined.
    secrets: BTreeMap<String, Node>,
}

/// Parses `driver_inputs` for create/PUT. `None` (absent, null, or `{}`) unsets them.
fn inputs_replace(body: &Map<String, Value>) -> Result<Option<InputsReplace>, ApiError> {
    let Some(inputs) = opt_obj(body, "driver_inputs") else {
        return Ok(None);
    };
    let from_secrets = opt_obj(inputs, "secrets")
        .map(|m| secrets::parse_secrets(m, false))
        .unwrap_or_default();
    let from_refs = match opt_obj(inputs, "secret_refs") {
        Some(m) => secrets::parse_secret_refs(m, false, "driver_inputs.secret_refs")?,
        None => BTreeMap::new(),
    };
    let combined = secrets::combine(from_secrets, from_refs, "driver_inputs")?;
    let values = opt_obj(inputs, "values").cloned();
    if values.is_none() && combined.is_empty() {
        return Ok(None);
    }
    Ok(Some(InputsReplace {
        values,
        secrets: combined,
    }))
}

/// Writes a parsed `driver_inputs` replacement into a definition.
fn apply_inputs_replace(def: &mut Definition, inputs: Option<InputsReplace>, sink: &mut Sink<'_>) {
    match inputs {
        None => {
            def.values = None;
            def.secret_refs = None;
        }
        Some(inputs) => {
            def.values = inputs.values;
            let mut refs = Map::new();
            secrets::apply(&mut refs, inputs.secrets, &mut Vec::new(), sink);
            def.secret_refs = (!refs.is_empty()).then_some(refs);
        }
    }
}

/// `GET /orgs/{orgId}/resources/defs`.
pub(crate) fn list_definitions(
    orgs: &Orgs,
    org_id: &str,
    query: &Query,
) -> Result<Reply, ApiError> {
    let deleted = query_bool(query, "deleted")?;
    let res_type = query_value(query, "res_type");
    let text = |name: &str| query_value(query, name).map(str::to_owned);
    let filter = Filter {
        app: text("app"),
        env: text("env"),
        env_type: text("env_type"),
        res: text("res"),
        class: text("class"),
    };
    let Some(org) = orgs.get(org_id) else {
        return Ok(Reply::read(Value::Array(Vec::new())));
    };
    let mut found: Vec<(&Definition, Option<crate::model::Specificity>)> = Vec::new();
    for def in org.defs.values() {
        if (def.is_deleted && !deleted) || res_type.is_some_and(|t| t != def.resource_type) {
            continue;
        }
        if filter.is_empty() {
            found.push((def, None));
            continue;
        }
        // Why: "may match" — a definition qualifies when one of its rules doesn't contradict any given
        // filter; a definition without criteria can never be matched, so it does not qualify.
        let rank = def
            .criteria
            .iter()
            .filter(|c| c.rule.may_match(&filter))
            .map(|c| c.rule.specificity())
            .max();
        if rank.is_some() {
            found.push((def, rank));
        }
    }
    // Why: the spec says results are "grouped by type and sorted by matching rank"; within a rank,
    // the id keeps the order stable.
    found.sort_by(|(a, rank_a), (b, rank_b)| {
        a.resource_type
            .cmp(&b.resource_type)
            .then(rank_b.cmp(rank_a))
            .then(a.id.cmp(&b.id))
    });
    Ok(Reply::read(Value::Array(
        found
            .into_iter()
            .map(|(def, _)| def.response(org_id))
            .collect(),
    )))
}

/// `GET /orgs/{orgId}/resources/defs/{defId}`.
pub(crate) fn get_definition(
    orgs: &Orgs,
    org_id: &str,
    def_id: &str,
    query: &Query,
) -> Result<Reply, ApiError> {
    let deleted = query_bool(query, "deleted")?;
    let def = orgs
        .get(org_id)
        .and_then(|org| org.defs.get(def_id))
        .filter(|def| deleted || !def.is_deleted)
        .ok_or_else(|| definition_not_found(def_id))?;
    Ok(Reply::read(def.response(org_id)))
}

/// `POST /orgs/{orgId}/resources/defs`.
pub(crate) fn create_definition(
    orgs: &mut Orgs,
    ctx: &mut Ctx<'_>,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let body = parse_json(body)?;
    schema::validate_object(&schema::CREATE_RESOURCE_DEFINITION_REQUEST, &body, false)?;
    let body = as_object(&body);
    let def_id = non_empty(&body, "id")?.to_owned();
    let name = non_empty(&body, "name")?.to_owned();
    let resource_type = non_empty(&body, "type")?.to_owned();
    let driver_type = non_empty(&body, "driver_type")?.to_owned();
    let inputs = inputs_replace(&body)?;
    let provision = match opt_obj(&body, "provision") {
        Some(map) => provision_from(map)?,
        None => BTreeMap::new(),
    };
    let rules: Vec<Rule> = body
        .get("criteria")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| rule_from(&as_object(item)))
                .collect()
        })
        .unwrap_or_default();

    if let Some(existing) = orgs.get(ctx.org_id).and_then(|org| org.defs.get(&def_id)) {
        let note = if existing.is_deleted {
            " (it is marked for deletion)"
        } else {
            ""
        };
        return Err(ApiError::conflict(format!(
            "A Resource Definition with id `{def_id}` already exists{note}."
        )));
    }
    check_rules(orgs.get(ctx.org_id), &resource_type, &rules, None, &def_id)?;

    let criteria = rules
        .into_iter()
        .map(|rule| Criterion {
            id: ctx.ids.uuid(),
            rule,
        })
        .collect();
    let mut def = Definition {
        id: def_id.clone(),
        name,
        resource_type,
        driver_type,
        driver_account: opt_str(&body, "driver_account")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        values: None,
        secret_refs: None,
        provision,
        criteria,
        is_deleted: false,
        created_at: ctx.now.clone(),
        created_by: ctx.user.to_owned(),
        updated_at: ctx.now.clone(),
        updated_by: ctx.user.to_owned(),
        active_version_id: ctx.ids.uuid(),
        in_place_driver_change: opt_bool(&body, "in_place_driver_change").unwrap_or(false),
        active_resources: Vec::new(),
    };
    let org = orgs.entry(ctx.org_id.to_owned()).or_default();
    let mut sink = Sink {
        store: &mut org.secrets,
        store_id: ctx.primary_store,
        org_id: ctx.org_id,
        def_id: &def_id,
    };
    apply_inputs_replace(&mut def, inputs, &mut sink);
    let response = def.response(ctx.org_id);
    org.defs.insert(def_id, def);
    Ok(Reply::changed(response))
}

/// `PUT /orgs/{orgId}/resources/defs/{defId}`: replaces the definition (criteria excepted).
pub(crate) fn update_definition(
    orgs: &mut Orgs,
    ctx: &mut Ctx<'_>,
    def_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let body = parse_json(body)?;
    schema::validate_object(&schema::UPDATE_RESOURCE_DEFINITION_REQUEST, &body, false)?;
    let body = as_object(&body);
    let name = non_empty(&body, "name")?.to_owned();
    let inputs = inputs_replace(&body)?;
    let provision = match opt_obj(&body, "provision") {
        Some(map) => provision_from(map)?,
        None => BTreeMap::new(),
    };
    let current = live(orgs.get(ctx.org_id), def_id)?;
    if opt_bool(&body, "proposed") == Some(true) {
        // Why: a proposed version does not become active, so the definition as answered stays as it
        // is (the sandbox does not model the versions endpoints).
        return Ok(Reply::read(current.response(ctx.org_id)));
    }
    let version = ctx.ids.uuid();
    let Some(org) = orgs.get_mut(ctx.org_id) else {
        return Err(definition_not_found(def_id));
    };
    let Org {
        defs,
        secrets: store,
    } = org;
    let Some(def) = defs.get_mut(def_id) else {
        return Err(definition_not_found(def_id));
    };
    def.name = name;
    // Why: the spec says "as driver_type can't be empty, an empty driver_type means existing value
    // will be used".
    if let Some(driver_type) = opt_str(&body, "driver_type").filter(|s| !s.trim().is_empty()) {
        def.driver_type = driver_type.to_owned();
    }
    def.driver_account = opt_str(&body, "driver_account")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    def.provision = provision;
    def.in_place_driver_change = opt_bool(&body, "in_place_driver_change").unwrap_or(false);
    let mut sink = Sink {
        store,
        store_id: ctx.primary_store,
        org_id: ctx.org_id,
        def_id,
    };
    apply_inputs_replace(def, inputs, &mut sink);
    def.active_version_id = version;
    def.updated_at = ctx.now.clone();
    def.updated_by = ctx.user.to_owned();
    Ok(Reply::changed(def.response(ctx.org_id)))
}

/// What a PATCH does to `driver_inputs.values`.
enum ValuesPatch {
    /// Not mentioned.
    Keep,
    /// `null`: remove.
    Remove,
    /// An object: JSON merge patch.
    Merge(Value),
}

/// `PATCH /orgs/{orgId}/resources/defs/{defId}`: merge semantics.
pub(crate) fn patch_definition(
    orgs: &mut Orgs,
    ctx: &mut Ctx<'_>,
    def_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let patch = DefinitionPatch::parse(body)?;
    let current = live(orgs.get(ctx.org_id), def_id)?;
    if patch.proposed {
        // Why: as for PUT, a proposed version leaves the active definition unchanged.
        return Ok(Reply::read(current.response(ctx.org_id)));
    }
    let version = ctx.ids.uuid();
    let Some(org) = orgs.get_mut(ctx.org_id) else {
        return Err(definition_not_found(def_id));
    };
    let Org {
        defs,
        secrets: store,
    } = org;
    let Some(def) = defs.get_mut(def_id) else {
        return Err(definition_not_found(def_id));
    };
    let mut sink = Sink {
        store,
        store_id: ctx.primary_store,
        org_id: ctx.org_id,
        def_id,
    };
    patch.apply(def, &mut sink);
    def.active_version_id = version;
    def.updated_at = ctx.now.clone();
    def.updated_by = ctx.user.to_owned();
    Ok(Reply::changed(def.response(ctx.org_id)))
}

/// A `PATCH` body, read and checked whole before the store is touched: each field is `None`
/// (or empty) where the body leaves it as it is.
struct DefinitionPatch {
    name: Option<String>,
    driver_account: Option<String>,
    in_place_driver_change: Option<bool>,
    /// `proposed: true`: nothing changes.
    proposed: bool,
    /// Provision entries to set, or to remove (`None`).
    provision: Vec<(String, Option<Provision>)>,
    values: ValuesPatch,
    /// `secret_refs: null`: every secret reference goes.
    clear_refs: bool,
    /// The secrets and secret references to set or remove.
    secret_nodes: BTreeMap<String, Node>,
}

impl DefinitionPatch {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let body = parse_json(body)?;
        schema::validate_object(&schema::PATCH_RESOURCE_DEFINITION_REQUEST, &body, true)?;
        let body = as_object(&body);
        let name = match opt_str(&body, "name") {
            Some(_) => Some(non_empty(&body, "name")?.to_owned()),
            None => None,
        };
        let inputs = opt_obj(&body, "driver_inputs");
        let values = match inputs.and_then(|i| i.get("values")) {
            None => ValuesPatch::Keep,
            Some(Value::Null) => ValuesPatch::Remove,
            Some(values) => ValuesPatch::Merge(values.clone()),
        };
        let clear_refs = inputs.is_some_and(|i| i.get("secret_refs").is_some_and(Value::is_null));
        let from_secrets = inputs
            .and_then(|i| opt_obj(i, "secrets"))
            .map(|m| secrets::parse_secrets(m, true))
            .unwrap_or_default();
        let from_refs = match inputs.and_then(|i| opt_obj(i, "secret_refs")) {
            Some(m) => secrets::parse_secret_refs(m, true, "driver_inputs.secret_refs")?,
            None => BTreeMap::new(),
        };
        let secret_nodes = secrets::combine(from_secrets, from_refs, "driver_inputs")?;
        let mut provision = Vec::new();
        if let Some(map) = opt_obj(&body, "provision") {
            for (key, value) in map {
                check_provision_key(key)?;
                provision.push((key.clone(), value.as_object().map(provision_entry)));
            }
        }
        Ok(Self {
            name,
            driver_account: opt_str(&body, "driver_account").map(str::to_owned),
            in_place_driver_change: opt_bool(&body, "in_place_driver_change"),
            proposed: opt_bool(&body, "proposed") == Some(true),
            provision,
            values,
            clear_refs,
            secret_nodes,
        })
    }

    /// Applies the patch to `def`, its secrets going to the store through `sink`.
    fn apply(self, def: &mut Definition, sink: &mut Sink<'_>) {
        if let Some(name) = self.name {
            def.name = name;
        }
        if let Some(account) = self.driver_account {
            // Why: as for PUT, an empty driver_account unsets it.
            def.driver_account = (!account.is_empty()).then_some(account);
        }
        if let Some(in_place) = self.in_place_driver_change {
            def.in_place_driver_change = in_place;
        }
        for (key, entry) in self.provision {
            match entry {
                Some(entry) => {
                    def.provision.insert(key, entry);
                }
                None => {
                    def.provision.remove(&key);
                }
            }
        }
        match self.values {
            ValuesPatch::Keep => {}
            ValuesPatch::Remove => def.values = None,
            ValuesPatch::Merge(patch) => {
                let mut target = Value::Object(def.values.take().unwrap_or_default());
                secrets::merge_patch(&mut target, &patch);
                def.values = target.as_object().cloned();
            }
        }
        if self.clear_refs {
            def.secret_refs = None;
        }
        let mut refs = def.secret_refs.take().unwrap_or_default();
        secrets::apply(&mut refs, self.secret_nodes, &mut Vec::new(), sink);
        def.secret_refs = (!refs.is_empty()).then_some(refs);
    }
}

/// `DELETE /orgs/{orgId}/resources/defs/{defId}?force=`.
pub(crate) fn delete_definition(
    orgs: &mut Orgs,
    org_id: &str,
    def_id: &str,
    query: &Query,
) -> Result<Reply, ApiError> {
    let force = query_bool(query, "force")?;
    let org = orgs.get(org_id);
    let def = live(org, def_id)?;
    if !def.active_resources.is_empty() {
        if !force {
            let changes = def
                .active_resources
                .iter()
                .map(|resource| {
                    let to_def = org.and_then(|org| {
                        org.best_match(
                            &def.resource_type,
                            &resource.context(),
                            Without::Definition(def_id),
                        )
                    });
                    change_response(resource, def_id, to_def)
                })
                .collect();
            return Ok(Reply {
                status: StatusCode::CONFLICT,
                body: Some(Value::Array(changes)),
                mutated: false,
            });
        }
        // Why: with Active Resources, a forced delete only marks the definition; it disappears once
        // its resources are re-linked (here: when the admin endpoint clears them).
        if let Some(def) = orgs
            .get_mut(org_id)
            .and_then(|org| org.defs.get_mut(def_id))
        {
            def.is_deleted = true;
        }
        return Ok(Reply::deleted());
    }
    if let Some(org) = orgs.get_mut(org_id) {
        purge(org, org_id, def_id);
    }
    Ok(Reply::deleted())
}

/// Removes a definition and its primary-store secrets for good.
fn purge(org: &mut Org, org_id: &str, def_id: &str) {
    org.defs.remove(def_id);
    let prefix = secrets::definition_prefix(org_id, def_id);
    org.secrets
        .retain(|reference, _| !reference.starts_with(&prefix));
}

/// `PUT /orgs/{orgId}/resources/defs/{defId}/criteria`: replaces all criteria.
pub(crate) fn replace_criteria(
    orgs: &mut Orgs,
    ctx: &mut Ctx<'_>,
    def_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let body = parse_json(body)?;
    schema::validate_array(&schema::MATCHING_CRITERIA_RULE_REQUEST, &body)?;
    let rules: Vec<Rule> = body
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| rule_from(&as_object(item)))
                .collect()
        })
        .unwrap_or_default();
    let org = orgs.get(ctx.org_id);
    let def = live(org, def_id)?;
    check_rules(org, &def.resource_type, &rules, Some(def_id), def_id)?;
    // Why: a rule that stays keeps its id, so references to it (e.g. Terraform state) stay valid.
    let old = def.criteria.clone();
    let criteria: Vec<Criterion> = rules
        .into_iter()
        .map(|rule| match old.iter().find(|c| c.rule == rule) {
            Some(existing) => existing.clone(),
            None => Criterion {
                id: ctx.ids.uuid(),
                rule,
            },
        })
        .collect();
    let response = Value::Array(criteria.iter().map(Criterion::response).collect());
    if let Some(def) = orgs
        .get_mut(ctx.org_id)
        .and_then(|org| org.defs.get_mut(def_id))
    {
        def.criteria = criteria;
    }
    Ok(Reply::changed(response))
}

/// `POST /orgs/{orgId}/resources/defs/{defId}/criteria`: adds one criterion.
pub(crate) fn add_criterion(
    orgs: &mut Orgs,
    ctx: &mut Ctx<'_>,
    def_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let body = parse_json(body)?;
    schema::validate_object(&schema::MATCHING_CRITERIA_RULE_REQUEST, &body, false)?;
    let rule = rule_from(&as_object(&body));
    let org = orgs.get(ctx.org_id);
    let def = live(org, def_id)?;
    if let Some(owner) = org.and_then(|org| org.rule_owner(&def.resource_type, &rule)) {
        return Err(duplicate_rule(&rule, owner, &def.resource_type));
    }
    let criterion = Criterion {
        id: ctx.ids.uuid(),
        rule,
    };
    let response = criterion.response();
    if let Some(def) = orgs
        .get_mut(ctx.org_id)
        .and_then(|org| org.defs.get_mut(def_id))
    {
        def.criteria.push(criterion);
    }
    Ok(Reply::changed(response))
}

/// `DELETE /orgs/{orgId}/resources/defs/{defId}/criteria/{criteriaId}?force=`.
pub(crate) fn delete_criterion(
    orgs: &mut Orgs,
    org_id: &str,
    def_id: &str,
    criterion_id: &str,
    query: &Query,
) -> Result<Reply, ApiError> {
    let force = query_bool(query, "force")?;
    let org = orgs.get(org_id);
    let def = live(org, def_id)?;
    if !def.criteria.iter().any(|c| c.id == criterion_id) {
        return Err(ApiError::not_found(format!(
            "Matching Criteria with id `{criterion_id}` not found in Resource Definition `{def_id}`."
        )));
    }
    // Why: an Active Resource is affected when, without this criterion, matching would pick another
    // definition (or none) for it.
    let without = Without::Criterion {
        def_id,
        criterion_id,
    };
    let changes: Vec<Value> = def
        .active_resources
        .iter()
        .filter_map(|resource| {
            let to_def = org
                .and_then(|org| org.best_match(&def.resource_type, &resource.context(), without));
            (to_def != Some(def_id)).then(|| change_response(resource, def_id, to_def))
        })
        .collect();
    if !changes.is_empty() && !force {
        return Ok(Reply {
            status: StatusCode::CONFLICT,
            body: Some(Value::Array(changes)),
            mutated: false,
        });
    }
    if let Some(def) = orgs
        .get_mut(org_id)
        .and_then(|org| org.defs.get_mut(def_id))
    {
        def.criteria.retain(|c| c.id != criterion_id);
    }
    Ok(Reply::deleted())
}

/// `GET /orgs/{orgId}/resources/defs/{defId}/resources`.
///
/// The spec declares only 200 and 500 here, so an unknown definition answers an empty list. A
/// soft-deleted definition still lists the resources it is waiting to hand over.
pub(crate) fn list_active_resources(
    orgs: &Orgs,
    org_id: &str,
    def_id: &str,
) -> Result<Reply, ApiError> {
    let resources = orgs
        .get(org_id)
        .and_then(|org| org.defs.get(def_id))
        .map(|def| {
            def.active_resources
                .iter()
                .map(|resource| resource.response(org_id, def))
                .collect()
        })
        .unwrap_or_default();
    Ok(Reply::read(Value::Array(resources)))
}

/// Sandbox admin: `PUT /_sandbox/orgs/{orgId}/resources/defs/{defId}/active-resources`.
///
/// Sets the simulated Active Resources of a definition (an empty array clears them). Clearing those
/// of a definition marked deleted removes it for good, as the next deployment would.
pub(crate) fn set_active_resources(
    orgs: &mut Orgs,
    ctx: &mut Ctx<'_>,
    def_id: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let body = parse_json(body)?;
    schema::validate_array(&schema::SANDBOX_ACTIVE_RESOURCE, &body)?;
    let items: Vec<Map<String, Value>> = body
        .as_array()
        .map(|items| items.iter().map(as_object).collect())
        .unwrap_or_default();
    let def = orgs
        .get(ctx.org_id)
        .and_then(|org| org.defs.get(def_id))
        .ok_or_else(|| definition_not_found(def_id))?;
    let mut resources = Vec::new();
    for item in &items {
        let text = |key: &str, default: &str| {
            opt_str(item, key)
                .filter(|s| !s.is_empty())
                .unwrap_or(default)
                .to_owned()
        };
        let resource = ActiveResource {
            app_id: text("app_id", ""),
            env_id: text("env_id", ""),
            env_type: text("env_type", "development"),
            res_id: text("res_id", ""),
            class: text("class", "default"),
            status: text("status", "active"),
            resource: opt_obj(item, "resource").cloned().unwrap_or_default(),
            def_version_id: def.active_version_id.clone(),
            driver_type: def.driver_type.clone(),
            deploy_id: ctx.ids.hex(9),
            gu_res_id: String::new(),
            updated_at: ctx.now.clone(),
        };
        if resource.app_id.is_empty() || resource.env_id.is_empty() || resource.res_id.is_empty() {
            return Err(ApiError::bad_request(
                "`app_id`, `env_id` and `res_id` must not be empty.",
            ));
        }
        resources.push(resource);
    }
    for resource in &mut resources {
        resource.gu_res_id = gu_res_id(ctx.org_id, &def.resource_type, resource);
    }
    let Some(org) = orgs.get_mut(ctx.org_id) else {
        return Err(definition_not_found(def_id));
    };
    let Some(def) = org.defs.get_mut(def_id) else {
        return Err(definition_not_found(def_id));
    };
    def.active_resources = resources;
    let response = Value::Array(
        def.active_resources
            .iter()
            .map(|resource| resource.response(ctx.org_id, def))
            .collect(),
    );
    if def.is_deleted && def.active_resources.is_empty() {
        purge(org, ctx.org_id, def_id);
    }
    Ok(Reply::changed(response))
}

/// A stable 40-hex-digit id for a resource, like the real API's SHA-1-looking `gu_res_id`.
fn gu_res_id(org_id: &str, resource_type: &str, resource: &ActiveResource) -> String {
    let key = format!(
        "{org_id}/{}/{}/{resource_type}/{}/{}",
        resource.app_id, resource.env_id, resource.class, resource.res_id
    );
    // Why: FNV-1a with three different offsets gives 160 well-mixed bits without a hash crate.
    let fnv = |offset: u64| {
        key.bytes().fold(offset, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3)
        })
    };
    format!(
        "{:016x}{:016x}{:08x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x8422_2325_cbf2_9ce4),
        fnv(0x1234_5678_9abc_def0) >> 32
    )
}
