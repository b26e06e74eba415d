//! The api backend of `humanitec_runner_config`: a `config` definition of the Template Driver.

use async_trait::async_trait;

use super::definition::{self, read_runner_config};
use super::{
    Api, Created, RUNNER_CONFIG, create, delete_definition, plan_definition_shape,
    problems_sentence, put, update_criteria,
};
use crate::humanitec::Definition;
use crate::model::runner_config::RunnerConfig;
use crate::provider::backend::{Backend, Backends, Failed, Read, Written, set};
use terraform_plugin::framework::model::Sensitive;
use terraform_plugin::framework::{Diagnostics, Operation, Plan};
use terraform_plugin::value::Value;

/// The private-state key that marks an imported definition whose stored `agent_url` Terraform
/// does not know (the API never returns it): set by the read that completes an import, cleared
/// by the next write.
pub(crate) const AGENT_URL_UNKNOWN: &str = "agent_url_unknown";

/// The private-state key of the version of the stored `agent_url` secret as this provider last
/// wrote or saw it.
const AGENT_URL_VERSION: &str = "agent_url_version";

/// Records the version of the definition's stored `agent_url` secret (just written or read; a
/// write also makes the value known again).
fn record_agent_url_version(op: &mut Operation, definition: &Definition) {
    if let Some(version) = read_runner_config(definition).agent_url_version {
        op.private.set(AGENT_URL_VERSION, version.into());
    }
}

#[async_trait]
impl Backend<RunnerConfig> for Api {
    fn plan(
        &self,
        backends: &Backends<RunnerConfig>,
        plan: &mut Plan<'_>,
        diags: &mut Diagnostics,
    ) {
        plan_definition_shape(plan, definition::runner_config::TEMPLATE_DRIVER);
        if plan.config.get("agent_url_wo").is_null() {
            plan_unknown_agent_url(backends, plan, diags);
        }
    }

    async fn create(
        &self,
        op: &mut Operation,
        planned: &RunnerConfig,
        diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        let Some(client) = self.client_for(op, &RUNNER_CONFIG, &planned.id, diags) else {
            return Err(Failed::Nothing);
        };
        let payload = definition::runner_config::to_create(planned);
        let made = RunnerConfig {
            name: Some(planned.name().to_string()),
            ..planned.clone()
        };
        match create(op, &client, &RUNNER_CONFIG, &payload, diags).await {
            Created::Done(definition) => {
                op.private.remove(AGENT_URL_UNKNOWN);
                record_agent_url_version(op, &definition);
                Ok(made)
            }
            Created::Failed => Err(Failed::Nothing),
            Created::Unknown => Err(Failed::Partly(made)),
        }
    }

    async fn read(
        &self,
        op: &mut Operation,
        current: &RunnerConfig,
        diags: &mut Diagnostics,
    ) -> Read<RunnerConfig> {
        let id = &current.id;
        let definition = match self.find(op, &RUNNER_CONFIG, id, diags).await {
            Read::Found(definition) => definition,
            Read::Gone => return Read::Gone,
            Read::Failed => return Read::Failed,
        };
        let read = read_runner_config(&definition);
        if !read.problems.is_empty() {
            diags.warning(
                format!("Definition {id:?} is not a runner config as this provider writes it"),
                format!(
                    "{}. The next apply rewrites it.",
                    problems_sentence(&read.problems)
                ),
            );
        }
        if !read.foreign_criteria.is_empty() {
            diags.warning(
                format!("Definition {id:?} has criteria this resource does not manage"),
                format!(
                    "These criteria do not match res_id \"container-runner\" and class \"default\": {}. \
                     The next apply that changes criteria replaces them.",
                    read.foreign_criteria.join(", ")
                ),
            );
        }
        // The API never returns secrets. After an import (no prior value) an absent secret reads
        // as "", the default; a present one stays null, since its value cannot be known. A stored
        // one whose version moved without this provider writing it was changed elsewhere: its
        // value here is no longer known either, so the plan writes the configured one again
        // (the rule container runner secrets follow).
        let recorded = op
            .private
            .get(AGENT_URL_VERSION)
            .and_then(serde_json::Value::as_str);
        let moved = recorded.is_some_and(|seen| read.agent_url_version.as_deref() != Some(seen));
        // A write-only Agent URL is never read back; one that is gone or was changed elsewhere
        // forgets its version, so that the plan sends the configured value again.
        let write_only = current.agent_url_wo_version.is_some();
        let agent_url = match &current.agent_url {
            _ if write_only => None,
            None if !read.has_agent_url => Some(Sensitive(String::new())),
            _ if moved => None,
            known => known.clone(),
        };
        let agent_url_wo_version = current
            .agent_url_wo_version
            .clone()
            .filter(|_| read.has_agent_url && !moved);
        if op.importing && agent_url.is_none() {
            op.private.set(AGENT_URL_UNKNOWN, true.into());
        }
        record_agent_url_version(op, &definition);
        Read::Found(RunnerConfig {
            id: definition.id.clone(),
            name: Some(read.name),
            criteria: Some(read.criteria),
            // Unreadable outputs become nulls, which differ from any valid configuration: drift.
            cluster: Some(read.cluster.unwrap_or_default()),
            skip_permission_checks: read.skip_permission_checks,
            agent_url,
            agent_url_wo: None,
            agent_url_wo_version,
            driver_type: Some(definition.driver_type.clone()),
            unmanaged_inputs: Some(read.unmanaged_inputs),
            ..current.clone()
        })
    }

    async fn update(
        &self,
        op: &mut Operation,
        prior: &RunnerConfig,
        planned: &RunnerConfig,
        diags: &mut Diagnostics,
    ) -> Written<RunnerConfig> {
        let id = &planned.id;
        let Some(client) = self.client_for(op, &RUNNER_CONFIG, id, diags) else {
            return Err(Failed::Nothing);
        };
        let mut written = None;
        if definition::runner_config::rewrites(prior, planned) {
            let payload = definition::runner_config::to_update(planned);
            let Some(definition) = put(op, &client, &RUNNER_CONFIG, id, &payload, diags).await
            else {
                return Err(Failed::Nothing);
            };
            op.private.remove(AGENT_URL_UNKNOWN);
            record_agent_url_version(op, &definition);
            written = Some(definition);
        }
        let wanted =
            definition::criteria_rules(definition::runner_config::matching_criteria(planned));
        if wanted == definition::criteria_rules(definition::runner_config::matching_criteria(prior))
        {
            return Ok(planned.clone());
        }
        match update_criteria(&client, &RUNNER_CONFIG, id, written, &wanted, diags).await {
            Ok(()) => Ok(planned.clone()),
            // Whatever was written is recorded, with the criteria as they are now.
            Err(now) => Err(Failed::Partly(RunnerConfig {
                criteria: Some(now.map_or_else(
                    || prior.criteria().to_vec(),
                    |now| read_runner_config(&now).criteria,
                )),
                ..planned.clone()
            })),
        }
    }

    async fn delete(&self, op: &mut Operation, prior: &RunnerConfig, diags: &mut Diagnostics) {
        let Some(client) = self.client_for(op, &RUNNER_CONFIG, &prior.id, diags) else {
            return;
        };
        delete_definition(&client, op, &RUNNER_CONFIG, &prior.id, false, diags).await;
    }
}

/// After an import, the stored `agent_url` is not known here. A configuration that leaves
/// `agent_url` out then leaves it alone, rather than planning the default `""` over it, so
/// that applying a generated configuration changes nothing. When the plan writes the
/// definition anyway, the write replaces it with `""`, and a warning says so.
fn plan_unknown_agent_url(
    backends: &Backends<RunnerConfig>,
    plan: &mut Plan<'_>,
    diags: &mut Diagnostics,
) {
    let unknown = plan.private.get(AGENT_URL_UNKNOWN).is_some()
        && !plan.prior.is_null()
        && plan.prior.get("agent_url").is_null()
        && plan.config.get("agent_url").is_null();
    if !unknown {
        return;
    }
    let (Some(before), Some(after)) = (
        backends.model(plan.prior, diags),
        backends.model(&plan.planned, diags),
    ) else {
        return;
    };
    if definition::runner_config::rewrites(&before, &after) {
        diags.warning(
            "The definition's agent_url is not in the configuration",
            "Humanitec holds an agent_url for this runner config, but neither the state nor \
             the configuration has its value (secrets cannot be read back after an import). \
             This update writes the whole definition and so sets agent_url to \"\"; set \
             agent_url in the configuration to keep it.",
        );
    } else {
        set(&mut plan.planned, "agent_url", Value::Null);
    }
}
