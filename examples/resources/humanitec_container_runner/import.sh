# A container runner is imported by its definition id. Secrets (job.secret_variables,
# secret_files, source.password, source.ssh_key) cannot be read back from the API: keep them in
# the configuration.
terraform import humanitec_container_runner.s3 my-s3-bucket
