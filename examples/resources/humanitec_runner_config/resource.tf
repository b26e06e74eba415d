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

  skip_permission_checks = false
  agent_url              = "$${resources.agent.outputs.url}"
}

# An EKS cluster for production, reached without the Humanitec Agent.
resource "humanitec_runner_config" "prod" {
  id = "config-container-runner-prod"

  criteria {
    env_type = "production"
  }

  cluster {
    cluster_type             = "eks"
    account                  = "myOrg/myAwsAccount"
    name                     = "prod-cluster"
    region                   = "eu-central-1"
    loadbalancer             = "x111111xxx111111111x1xx1x111111x-x111x1x11xx111x1.elb.eu-central-1.amazonaws.com"
    loadbalancer_hosted_zone = "ABC0DEF5WYYZ00"
  }

  timeouts {
    delete = "30m"
  }
}
