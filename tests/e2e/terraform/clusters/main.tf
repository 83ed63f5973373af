# aws_elasticache_cluster against elastilite: one memcached cluster spread over
# zones and one tagged Redis cluster. Driven by tests/e2e/test_terraform.py.
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

variable "memcached_nodes" {
  type    = number
  default = 2
}

variable "redis_tags" {
  type = map(string)
  default = {
    Name = "tf-redis"
    Env  = "test"
  }
}

# Only endpoints + dummy credentials: elastilite answers sts:GetCallerIdentity,
# so none of the skip_* flags are needed.
provider "aws" {
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"

  endpoints {
    elasticache = var.endpoint
    sts         = var.endpoint
  }
}

resource "aws_elasticache_cluster" "memcached" {
  cluster_id        = "tf-memcached"
  engine            = "memcached"
  node_type         = "cache.t3.micro"
  num_cache_nodes   = var.memcached_nodes
  az_mode           = "cross-az"
  apply_immediately = true
}

resource "aws_elasticache_cluster" "redis" {
  cluster_id      = "tf-redis"
  engine          = "redis"
  engine_version  = "7.1"
  node_type       = "cache.t3.micro"
  num_cache_nodes = 1
  tags            = var.redis_tags
}

# Outputs that an in-place update does not change. cache_nodes is deliberately
# not an output: the provider does not mark it "known after apply" when
# num_cache_nodes changes, so an output built from it keeps the pre-update
# value until the next refresh (true against AWS too); the test reads the
# nodes from the state (terraform show -json) instead.
output "memcached_cluster_address" {
  value = aws_elasticache_cluster.memcached.cluster_address
}

output "memcached_configuration_endpoint" {
  value = aws_elasticache_cluster.memcached.configuration_endpoint
}

output "memcached_arn" {
  value = aws_elasticache_cluster.memcached.arn
}

output "redis_address" {
  value = aws_elasticache_cluster.redis.cache_nodes[0].address
}

output "redis_port" {
  value = aws_elasticache_cluster.redis.cache_nodes[0].port
}

output "redis_arn" {
  value = aws_elasticache_cluster.redis.arn
}

output "redis_engine_version_actual" {
  value = aws_elasticache_cluster.redis.engine_version_actual
}
