//! The Humanitec definitions this provider manages: the conversions between the models
//! (`crate::model`) and the API's definition payloads.
//!
//! - [`runner_config`]: the `config` definition that names the cluster Container Runner Jobs run on.
//! - [`container_runner`]: a definition of any resource type driven by `humanitec/container-runner`.
//! - here: the criteria both are sent with ([`criteria_rules`]), normalized one way for what is
//!   sent and what is read back.
//!
//! The models know nothing of payloads, and the API client knows nothing of models. JSON and
//! YAML read back from the API are compared with what was written by meaning, never as text.

pub(crate) mod container_runner;
pub(crate) mod runner_config;

pub(crate) use runner_config::read_runner_config;

use crate::humanitec::{CriteriaRule, DEFAULT_CLASS};
use crate::model::container_runner::MatchingCriterion;

/// Criteria as a definition holds them: each with its class, sorted, without duplicates.
///
/// Why one normalization for what is sent and what is read back: the two are compared to decide
/// whether the criteria changed.
pub(crate) fn normalized_criteria(
    criteria: impl IntoIterator<Item = MatchingCriterion>,
) -> Vec<MatchingCriterion> {
    let mut criteria: Vec<MatchingCriterion> = criteria
        .into_iter()
        .map(|criterion| MatchingCriterion {
            class: Some(criterion.class.unwrap_or_else(|| DEFAULT_CLASS.into())),
            ..criterion
        })
        .collect();
    criteria.sort();
    criteria.dedup();
    criteria
}

/// The criteria rules a definition is sent with: its criteria normalized, as the API's type.
pub(crate) fn criteria_rules(
    criteria: impl IntoIterator<Item = MatchingCriterion>,
) -> Vec<CriteriaRule> {
    normalized_criteria(criteria)
        .into_iter()
        .map(|criterion| CriteriaRule {
            app_id: criterion.app_id,
            env_id: criterion.env_id,
            env_type: criterion.env_type,
            res_id: criterion.res_id,
            class: criterion.class,
        })
        .collect()
}
