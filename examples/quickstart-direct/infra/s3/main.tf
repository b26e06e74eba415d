# The IaC code the container runner's Job applies. A stand-in for an S3 bucket that needs no
# cloud account: terraform_data keeps the bucket name, and the state lives in the cluster
# (the kubernetes backend, with the Job's service account).
terraform {
  backend "kubernetes" {
    secret_suffix     = "s3"
    in_cluster_config = true
    namespace         = "humanitec-runner"
  }
}

variable "bucket" {
  type = string
}

resource "terraform_data" "bucket" {
  input = var.bucket
}

output "bucket" {
  value = terraform_data.bucket.output
}

output "region" {
  value = "local-1"
}

output "secret_key" {
  value     = "key-of-${var.bucket}"
  sensitive = true
}
