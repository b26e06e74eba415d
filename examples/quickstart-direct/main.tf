# The direct-mode quickstart: the Container Runner page's S3 example, run for real by the
# provider itself on a local test cluster (a real Kubernetes, scripts/test-cluster.sh): a Job
# whose `terraform` applies the code of infra/s3 (served by a local git server) and whose
# outputs come back as attributes. Run it with `./scripts/quickstart.sh --direct`, which starts
# the test cluster and the git server, loads the release's helper image onto the node, and sets
# the variables below.

terraform {
  required_providers {
    humanitec = {
      source  = "container-runner/humanitec"
      version = "~> 0.1.0"
    }
  }
}

variable "kubeconfig_path" {
  type        = string
  description = "The test cluster's kubeconfig (quickstart.sh sets it)."
}

variable "git_url" {
  type        = string
  description = "The repository with infra/s3, on the local git server (quickstart.sh sets it)."
}

variable "runner_image" {
  type        = string
  description = "A runner image with terraform (scripts/build-test-images.sh builds it)."
  default     = "localhost/test-images/iac-runner:1"
}

variable "bucket" {
  type    = string
  default = "quickstart-dev"
}

# No org_id or token: direct mode does not talk to Humanitec.
provider "humanitec" {
  mode = "direct"
}

# helper_image is left at its default, the name the release's helper image archive loads under.
resource "humanitec_runner_config" "local" {
  id = "config-container-runner"

  cluster {
    cluster_type = "gke"
    name         = "test-cluster"
    project_id   = "local"
    zone         = "local"
  }

  kubernetes {
    config_path = var.kubeconfig_path
  }
}

resource "humanitec_container_runner" "s3" {
  id            = "my-s3-bucket"
  name          = "S3 Bucket"
  type          = "s3"
  runner_config = humanitec_runner_config.local

  job {
    image            = var.runner_image
    shared_directory = "/home/runneruser/workspace"
    namespace        = "humanitec-runner"
    service_account  = "humanitec-runner-job"
    variables        = { TF_IN_AUTOMATION = "1" }
  }

  # Checked out into job.shared_directory; SCRIPTS_DIRECTORY is /home/runneruser/workspace/s3.
  source {
    url  = var.git_url
    ref  = "refs/heads/main"
    path = "s3"
  }

  files = {
    "/home/runneruser/workspace/s3/terraform.tfvars.json" = jsonencode({ bucket = var.bucket })
  }

  timeouts {
    create = "5m"
    delete = "5m"
  }
}

output "outputs" {
  description = "OUTPUTS_FILE of the run."
  value       = humanitec_container_runner.s3.outputs
}

output "secret_outputs" {
  description = "SECRET_OUTPUTS_FILE of the run."
  value       = humanitec_container_runner.s3.secret_outputs
  sensitive   = true
}

output "last_run" {
  description = "The run's Job, times and checked-out commit."
  value       = humanitec_container_runner.s3.last_run
}
