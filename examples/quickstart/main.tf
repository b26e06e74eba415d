# The quickstart: a runner config and a container runner applied against the local
# humanitec-sandbox API.
# Run it with `./scripts/quickstart.sh`, which starts the sandbox and sets the variables below.

terraform {
  required_providers {
    humanitec = {
      source  = "container-runner/humanitec"
      version = "~> 0.1.0"
    }
  }
}

variable "api_prefix" {
  type        = string
  description = "The sandbox URL (quickstart.sh sets it)."
}

variable "token" {
  type      = string
  sensitive = true
  default   = "quickstart-token"
}

variable "git_password" {
  type        = string
  sensitive   = true
  description = "The password (or personal access token) for the Git repository with the IaC code."
  default     = "quickstart-git-password"
}

provider "humanitec" {
  org_id     = "quickstart"
  token      = var.token
  api_prefix = var.api_prefix
}

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

# S3 buckets of development environments: OpenTofu code from a Git repository, run as a Job on
# the runner config's cluster.
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
    variables        = { TF_LOG = "info" }
  }

  source {
    url      = "https://my-domain.com/my-org/my-repo.git"
    ref      = "refs/heads/main"
    path     = "s3"
    username = "my-git-handler"
    password = var.git_password
  }

  files = {
    "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({
      bucket = "$${context.app.id}-$${context.env.id}"
    })
  }

  runner_config = humanitec_runner_config.dev
}
