# Direct mode: the provider runs the container runner's image as a Kubernetes Job itself, on the
# runner config's cluster, with no Humanitec platform. `terraform apply` runs it with
# ACTION=create, `terraform destroy` with ACTION=destroy, and the run's outputs come back as
# attributes. The namespace, the Job's service account and the RBAC must exist first: see
# docs/guides/direct-mode.md.

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
  description = "The kubeconfig file the provider reaches the cluster with."
  default     = "~/.kube/config"
}

variable "kube_context" {
  type        = string
  description = "The kubeconfig context of the cluster the Jobs run on."
}

variable "helper_image" {
  type        = string
  description = "The helper image (checkout, files, results) in a registry the cluster can pull from: push the release's terraform-provider-humanitec-helper_<version>_linux_<arch>.oci.tar there (docs/guides/direct-mode.md) and keep its tag at the provider version."
}

variable "git_password" {
  type        = string
  sensitive   = true
  description = "The password or personal access token for the Git repository with the OpenTofu code."
}

variable "aws_access_key_id" {
  type        = string
  description = "The AWS access key id the OpenTofu code creates the bucket with."
}

variable "aws_secret_access_key" {
  type        = string
  sensitive   = true
  description = "The secret of that AWS access key."
}

variable "bucket_name" {
  type        = string
  description = "The name of the S3 bucket to create."
}

variable "rotation" {
  type        = string
  description = "Any value; changing it runs ACTION=create again without other changes."
  default     = "1"
}

# No org_id or token: direct mode does not talk to Humanitec.
provider "humanitec" {
  mode = "direct"
}

# In direct mode the runner config creates nothing; it says how to reach the cluster and which
# helper image to use. Its create checks that the cluster answers and that the provider's
# identity holds the permissions a run needs.
resource "humanitec_runner_config" "dev" {
  id = "config-container-runner"

  cluster {
    cluster_type = "gke"
    name         = "my-cluster"
    project_id   = "my-gcp-project"
    zone         = "cluster-zone"
  }

  kubernetes {
    config_path    = var.kubeconfig_path
    config_context = var.kube_context
  }

  helper_image = var.helper_image
}

# An S3 bucket made by running OpenTofu code from a private Git repository in a Job.
resource "humanitec_container_runner" "s3" {
  id   = "my-s3-bucket"
  name = "S3 Bucket"
  type = "s3"

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
    variables = {
      TF_IN_AUTOMATION  = "1"
      AWS_REGION        = "eu-central-1"
      AWS_ACCESS_KEY_ID = var.aws_access_key_id
    }
    # Reach the container through a Secret the provider creates, never inline in the Job.
    secret_variables = {
      AWS_SECRET_ACCESS_KEY = var.aws_secret_access_key
    }
  }

  # Checked out into job.shared_directory; SCRIPTS_DIRECTORY is /home/runneruser/workspace/s3.
  source {
    url      = "https://my-domain.com/my-org/my-repo.git"
    ref      = "refs/heads/main"
    path     = "s3"
    username = "my-git-handler"
    password = var.git_password
  }

  # Relative keys are placed in SCRIPTS_DIRECTORY, absolute ones must lie under
  # job.shared_directory. Humanitec placeholders such as ${context.app.id} are not resolved in
  # direct mode, so the values come from Terraform.
  files = {
    "terraform.tfvars.json" = jsonencode({ bucket = var.bucket_name })
    # The pod's file system is gone after each run: keep the state in the cluster, with the
    # Job's service account (it needs the kubernetes backend's permissions, see the guide).
    "/home/runneruser/workspace/s3/backend.tf" = <<-EOT
      terraform {
        backend "kubernetes" {
          secret_suffix     = "my-s3-bucket"
          namespace         = "humanitec-runner"
          in_cluster_config = true
        }
      }
    EOT
  }

  triggers = {
    rotation = var.rotation
  }

  # They bound the wait for a run; the Job's deadline is the timeout plus 60 seconds.
  timeouts {
    create = "30m"
    update = "30m"
    delete = "30m"
  }

  runner_config = humanitec_runner_config.dev
}

output "bucket" {
  description = "The bucket name, as the run wrote it to OUTPUTS_FILE."
  value       = humanitec_container_runner.s3.outputs["bucket"]
}

output "bucket_tags" {
  description = "The tags list the image writes: a non-string output comes back as its JSON text, and jsondecode gives the value."
  value       = jsondecode(humanitec_container_runner.s3.outputs["tags"])
}

output "secret_outputs" {
  description = "What the run wrote to SECRET_OUTPUTS_FILE."
  value       = humanitec_container_runner.s3.secret_outputs
  sensitive   = true
}

output "last_run" {
  description = "The Job that produced these results, when it ran, and the commit it checked out."
  value       = humanitec_container_runner.s3.last_run
}
