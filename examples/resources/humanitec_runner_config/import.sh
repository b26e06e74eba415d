# A runner config is imported by its definition id.
terraform import humanitec_runner_config.dev config-container-runner
