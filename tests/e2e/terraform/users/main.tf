# aws_elasticache_user (password and IAM) and aws_elasticache_user_group.
# Driven by tests/e2e/test_terraform_rbac.py.
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

variable "app_access" {
  type    = string
  default = "on ~app:* +@read"
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true

  endpoints {
    elasticache = var.endpoint
    sts         = var.endpoint
  }
}

resource "aws_elasticache_user" "default_off" {
  user_id              = "tf-default"
  user_name            = "default"
  engine               = "redis"
  access_string        = "off ~* +@all"
  no_password_required = true
}

resource "aws_elasticache_user" "app" {
  user_id       = "tf-app"
  user_name     = "tf-app"
  engine        = "REDIS"
  access_string = var.app_access
  passwords     = ["app-password-0123456789"]
  tags = {
    team = "a"
  }
}

resource "aws_elasticache_user" "iam" {
  user_id       = "tf-iam"
  user_name     = "tf-iam"
  engine        = "redis"
  access_string = "on ~* +@all"
  authentication_mode {
    type = "iam"
  }
}

resource "aws_elasticache_user_group" "this" {
  user_group_id = "tf-users"
  engine        = "REDIS"
  user_ids = [
    aws_elasticache_user.default_off.user_id,
    aws_elasticache_user.app.user_id,
    aws_elasticache_user.iam.user_id,
  ]
}

output "user_group_arn" {
  value = aws_elasticache_user_group.this.arn
}
