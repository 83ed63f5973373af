# aws_elasticache_subnet_group and aws_elasticache_parameter_group, and a Redis
# cluster placed in both. Driven by tests/e2e/test_terraform.py.
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

variable "subnet_group_description" {
  type    = string
  default = "elastilite terraform test"
}

variable "parameters" {
  type = map(string)
  default = {
    "maxmemory-policy"       = "allkeys-lru"
    "notify-keyspace-events" = "Ex"
  }
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

resource "aws_elasticache_subnet_group" "this" {
  name        = "tf-subnets"
  description = var.subnet_group_description
  subnet_ids  = ["subnet-0abc123", "subnet-0def456"]
  tags = {
    Name = "tf-subnets"
  }
}

resource "aws_elasticache_parameter_group" "this" {
  name   = "tf-redis7-params"
  family = "redis7"

  dynamic "parameter" {
    for_each = var.parameters
    content {
      name  = parameter.key
      value = parameter.value
    }
  }

  tags = {
    Name = "tf-redis7-params"
  }
}

resource "aws_elasticache_cluster" "in_groups" {
  cluster_id           = "tf-in-groups"
  engine               = "redis"
  node_type            = "cache.t3.micro"
  num_cache_nodes      = 1
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  parameter_group_name = aws_elasticache_parameter_group.this.name
}

output "subnet_group_arn" {
  value = aws_elasticache_subnet_group.this.arn
}

output "subnet_group_vpc_id" {
  value = aws_elasticache_subnet_group.this.vpc_id
}

output "parameter_group_arn" {
  value = aws_elasticache_parameter_group.this.arn
}

output "cluster_address" {
  value = aws_elasticache_cluster.in_groups.cache_nodes[0].address
}

output "cluster_port" {
  value = aws_elasticache_cluster.in_groups.cache_nodes[0].port
}
