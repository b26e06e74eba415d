//! The resource types, one file each, and the schema and plan pieces they share.

pub(crate) mod container_runner;
pub(crate) mod runner_config;

use crate::provider::backend::set;
use terraform_plugin::framework::validate::{not_empty, quoted_list};
use terraform_plugin::framework::{Attribute, Block, Diagnostics, Plan};
use terraform_plugin::value::{AttributePath, Type, Value};

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
/// `unmanaged_inputs`. `api::plan_definition_shape` plans them as this provider writes them.
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

/// Plans `name` as `id` whenever the configuration leaves it out.
pub(crate) fn default_name_to_id(plan: &mut Plan<'_>) {
    if plan.config.get("name").is_null() {
        let id = plan.planned.get("id").clone();
        set(&mut plan.planned, "name", id);
    }
}

/// A write-only form of a secret attribute, by Terraform's convention: `<name>_wo`, which is
/// never kept in a plan or the state, and `<name>_wo_version`, which is, and whose change sends
/// the value again. `what` says what the value is, `conflicts` names the other forms, and
/// `note` (perhaps empty) ends the description.
pub(crate) fn write_only_pair(
    name: &str,
    ty: Type,
    what: &str,
    conflicts: &[&str],
    note: &str,
) -> [Attribute; 2] {
    let names: Vec<String> = conflicts.iter().map(|c| format!("`{c}`")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let value = Attribute::new(format!("{name}_wo"), ty)
        .write_only()
        .description(format!(
            "{what}, write-only: sent at each create and update but never kept in the state or \
             in a plan (Terraform 1.11 or OpenTofu 1.11 and later). Set `{name}_wo_version` with \
             it, and change that to send a new value: a new value alone plans nothing. \
             Conflicts with {}.{}{note} See the secrets guide.",
            quoted_list(&names, "and").replace('"', ""),
            if note.is_empty() { "" } else { " " },
        ));
    let version = Attribute::string(format!("{name}_wo_version"))
        .validate(not_empty())
        .description(format!(
            "The version of `{name}_wo`, any text (`\"1\"`, a date): a change sends `{name}_wo` \
             again, in place. Required with `{name}_wo`; it is all the state keeps of it."
        ));
    [value, version]
}

/// Checks a write-only pair of `block` (a configuration block at `at`, shown as `prefix`):
/// the value and its version come together, and the value conflicts with the other forms of
/// the same secret.
pub(crate) fn check_write_only(
    block: &Value,
    at: &AttributePath,
    prefix: &str,
    name: &str,
    conflicts: &[&str],
    diags: &mut Diagnostics,
) {
    let wo = format!("{name}_wo");
    let version = format!("{name}_wo_version");
    let set = |attribute: &str| !block.get(attribute).is_null();
    if set(&wo) {
        for other in conflicts.iter().filter(|other| set(other)) {
            diags.error_at(
                at.attribute(wo.clone()),
                format!("Both {prefix}{other} and {prefix}{wo} are set"),
                format!(
                    "{prefix}{other} and {prefix}{wo} are two forms of the same secret; remove \
                     one of them."
                ),
            );
        }
        if !set(&version) {
            diags.error_at(
                at.attribute(wo.clone()),
                format!("{prefix}{wo} needs {prefix}{version}"),
                format!(
                    "Terraform keeps no trace of {prefix}{wo}, so only a change of \
                     {prefix}{version} can say that a new value is to be sent: set \
                     {prefix}{version} (e.g. \"1\") and change it whenever the value changes."
                ),
            );
        }
    } else if set(&version) {
        diags.error_at(
            at.attribute(version.clone()),
            format!("{prefix}{version} without {prefix}{wo}"),
            format!("{prefix}{version} versions {prefix}{wo}; set {prefix}{wo} or remove it."),
        );
    }
}
