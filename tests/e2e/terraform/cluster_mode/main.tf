# A cluster-mode-enabled replication group (aws_elasticache_replication_group with
# num_node_groups / replicas_per_node_group). Driven by tests/e2e/test_terraform_cluster.py.
terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" {
  type = string
}

variable "shards" {
  type    = number
  default = 2
}

provider "aws" {
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"

  endpoints {
    elasticache = var.endpoint
    sts         = var.endpoint
  }
}

resource "aws_elasticache_replication_group" "sharded" {
  replication_group_id       = "tf-sharded"
  description                = "cluster mode enabled"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = "cache.t3.micro"
  parameter_group_name       = "default.redis7.cluster.on"
  automatic_failover_enabled = true
  num_node_groups            = var.shards
  replicas_per_node_group    = 1
  apply_immediately          = true
}

output "configuration_endpoint" {
  value = aws_elasticache_replication_group.sharded.configuration_endpoint_address
}
