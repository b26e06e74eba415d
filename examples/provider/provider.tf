terraform {
  required_providers {
    humanitec = {
      source = "container-runner/humanitec"
      # Pin the version. Before 1.0 a minor release may change behaviour, so "~> 0.1.0" takes
      # 0.1.x patch releases only ("~> 0.1" would also take 0.2, 0.3, ...; "0.1.0" exactly one).
      # `terraform init` records the version it selected and the package checksums in
      # .terraform.lock.hcl: commit that file, and every later init installs exactly that
      # package. `terraform init -upgrade` moves to the newest version the constraint allows.
      version = "~> 0.1.0"
    }
  }
}

variable "humanitec_token" {
  type      = string
  sensitive = true
}

# Every setting can also come from the environment (HUMANITEC_ORG, HUMANITEC_TOKEN,
# HUMANITEC_API_PREFIX) or from ~/.humctl.
provider "humanitec" {
  org_id     = "my-org"
  token      = var.humanitec_token
  api_prefix = "https://api.humanitec.io/"
  mode       = "api"
}
