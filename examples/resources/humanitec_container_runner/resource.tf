# The cluster that Container Runner Jobs of development environments run on.
resource "humanitec_runner_config" "dev" {
  id   = "config-container-runner"
  name = "Config For Container Driver Runner"

  criteria {
    env_type = "development"
  }

  cluster {
    cluster_type = "gke"
    account      = "myOrg/myAccount"
    name         = "my-cluster"
    loadbalancer = "10.10.10.10"
    project_id   = "my-gcp-project"
    zone         = "cluster-zone"
  }

  agent_url = "$${resources.agent.outputs.url}"
}

# S3 buckets of development environments, provisioned by running the OpenTofu code of a private
# Git repository in a container on that cluster.
resource "humanitec_container_runner" "s3" {
  id   = "my-s3-bucket"
  name = "S3 Bucket"
  type = "s3"

  criteria {
    env_type = "development"
  }

  job {
    image            = "ghcr.io/my-org/my-image:1.1.0"
    command          = ["/opt/container"]
    shared_directory = "/home/runneruser/workspace"
    namespace        = "humanitec-runner"
    service_account  = "humanitec-runner-job"
    pod_template     = <<-EOT
      spec:
        imagePullSecrets:
          - name: ghcr-private-registry
    EOT
  }

  source {
    url      = "https://my-domain.com/my-org/my-repo.git"
    ref      = "refs/heads/main"
    username = "my-git-handler"

    # The Git password stays in your secret store; Humanitec reads it when the Job runs.
    password_ref {
      store = "my-store"
      ref   = "path/to/git/password"
    }
  }

  # Humanitec placeholders are escaped as $${...} in HCL and reach the API as ${...}.
  files = {
    "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({
      bucket = "$${context.app.id}-$${context.env.id}"
    })
  }

  # The AWS credentials of this cloud account reach the container as environment variables.
  driver_account = "my-aws-account"
  credentials_config {
    environment = {
      AWS_ACCESS_KEY_ID     = "AccessKeyId"
      AWS_SECRET_ACCESS_KEY = "SecretAccessKey"
      AWS_SESSION_TOKEN     = "SessionToken"
    }
  }

  runner_config = humanitec_runner_config.dev
}
