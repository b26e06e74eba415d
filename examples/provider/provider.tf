terraform {
  required_providers {
    humanitec = { source = "container-runner/humanitec" }
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
