# The quickstart: a runner config applied against the local humanitec-sandbox API.
# Run it with `./quickstart.sh`, which starts the sandbox and sets the variables below.

terraform {
  required_providers {
    humanitec = { source = "container-runner/humanitec" }
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
