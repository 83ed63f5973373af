# aws_elasticache_serverless_cache against elastilite: a Valkey serverless cache
# with usage limits and daily snapshots. Driven by tests/e2e/test_terraform_serverless.py.
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

variable "max_storage_gb" {
  type    = number
  default = 10
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

resource "aws_elasticache_serverless_cache" "valkey" {
  engine               = "valkey"
  name                 = "tf-serverless"
  major_engine_version = "8"
  description          = "created by terraform"

  cache_usage_limits {
    data_storage {
      maximum = var.max_storage_gb
      unit    = "GB"
    }
    ecpu_per_second {
      maximum = 5000
    }
  }

  daily_snapshot_time      = "09:00"
  snapshot_retention_limit = 1
  security_group_ids       = ["sg-0123456789abcdef0"]
  subnet_ids               = ["subnet-0abc"]

  tags = {
    Name = "tf-serverless"
  }
}

output "arn" {
  value = aws_elasticache_serverless_cache.valkey.arn
}

output "endpoint" {
  value = aws_elasticache_serverless_cache.valkey.endpoint
}

output "reader_endpoint" {
  value = aws_elasticache_serverless_cache.valkey.reader_endpoint
}
