//! The gRPC services: `tfplugin5.Provider` and go-plugin's `GRPCController`.
//!
//! Each provider RPC is one thin conversion: protobuf request → framework call → protobuf
//! response. User-facing failures travel as diagnostics in the response; a gRPC error status is
//! never used for them, because Terraform would only show "the plugin encountered an error".

use std::sync::Arc;

use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use super::convert::{decode, diagnostics, encode, path, schema};
use super::proto::plugin as go_plugin;
use super::proto::tfplugin5 as pb;
use crate::framework::{ClientCapabilities, Diagnostics, Server};

/// The `tfplugin5.Provider` service over a framework server.
pub(crate) struct ProviderService {
    server: Arc<Server>,
}

impl ProviderService {
    /// Serves the given framework server.
    pub(crate) fn new(server: Arc<Server>) -> Self {
        Self { server }
    }
}

/// Unwraps a conversion result, or returns its diagnostics in a response built by `respond`.
macro_rules! or_respond {
    ($result:expr, $respond:expr) => {
        match $result {
            Ok(value) => value,
            Err(diags) => return Ok(Response::new($respond(diags))),
        }
    };
}

/// Unwraps an encoding result, or adds its diagnostics to `diags` and responds with them.
macro_rules! or_respond_with {
    ($result:expr, $diags:ident, $respond:expr) => {
        match $result {
            Ok(value) => value,
            Err(more) => {
                $diags.extend(more);
                return Ok(Response::new($respond($diags)));
            }
        }
    };
}

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_schema(
        &self,
        _request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        let resource_schemas = self
            .server
            .resource_schemas()
            .map(|(name, s)| (name.to_string(), schema(s)))
            .collect();
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(schema(self.server.provider_schema())),
            resource_schemas,
            server_capabilities: Some(pb::ServerCapabilities {
                plan_destroy: true,
                get_provider_schema_optional: true,
                move_resource_state: false,
                generate_resource_config: false,
            }),
            ..Default::default()
        }))
    }

    async fn prepare_provider_config(
        &self,
        request: Request<pb::prepare_provider_config::Request>,
    ) -> Result<Response<pb::prepare_provider_config::Response>, Status> {
        let request = request.into_inner();
        let respond = |diags| pb::prepare_provider_config::Response {
            prepared_config: None,
            diagnostics: diagnostics(diags),
        };
        let ty = self.server.provider_type();
        let config = or_respond!(
            decode(request.config.as_ref(), ty, "provider configuration"),
            respond
        );
        let diags = self.server.validate_provider_config(&config);
        let prepared = or_respond!(encode(&config, ty, "provider configuration"), respond);
        Ok(Response::new(pb::prepare_provider_config::Response {
            prepared_config: Some(prepared),
            diagnostics: diagnostics(diags),
        }))
    }

    async fn validate_resource_type_config(
        &self,
        request: Request<pb::validate_resource_type_config::Request>,
    ) -> Result<Response<pb::validate_resource_type_config::Response>, Status> {
        let request = request.into_inner();
        let respond = |diags| pb::validate_resource_type_config::Response {
            diagnostics: diagnostics(diags),
        };
        let resource = or_respond!(self.server.resource_type(&request.type_name), respond);
        let ty = resource.ty();
        let config = or_respond!(
            decode(request.config.as_ref(), ty, "configuration"),
            respond
        );
        let capabilities = capabilities(request.client_capabilities.as_ref());
        let diags = self
            .server
            .validate_resource_config(resource, &config, capabilities);
        Ok(Response::new(respond(diags)))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let request = request.into_inner();
        let respond = |diags| pb::upgrade_resource_state::Response {
            upgraded_state: None,
            diagnostics: diagnostics(diags),
        };
        let resource = or_respond!(self.server.resource_type(&request.type_name), respond);
        let ty = resource.ty();
        let json = request.raw_state.map(|raw| raw.json).unwrap_or_default();
        let stored = or_respond!(
            crate::value::json::decode(&json, ty).map_err(|e| {
                let mut diags = Diagnostics::new();
                let summary = if e.path.is_root() {
                    format!("Cannot read the stored state of this {}", request.type_name)
                } else {
                    format!(
                        "Cannot read {} in the stored state of this {}",
                        e.path, request.type_name
                    )
                };
                diags.error_at(
                    e.path.clone(),
                    summary,
                    format!(
                        "The stored state does not fit this provider version's schema ({e}). Use \
                         the provider version that wrote it, or take the resource out of the \
                         state and import it again: `terraform state rm <address>`, then \
                         `terraform import <address> <id>`."
                    ),
                );
                diags
            }),
            respond
        );
        let (state, mut diags) =
            self.server
                .upgrade_resource_state(resource, request.version, stored);
        let upgraded = match encode(&state, ty, "upgraded state") {
            Ok(v) => Some(v),
            Err(more) => {
                diags.extend(more);
                None
            }
        };
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: upgraded,
            diagnostics: diagnostics(diags),
        }))
    }

    async fn configure(
        &self,
        request: Request<pb::configure::Request>,
    ) -> Result<Response<pb::configure::Response>, Status> {
        let request = request.into_inner();
        let respond = |diags| pb::configure::Response {
            diagnostics: diagnostics(diags),
        };
        let ty = self.server.provider_type();
        let config = or_respond!(
            decode(request.config.as_ref(), ty, "provider configuration"),
            respond
        );
        let diags = self
            .server
            .configure(&config, &request.terraform_version)
            .await;
        Ok(Response::new(respond(diags)))
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let request = request.into_inner();
        let respond = |diags| pb::read_resource::Response {
            new_state: request.current_state.clone(),
            diagnostics: diagnostics(diags),
            private: request.private.clone(),
            ..Default::default()
        };
        let resource = or_respond!(self.server.resource_type(&request.type_name), respond);
        let ty = resource.ty();
        let current = or_respond!(
            decode(request.current_state.as_ref(), ty, "current state"),
            respond
        );
        let (stored, mut diags) = self
            .server
            .read_resource(resource, &current, &request.private)
            .await;
        let new_state =
            or_respond_with!(encode(&stored.state, ty, "refreshed state"), diags, respond);
        Ok(Response::new(pb::read_resource::Response {
            new_state: Some(new_state),
            diagnostics: diagnostics(diags),
            private: stored.private.to_bytes(),
            ..Default::default()
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let request = request.into_inner();
        let respond = |diags| pb::plan_resource_change::Response {
            diagnostics: diagnostics(diags),
            ..Default::default()
        };
        let resource = or_respond!(self.server.resource_type(&request.type_name), respond);
        let ty = resource.ty();
        let prior = or_respond!(
            decode(request.prior_state.as_ref(), ty, "prior state"),
            respond
        );
        let proposed = or_respond!(
            decode(request.proposed_new_state.as_ref(), ty, "proposed state"),
            respond
        );
        let config = or_respond!(
            decode(request.config.as_ref(), ty, "configuration"),
            respond
        );
        let (planned, mut diags) = self.server.plan_resource_change(
            resource,
            &prior,
            &proposed,
            &config,
            &request.prior_private,
        );
        let planned_state =
            or_respond_with!(encode(&planned.state, ty, "planned state"), diags, respond);
        Ok(Response::new(pb::plan_resource_change::Response {
            planned_state: Some(planned_state),
            requires_replace: planned.requires_replace.iter().map(path).collect(),
            planned_private: planned.private.to_bytes(),
            diagnostics: diagnostics(diags),
            ..Default::default()
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let request = request.into_inner();
        let respond = |diags| pb::apply_resource_change::Response {
            new_state: request.prior_state.clone(),
            private: request.planned_private.clone(),
            diagnostics: diagnostics(diags),
            ..Default::default()
        };
        let resource = or_respond!(self.server.resource_type(&request.type_name), respond);
        let ty = resource.ty();
        let prior = or_respond!(
            decode(request.prior_state.as_ref(), ty, "prior state"),
            respond
        );
        let planned = or_respond!(
            decode(request.planned_state.as_ref(), ty, "planned state"),
            respond
        );
        let config = or_respond!(
            decode(request.config.as_ref(), ty, "configuration"),
            respond
        );
        let (stored, mut diags) = self
            .server
            .apply_resource_change(
                resource,
                &prior,
                &planned,
                &config,
                &request.planned_private,
            )
            .await;
        let new_state = or_respond_with!(encode(&stored.state, ty, "new state"), diags, respond);
        Ok(Response::new(pb::apply_resource_change::Response {
            new_state: Some(new_state),
            private: stored.private.to_bytes(),
            diagnostics: diagnostics(diags),
            ..Default::default()
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let request = request.into_inner();
        let respond = |diags| pb::import_resource_state::Response {
            diagnostics: diagnostics(diags),
            ..Default::default()
        };
        let resource = or_respond!(self.server.resource_type(&request.type_name), respond);
        let ty = resource.ty();
        let (imported, mut diags) =
            self.server
                .import_resource_state(&request.type_name, resource, &request.id);
        let mut imported_resources = Vec::new();
        if !diags.has_errors() {
            match encode(&imported.state, ty, "imported state") {
                Ok(state) => imported_resources.push(pb::import_resource_state::ImportedResource {
                    type_name: request.type_name.clone(),
                    state: Some(state),
                    private: imported.private.to_bytes(),
                    ..Default::default()
                }),
                Err(more) => diags.extend(more),
            }
        }
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources,
            diagnostics: diagnostics(diags),
            ..Default::default()
        }))
    }

    async fn stop(
        &self,
        _request: Request<pb::stop::Request>,
    ) -> Result<Response<pb::stop::Response>, Status> {
        log::info!("Terraform asked the provider to stop; cancelling operations in flight");
        self.server.stop();
        Ok(Response::new(pb::stop::Response::default()))
    }
}

/// The CLI's capabilities; none when it sends none (a CLI older than protocol 5.6).
pub(crate) fn capabilities(sent: Option<&pb::ClientCapabilities>) -> ClientCapabilities {
    ClientCapabilities {
        write_only_attributes_allowed: sent.is_some_and(|c| c.write_only_attributes_allowed),
    }
}

/// go-plugin's `GRPCController`: `Shutdown` ends the process.
pub(crate) struct Controller {
    shutdown: Arc<Notify>,
}

impl Controller {
    /// A controller that signals `shutdown` when Terraform asks the plugin to exit.
    pub(crate) fn new(shutdown: Arc<Notify>) -> Self {
        Self { shutdown }
    }
}

#[tonic::async_trait]
impl go_plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _request: Request<go_plugin::Empty>,
    ) -> Result<Response<go_plugin::Empty>, Status> {
        log::debug!("shutdown requested by Terraform");
        self.shutdown.notify_one();
        Ok(Response::new(go_plugin::Empty {}))
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use pb::provider_server::Provider as _;

    use super::*;
    use crate::framework::plan::null_object;
    use crate::framework::{
        Attribute, Block, NestedBlock, Nesting, Operation, Provider, Resource, Schema,
    };
    use crate::value::Value;

    /// A resource with a git source whose password may be write-only, as a provider declares it.
    struct Checkout;

    #[async_trait]
    impl Resource for Checkout {
        fn type_name(&self) -> &'static str {
            "test_checkout"
        }

        fn schema(&self) -> Schema {
            let source = Block::new("the repository")
                .attribute(Attribute::string("url").required())
                .attribute(Attribute::string("password").sensitive())
                .attribute(Attribute::string("password_wo").write_only())
                .attribute(Attribute::string("password_wo_version"));
            Schema::new(
                Block::new("test")
                    .attribute(Attribute::string("id").required())
                    .block(NestedBlock::new("source", Nesting::Single, source)),
            )
        }

        async fn create(&self, _: &mut Operation, planned: &Value, _: &mut Diagnostics) -> Value {
            planned.clone()
        }

        async fn read(&self, _: &mut Operation, current: &Value, _: &mut Diagnostics) -> Value {
            current.clone()
        }

        async fn update(
            &self,
            _: &mut Operation,
            _: &Value,
            planned: &Value,
            _: &mut Diagnostics,
        ) -> Value {
            planned.clone()
        }

        async fn delete(&self, _: &mut Operation, _: &Value, _: &mut Diagnostics) {}
    }

    /// A provider of the one test resource.
    struct TestProvider;

    #[async_trait]
    impl Provider for TestProvider {
        fn schema(&self) -> Schema {
            Schema::new(Block::new("test provider"))
        }

        fn resources(&self) -> Vec<Arc<dyn Resource>> {
            vec![Arc::new(Checkout)]
        }

        async fn configure(&self, _: &Value, _: &str, _: &mut Diagnostics) {}
    }

    /// A configuration with a write-only git password, as Terraform encodes it.
    fn config_with_password_wo(server: &Server) -> pb::DynamicValue {
        let (_, schema) = server
            .resource_schemas()
            .find(|(name, _)| *name == "test_checkout")
            .expect("test schema");
        let block = &schema.block;
        let nested = |name: &str| {
            let found = block.blocks.iter().find(|b| b.name == name);
            null_object(&found.expect("nested block").block)
        };
        let with = |mut value: Value, pairs: &[(&str, Value)]| {
            if let Value::Object(fields) = &mut value {
                for (name, v) in pairs {
                    fields.insert((*name).to_string(), v.clone());
                }
            }
            value
        };
        let source = with(
            nested("source"),
            &[
                ("url", Value::string("https://git.example.com/r.git")),
                ("password_wo", Value::string("pw")),
                ("password_wo_version", Value::string("1")),
            ],
        );
        let config = with(
            null_object(block),
            &[("id", Value::string("checkout")), ("source", source)],
        );
        encode(&config, &schema.implied_type(), "configuration").expect("encodes")
    }

    async fn validate(capabilities: Option<pb::ClientCapabilities>) -> Vec<pb::Diagnostic> {
        let server = Arc::new(Server::new(Arc::new(TestProvider)));
        let config = config_with_password_wo(&server);
        let service = ProviderService::new(server);
        let request = pb::validate_resource_type_config::Request {
            type_name: "test_checkout".into(),
            config: Some(config),
            client_capabilities: capabilities,
        };
        service
            .validate_resource_type_config(Request::new(request))
            .await
            .expect("a response")
            .into_inner()
            .diagnostics
    }

    #[tokio::test]
    async fn a_cli_without_the_write_only_capability_gets_a_diagnostic_naming_the_version() {
        for old_cli in [
            None,
            Some(pb::ClientCapabilities {
                deferral_allowed: true,
                write_only_attributes_allowed: false,
            }),
        ] {
            let diagnostics = validate(old_cli).await;
            assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
            let diagnostic = &diagnostics[0];
            assert_eq!(
                diagnostic.summary,
                "source.password_wo needs Terraform 1.11 or later"
            );
            assert!(diagnostic.detail.contains("OpenTofu 1.11"));
            assert!(diagnostic.detail.contains("or use source.password"));
            let steps = &diagnostic.attribute.as_ref().expect("a path").steps;
            assert_eq!(steps.len(), 2);
        }
        let new_cli = Some(pb::ClientCapabilities {
            deferral_allowed: false,
            write_only_attributes_allowed: true,
        });
        assert_eq!(validate(new_cli).await, Vec::new());
    }
}
