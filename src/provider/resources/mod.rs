//! The resource types, one file each, and the schema and plan pieces they share.

pub(crate) mod container_runner;
pub(crate) mod runner_config;

use crate::framework::validate::not_empty;
use crate::framework::{Attribute, Block, Plan};
use crate::value::Value;

/// Sets one top-level attribute of an object value.
pub(crate) fn set(state: &mut Value, attribute: &str, value: Value) {
    if let Value::Object(fields) = state {
        fields.insert(attribute.to_string(), value);
    }
}

/// The elements of a set or list value (none for anything else).
pub(crate) fn set_items(value: &Value) -> &[Value] {
    match value {
        Value::Set(items) | Value::List(items) => items,
        _ => &[],
    }
}

/// A `criteria` block with the parts every resource's criteria have (`app_id`, `env_id`,
/// `env_type`); a resource adds its own.
pub(crate) fn criteria_block(description: &str) -> Block {
    Block::new(description)
        .attribute(
            Attribute::string("app_id")
                .validate(not_empty())
                .description("Match this application id."),
        )
        .attribute(
            Attribute::string("env_id")
                .validate(not_empty())
                .description("Match this environment id."),
        )
        .attribute(
            Attribute::string("env_type")
                .validate(not_empty())
                .description("Match this environment type, e.g. `development`."),
        )
}

/// The computed attributes that show a definition's shape as Humanitec reports it, so that a
/// change made outside Terraform is a planned change, not just a warning: `driver_type` and
/// `unmanaged_inputs`. [`plan_definition_shape`] plans them as this provider writes them.
pub(crate) fn definition_shape(block: Block, driver: &str) -> Block {
    block
        .attribute(Attribute::string("driver_type").computed().description(format!(
            "The definition's driver as Humanitec reports it: `{driver}` after every apply. \
             Another value means the driver was changed outside Terraform, and the plan changes \
             it back."
        )))
        .attribute(
            Attribute::string_list("unmanaged_inputs")
                .computed()
                .description(
                    "Driver inputs the definition has that this resource does not manage, such \
                     as a `cluster` input added outside Terraform: empty after every apply, and \
                     the plan removes any it finds.",
                ),
        )
}

/// Plans the attributes of [`definition_shape`]: the driver this provider writes and no
/// unmanaged inputs.
pub(crate) fn plan_definition_shape(plan: &mut Plan<'_>, driver: &str) {
    set(&mut plan.planned, "driver_type", Value::string(driver));
    set(
        &mut plan.planned,
        "unmanaged_inputs",
        Value::List(Vec::new()),
    );
}

/// Plans `name` as `id` whenever the configuration leaves it out.
pub(crate) fn default_name_to_id(plan: &mut Plan<'_>) {
    if plan.config.get("name").is_null() {
        let id = plan.planned.get("id").clone();
        set(&mut plan.planned, "name", id);
    }
}
